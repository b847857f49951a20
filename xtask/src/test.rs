//! `cargo xtask test`: every check the project has, one summary at the end.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::steps::{Steps, cargo, root, run_cmd, run_tee};
use crate::{build, setup};

/// Seconds of fuzzing per target in a test run.
const FUZZ_SECS: u64 = 20;

/// Runs everything; Err when anything failed.
pub(crate) fn all() -> Result<(), String> {
    let start = Instant::now();
    let mut steps = Steps::default();
    let tools = setup::steps_into(&mut steps);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();

    steps.step("fmt --check", || run_cmd(cargo().args(["fmt", "--all", "--", "--check"])).map(|()| None));
    steps.step("clippy (native, -D warnings)", || {
        run_cmd(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])).map(|()| None)
    });
    steps.step("clippy (wasm32, -D warnings)", || {
        let args = ["clippy", "-p", "bridge-core", "-p", "bridge-wasm", "--target", "wasm32-unknown-unknown"];
        run_cmd(cargo().args(args).args(["--all-targets", "--", "-D", "warnings"])).map(|()| None)
    });
    let figures = root().join("target/figures.txt");
    let _ = std::fs::remove_file(&figures);
    steps.step("native tests", || {
        let log = run_tee(cargo().args(["test", "--workspace"]).env("BRIDGE_NATS_SERVER", setup::nats_server_bin()))?;
        count_cargo_tests(&log, &mut counts);
        Ok(None)
    });
    let mut pkg_figure = None;
    let pkg_built = steps.step("wasm package (www/pkg) and its size", || {
        let size = build::wasm_pkg(&tools)?;
        pkg_figure = Some(format!(
            "wasm package: {} B gzip, what a page loads (bound {} B, goal {} B)",
            size.gzip_total(),
            build::MAX_GZIP_BYTES,
            build::GOAL_GZIP_BYTES
        ));
        build::check_size(&size).map(|()| None)
    });
    steps.step("TypeScript types (tsc --strict on the docs example)", || {
        if !pkg_built {
            return Err("needs the wasm package, which failed to build".into());
        }
        let mut cmd = tools.command("npx");
        cmd.args(["tsc", "-p", "types"]).current_dir(root().join("tests/browser"));
        run_cmd(&mut cmd).map(|()| None)
    });
    steps.step("backend binary (debug)", || run_cmd(cargo().args(["build", "-p", "bridge-backend"])).map(|()| None));
    steps.step("Playwright (Chromium)", || {
        if !pkg_built {
            return Err("needs the wasm package, which failed to build".into());
        }
        let mut cmd = tools.command("npx");
        cmd.args(["playwright", "test"])
            .current_dir(root().join("tests/browser"))
            .env("BRIDGE_BACKEND_BIN", root().join("target/debug/bridge-backend"))
            .env("BRIDGE_WWW", root().join("www"))
            .env("BRIDGE_NATS_SERVER", setup::nats_server_bin());
        let log = run_tee(&mut cmd)?;
        if let Some(n) = log.lines().find_map(|l| l.trim().strip_suffix(" passed").or_else(|| passed_with_time(l))) {
            counts.insert("playwright".into(), n.trim().parse().unwrap_or(0));
        }
        Ok(None)
    });

    // A short fuzzing run of every target (cargo xtask fuzz runs longer ones).
    let mut fuzz_figures = Vec::new();
    let targets: Vec<String> = crate::fuzz::TARGETS.iter().map(|t| (*t).to_owned()).collect();
    crate::fuzz::steps_into(&mut steps, tools.nightly, FUZZ_SECS, &targets, &mut fuzz_figures);
    if let Ok(text) = std::fs::read_to_string(&figures) {
        println!("\nfigures measured by the native tests:");
        for line in text.lines() {
            println!("  {line}");
        }
    }
    for line in pkg_figure.iter().chain(&fuzz_figures) {
        println!("  {line}");
    }
    if !counts.is_empty() {
        println!("\ntests run, by crate / suite:");
        for (name, n) in &counts {
            println!("  {name:<28} {n:>5}");
        }
        println!("  {:<28} {:>5}", "total", counts.values().sum::<u64>());
    }
    steps.summary("test", start.elapsed());
    if steps.all_passed() { Ok(()) } else { Err("some checks failed (see the summary above)".into()) }
}

/// Playwright prints "  3 passed (4.1s)".
fn passed_with_time(line: &str) -> Option<&str> {
    let l = line.trim();
    let i = l.find(" passed (")?;
    Some(&l[..i])
}

/// Adds up "test result: ok. N passed" per crate, from cargo's "Running"/"Doc-tests" headers.
fn count_cargo_tests(log: &str, counts: &mut BTreeMap<String, u64>) {
    let mut current = String::from("?");
    for line in log.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Running ").filter(|r| r.ends_with(')')) {
            // "Running unittests src/lib.rs (target/debug/deps/bridge_core-0123)" or "Running tests/x.rs (...)"
            if let Some(deps) = rest.rsplit('/').next() {
                let name = deps.trim_end_matches(')');
                current = name.rsplit_once('-').map_or(name, |(n, _)| n).to_owned();
                // Every wasm32 test binary belongs to the browser crate.
                if rest.contains("wasm32-unknown-unknown") {
                    current = "bridge_wasm".into();
                }
            }
        } else if let Some(name) = l.strip_prefix("Doc-tests ") {
            current = name.to_owned();
        } else if let Some(rest) = l.strip_prefix("test result: ok. ") {
            let n: u64 = rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *counts.entry(crate_of(&current)).or_default() += n;
        }
    }
}

/// Maps a test binary name to its crate (integration test binaries are named after their file).
fn crate_of(binary: &str) -> String {
    match binary {
        "bridge_core" | "properties" => "bridge-core".into(),
        "bridge_wasm" => "bridge-wasm".into(),
        "bridge_backend" | "check_config" => "bridge-backend".into(),
        "xtask" => "xtask".into(),
        // Every other test binary is one of tests/tests/*.rs (backend/tests/check_config.rs is above).
        _ => "bridge-tests".into(),
    }
}
