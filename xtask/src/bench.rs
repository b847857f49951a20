//! `cargo xtask bench [-- bench flags]`: builds the backend and the load
//! generator in release mode and runs the benchmark (tests/src/bin/bench/).
//! `cargo xtask soak [-- --minutes N]` runs its soak part alone.

use std::process::Command;

use crate::steps::{cargo, root, run_cmd};

/// The soak: 20,000 connections and a steady load for N minutes (10 by default).
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    let mut flags = vec!["--only".to_owned(), "soak".to_owned()];
    let mut it = args.iter().filter(|a| *a != "--");
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                flags.push("--soak-minutes".into());
                flags.push(it.next().ok_or("--minutes needs a value")?.clone());
            }
            other => flags.push(other.to_owned()),
        }
    }
    bench(&flags)
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    // nats-server: the fan-out is measured next to its WebSocket listener.
    let mut steps = crate::steps::Steps::default();
    if !steps.step("setup: nats-server", crate::setup::nats_server) {
        return Err("nats-server could not be installed (see above)".into());
    }
    println!("==> building bridge-backend and the load generator (release)");
    run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "bridge-backend",
        "-p",
        "bridge-tests",
        "--bin",
        "bench",
        "--bin",
        "bridge-backend",
    ]))?;
    let backend = root().join("target/release/bridge-backend");
    let passthrough = args.iter().skip_while(|a| *a == "--");
    println!("==> running (the load generator shares this machine's cores with the backend)");
    // Tens of thousands of sockets need as many file descriptors, in both processes:
    // raise the limit where allowed (root), else keep what the shell gives.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@""#)
        .arg("bench")
        .arg(root().join("target/release/bench"))
        .arg(&backend)
        .args(passthrough)
        .env("BRIDGE_NATS_SERVER", crate::setup::nats_server_bin());
    run_cmd(&mut cmd)
}
