//! The one nightly toolchain the project uses, pinned by date: the wasm package
//! is built with it (std rebuilt with `panic=immediate-abort`, which stable
//! cannot do and which takes panic formatting out of the module), and the
//! fuzz targets run on it. Installed by setup with the minimal profile and
//! `rust-src`, and skipped when it is there.

use std::path::PathBuf;
use std::process::Command;

use crate::steps::{output, root, run_cmd};

/// The pinned nightly. Changing it changes the module's bytes: measure again.
pub(crate) const TOOLCHAIN: &str = "nightly-2026-05-20";

/// Installs [`TOOLCHAIN`] with `rust-src` (for `-Zbuild-std`) when missing.
pub(crate) fn install() -> Result<Option<String>, String> {
    let list = output(Command::new("rustup").args(["toolchain", "list"])).ok_or("rustup is not available")?;
    let have = list.lines().any(|l| l.starts_with(TOOLCHAIN));
    if have {
        let components =
            output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", TOOLCHAIN]))
                .unwrap_or_default();
        if components.lines().any(|l| l.starts_with("rust-src")) {
            return Ok(Some(format!("{TOOLCHAIN} with rust-src already installed")));
        }
        println!("  adding rust-src to {TOOLCHAIN}");
        run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", TOOLCHAIN]))?;
        return Ok(None);
    }
    println!("  installing {TOOLCHAIN} (minimal profile and rust-src; about a minute)");
    run_cmd(Command::new("rustup").args([
        "toolchain",
        "install",
        TOOLCHAIN,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))?;
    Ok(None)
}

/// rustup's `cargo` on [`TOOLCHAIN`] (not the stable one running us), with nothing
/// of ours in its environment that would pin it to stable; run in the workspace root.
pub(crate) fn cargo() -> Command {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let proxy = home.map(|h| h.join("bin/cargo")).filter(|p| p.is_file());
    let mut c = Command::new(proxy.map_or_else(|| "cargo".into(), PathBuf::into_os_string));
    for var in ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO_TARGET_DIR", "RUSTFLAGS"] {
        c.env_remove(var);
    }
    c.arg(format!("+{TOOLCHAIN}")).current_dir(root());
    c
}
