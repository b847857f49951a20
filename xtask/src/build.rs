//! The wasm package: `wasm-pack build --target web` into `www/pkg/`, then
//! `wasm-opt -Oz` from the npm `binaryen` package.

use std::path::Path;

use crate::setup::Tools;
use crate::steps::{output, root, run_cmd};

/// Sizes of the built package, bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PkgSize {
    pub(crate) wasm: u64,
    pub(crate) wasm_gz: u64,
    pub(crate) glue: u64,
    pub(crate) glue_gz: u64,
}

/// Builds `www/pkg/` and returns its sizes.
pub(crate) fn wasm_pkg(tools: &Tools) -> Result<PkgSize, String> {
    run_cmd(tools.command("wasm-pack").args([
        "build",
        "bridge-wasm",
        "--target",
        "web",
        "--out-dir",
        "../www/pkg",
        "--profile",
        "wasm-release",
        "--no-opt",
        "--mode",
        "no-install",
        "--no-pack",
    ]))?;
    let wasm = root().join("www/pkg/bridge_wasm_bg.wasm");
    let optimized = root().join("www/pkg/bridge_wasm_bg.opt.wasm");
    run_cmd(tools.command("wasm-opt").args(["-Oz", "--strip-debug"]).arg(&wasm).arg("-o").arg(&optimized))?;
    std::fs::rename(&optimized, &wasm).map_err(|e| format!("cannot replace {}: {e}", wasm.display()))?;
    let glue = root().join("www/pkg/bridge_wasm.js");
    let size = PkgSize {
        wasm: file_size(&wasm)?,
        wasm_gz: gzip_size(&wasm)?,
        glue: file_size(&glue)?,
        glue_gz: gzip_size(&glue)?,
    };
    println!(
        "  www/pkg: wasm {} B ({} B gzip), JS glue {} B ({} B gzip); together {} B gzip",
        size.wasm,
        size.wasm_gz,
        size.glue,
        size.glue_gz,
        size.wasm_gz + size.glue_gz
    );
    Ok(size)
}

fn file_size(p: &Path) -> Result<u64, String> {
    std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
}

fn gzip_size(p: &Path) -> Result<u64, String> {
    let out = output(std::process::Command::new("sh").arg("-c").arg(format!("gzip -9 -c '{}' | wc -c", p.display())))
        .ok_or("gzip is not available")?;
    out.trim().parse().map_err(|e| format!("gzip size: {e}"))
}
