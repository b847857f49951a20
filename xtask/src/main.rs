//! `cargo xtask setup|run|test`: the one place that knows how to install,
//! build and test the project. Standard library only, so it builds in seconds.
//!
//! # Layout
//!
//! - [`steps`]: running commands as timed, named steps with a summary.
//! - [`setup`]: idempotent installs (wasm target, the pinned nightly,
//!   wasm-opt, Chromium, npm packages, nats-server).
//! - [`nightly`]: the pinned nightly toolchain (the wasm package, fuzzing).
//! - [`build`]: the wasm package in `www/pkg/`.
//! - [`run`]: the product on the embedded default.
//! - [`test`]: every check, with one summary.
//! - [`bench`]: the backend's memory and throughput figures.
//! - [`cluster`]: nats-server and several nodes on one event stream.
//! - [`fuzz`]: the cargo-fuzz targets, on nightly.

use std::process::ExitCode;

mod bench;
mod build;
mod cluster;
mod fuzz;
mod nightly;
mod run;
mod setup;
mod steps;
mod test;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup   install what the project needs (idempotent; skips what is there)
  run     setup, build the wasm package, start the backend with the dashboard and demo
  build   setup, then build the wasm package into www/pkg and print what a page loads, gzip -9
  test    setup, then fmt, clippy, native tests, the wasm package and its size, Playwright in Chromium
  bench   release build, then RSS per idle connection and fan-out throughput (flags after --,
          e.g. cargo xtask bench -- --connections 5000 --subscribers 500 --rates 500,1000,2000;
          --store nats adds the same fan-out on a three-node cluster; --storm runs the reconnect
          storm alone: 2,000 subscribers on three nodes, one killed)
  soak    release build, then 20,000 connections (evolution and agents) under a steady load for
          --minutes N (10), sampled every second into target/soak.csv; flags after --
  fuzz    the cargo-fuzz targets (frame decoders, config, report and publish bodies) on nightly,
          installed on first use (flags after --: --secs N (60 per target), --target NAME)
  cluster nats-server and N nodes on one event stream, in demo mode (flags after --:
          --nodes N (3), --base-port P (8765), --nats-port P (4222), --no-demo)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all().map(|_| ()),
        Some("run") => run::run(&args[1..]),
        Some("build") => setup::all().and_then(|tools| build::wasm_pkg(&tools)).map(|_| ()),
        Some("test") => test::all(),
        Some("bench") => bench::bench(&args[1..]),
        Some("soak") => bench::soak(&args[1..]),
        Some("cluster") => cluster::cluster(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
