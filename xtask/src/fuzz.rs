//! `cargo xtask fuzz [--secs N] [--target NAME]`: the cargo-fuzz targets in
//! `fuzz/` (frame decoders, config loader, report and publish bodies) under
//! libFuzzer with AddressSanitizer, N seconds each (60 by default). Installs the
//! nightly toolchain and cargo-fuzz on first use. Fails on a crash, a hang (10 s
//! for one input), or an allocation above 512 MiB; the input that did it is kept
//! in `fuzz/artifacts/` and should become a regression test.
//!
//! Each run starts from the committed seeds (`fuzz/corpus/<target>`, never
//! written to) and grows a working corpus in `target/fuzz-corpus/<target>`.

use std::path::Path;
use std::time::Instant;

use crate::steps::{Steps, cargo, fmt_duration, output, root, run_cmd, run_tee};

/// Every target, in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: [&str; 5] = ["client_frame", "server_frame", "config", "report", "publish_body"];

struct Options {
    secs: u64,
    targets: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { secs: 60, targets: TARGETS.iter().map(|t| (*t).to_owned()).collect() };
    let mut it = args.iter().filter(|a| *a != "--");
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--secs" => o.secs = v.parse().map_err(|e| format!("--secs {v}: {e}"))?,
            "--target" if TARGETS.contains(&v.as_str()) => o.targets = vec![v.clone()],
            "--target" => return Err(format!("no fuzz target {v}; there are {}", TARGETS.join(", "))),
            other => return Err(format!("unknown flag {other}; usage: cargo xtask fuzz [--secs N] [--target NAME]")),
        }
    }
    Ok(o)
}

/// cargo-fuzz, installed when missing.
fn cargo_fuzz() -> Result<Option<String>, String> {
    if let Some(v) = output(cargo().args(["fuzz", "--version"])) {
        return Ok(Some(format!("{v} already installed")));
    }
    println!("  installing cargo-fuzz (about 2 minutes)");
    run_cmd(cargo().args(["install", "cargo-fuzz", "--locked"]))
        .or_else(|_| run_cmd(cargo().args(["install", "cargo-fuzz"])))?;
    Ok(None)
}

/// What libFuzzer reported at the end of a run.
fn stat(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|l| l.strip_prefix(&format!("stat::{name}:"))?.trim().parse().ok())
}

/// Runs one target for `secs`; returns (executions, corpus entries).
fn run_target(target: &str, secs: u64) -> Result<(u64, u64), String> {
    let seeds = root().join("fuzz/corpus").join(target);
    let work = root().join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut cmd = crate::nightly::cargo();
    cmd.current_dir(root().join("fuzz"))
        .args(["fuzz", "run", target])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-malloc_limit_mb=512", "-max_len=65536"])
        .args(["-print_final_stats=1", "-print_pcs=0", "-print_funcs=0", "-verbosity=0"]);
    let started = Instant::now();
    let log = run_tee(&mut cmd).map_err(|e| {
        format!(
            "{e}: fuzz target {target} failed; the input is in fuzz/artifacts/{target}/ (make it a regression test)"
        )
    })?;
    let runs = stat(&log, "number_of_executed_units").unwrap_or(0);
    let entries = count_files(&work);
    // The rate is over the fuzzing time only: the wall time also holds the
    // build and the load of the corpus, which can be minutes for a big one.
    println!(
        "  {target}: {runs} executions in {secs} s of fuzzing ({:.0}/s; {} wall with build and corpus load), \
         corpus {entries} inputs, no crash",
        runs as f64 / secs.max(1) as f64,
        fmt_duration(started.elapsed()),
    );
    Ok((runs, entries))
}

fn count_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count() as u64)
}

/// Adds the fuzz steps (cargo-fuzz on demand, then each target) to `steps`; `nightly`:
/// the pinned nightly is installed.
pub(crate) fn steps_into(steps: &mut Steps, nightly: bool, secs: u64, targets: &[String], figures: &mut Vec<String>) {
    let ready = nightly && steps.step("fuzz: cargo-fuzz", cargo_fuzz);
    for target in targets {
        steps.step(&format!("fuzz: {target} ({secs} s)"), || {
            if !ready {
                return Err("needs nightly and cargo-fuzz, which failed to install".into());
            }
            let (runs, entries) = run_target(target, secs)?;
            figures.push(format!("fuzz {target}: {runs} executions in {secs} s, {entries} corpus inputs, no crash"));
            Ok(None)
        });
    }
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let start = Instant::now();
    let mut steps = Steps::default();
    let mut figures = Vec::new();
    let nightly = steps.step("fuzz: nightly toolchain", crate::nightly::install);
    steps_into(&mut steps, nightly, o.secs, &o.targets, &mut figures);
    println!("\nfuzz figures:");
    for f in &figures {
        println!("  {f}");
    }
    steps.summary("fuzz", start.elapsed());
    if steps.all_passed() { Ok(()) } else { Err("fuzzing failed (see above)".into()) }
}
