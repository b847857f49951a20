//! `cargo xtask bench [-- bench flags]`: builds the backend and the load
//! generator in release mode and runs the benchmark (see tests/src/bin/bench.rs).

use std::process::Command;

use crate::steps::{cargo, root, run_cmd};

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
    run_cmd(
        Command::new(root().join("target/release/bench"))
            .arg(&backend)
            .args(passthrough)
            .env("BRIDGE_NATS_SERVER", crate::setup::nats_server_bin()),
    )
}
