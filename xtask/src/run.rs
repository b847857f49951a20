//! `cargo xtask run [-- backend flags]`: the product on the embedded default, in
//! demo mode (the demo page's traffic generator and fault switch; loopback only)
//! unless `--no-demo` is given.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::steps::{cargo, root, run_cmd};
use crate::{build, setup};

/// Sets up, builds the wasm package and the backend, starts it and prints where to look.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let tools = setup::all()?;
    println!("\n==> building the wasm package");
    build::wasm_pkg(&tools)?;
    println!("\n==> building the backend (release)");
    run_cmd(cargo().args(["build", "--release", "-p", "bridge-backend"]))?;
    let bin = root().join("target/release/bridge-backend");
    let mut passthrough: Vec<&str> = args.iter().map(String::as_str).skip_while(|a| *a == "--").collect();
    let demo = !passthrough.contains(&"--no-demo");
    passthrough.retain(|a| *a != "--no-demo" && *a != "--demo");
    if demo {
        passthrough.push("--demo");
    }
    println!("\n==> starting {}", bin.display());
    let mut child = Command::new(&bin)
        .arg("--www")
        .arg(root().join("www"))
        .args(passthrough)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(url) = line.strip_prefix("bridge-backend listening on ") {
            let url = url.trim_end_matches('/');
            println!("\n  dashboard: {url}/");
            println!("  demo page: {url}/demo/");
            println!("  health:    {url}/livez");
            if demo {
                println!("  demo mode: the demo page's fault switch is on (cargo xtask run -- --no-demo turns it off)");
            }
            println!("\n  Ctrl-C stops the backend.\n");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("the backend exited with {status}")) }
}
