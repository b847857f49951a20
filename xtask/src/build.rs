//! The wasm package in `www/pkg/`: the module built on the pinned nightly with
//! std rebuilt for size and shrunk by `wasm-opt -Oz` (npm `binaryen`); the JS
//! driver (`bridge-wasm/js/`, with the module's hand-written glue `core.js`)
//! bundled into one minified `bridge_wasm.js` by `esbuild` (npm), and its
//! hand-written types; and the size of what a page loads.

use std::path::{Path, PathBuf};

use crate::setup::Tools;
use crate::steps::{output, root, run_cmd};

/// The most the files a page loads may weigh together, gzip -9 (issue 11's bound):
/// `cargo xtask test` fails above it.
pub(crate) const MAX_GZIP_BYTES: u64 = 60_000;

/// What the package could weigh, gzip -9 (issue 11's stretch); the bound comes down
/// toward it as the package shrinks.
pub(crate) const GOAL_GZIP_BYTES: u64 = 40_000;

/// Flags for the module's build, std included (`-Zbuild-std`):
/// - `panic=immediate-abort`: a panic traps at once, so no panic message is ever
///   formatted and `core::fmt` leaves every path that only panics;
/// - `fmt-debug=none`: `Debug` impls print nothing (the module never shows one to a
///   person: its messages are built from `Display` and plain strings);
/// - `location-detail=none`: no file and line strings for panics that cannot print.
const RUSTFLAGS: &str = "-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none";

/// Sizes of the built package, bytes: each file a page loads (the wasm and the JS),
/// raw and gzip -9.
#[derive(Debug, Clone)]
pub(crate) struct PkgSize {
    pub(crate) files: Vec<(String, u64, u64)>,
}

impl PkgSize {
    /// Everything together, gzip -9.
    pub(crate) fn gzip_total(&self) -> u64 {
        self.files.iter().map(|(_, _, gz)| gz).sum()
    }

    /// One line per file and the total.
    pub(crate) fn describe(&self) -> String {
        let mut s = String::new();
        for (name, raw, gz) in &self.files {
            s.push_str(&format!("  www/pkg/{name}: {raw} B ({gz} B gzip)\n"));
        }
        s.push_str(&format!(
            "  together {} B gzip (bound {MAX_GZIP_BYTES} B, goal {GOAL_GZIP_BYTES} B)",
            self.gzip_total()
        ));
        s
    }
}

/// Err when the package weighs more than [`MAX_GZIP_BYTES`].
pub(crate) fn check_size(size: &PkgSize) -> Result<(), String> {
    let total = size.gzip_total();
    if total > MAX_GZIP_BYTES {
        return Err(format!(
            "what a page loads weighs {total} B gzip, over the bound of {MAX_GZIP_BYTES} B (xtask/src/build.rs); \
             find what grew with `cargo xtask build`"
        ));
    }
    Ok(())
}

/// Builds `www/pkg/` and returns its sizes.
pub(crate) fn wasm_pkg(tools: &Tools) -> Result<PkgSize, String> {
    run_cmd(
        crate::nightly::cargo()
            .args(["build", "-p", "bridge-wasm", "--lib", "--target", "wasm32-unknown-unknown"])
            .args(["--profile", "wasm-release", "-Zbuild-std=std,panic_abort"])
            .env("RUSTFLAGS", RUSTFLAGS),
    )?;
    let built = root().join("target/wasm32-unknown-unknown/wasm-release/bridge_wasm.wasm");
    let pkg = root().join("www/pkg");
    // What an earlier build left (a renamed file) must not be served.
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("cannot clear {}: {e}", pkg.display()))?;
    }
    std::fs::create_dir_all(&pkg).map_err(|e| format!("cannot create {}: {e}", pkg.display()))?;
    // `--converge` runs -Oz until it stops shrinking (300 B gzip more than one pass);
    // `--strip-*`: names and custom sections (producers, target features) no page needs.
    run_cmd(
        tools
            .command("wasm-opt")
            .args(["-Oz", "--converge", "--strip-debug", "--strip-producers", "--strip-target-features"])
            .arg(&built)
            .arg("-o")
            .arg(pkg.join("bridge_wasm_bg.wasm")),
    )?;
    // The page's one JS file: the driver and the glue, minified.
    let mut outfile = std::ffi::OsString::from("--outfile=");
    outfile.push(pkg.join("bridge_wasm.js"));
    run_cmd(
        tools
            .command("esbuild")
            .arg(root().join("bridge-wasm/js/index.js"))
            .args(["--bundle", "--format=esm", "--minify", "--log-level=warning"])
            .arg(outfile),
    )?;
    let types = root().join("bridge-wasm/js/bridge_wasm.d.ts");
    std::fs::copy(&types, pkg.join("bridge_wasm.d.ts")).map_err(|e| format!("cannot copy {}: {e}", types.display()))?;
    let size = measure(&pkg)?;
    println!("{}", size.describe());
    Ok(size)
}

/// The files a page loads from `pkg`: every `.js` and `.wasm` (not the TypeScript declarations).
fn measure(pkg: &Path) -> Result<PkgSize, String> {
    let mut paths = Vec::new();
    collect(pkg, &mut paths);
    let mut files = Vec::new();
    for p in paths {
        let name = p.strip_prefix(pkg).unwrap_or(&p).display().to_string();
        files.push((name, file_size(&p)?, gzip_size(&p)?));
    }
    Ok(PkgSize { files })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "js" || e == "wasm") {
            out.push(p);
        }
    }
}

fn file_size(p: &Path) -> Result<u64, String> {
    std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
}

fn gzip_size(p: &Path) -> Result<u64, String> {
    let out = output(std::process::Command::new("sh").arg("-c").arg(format!("gzip -9 -c '{}' | wc -c", p.display())))
        .ok_or("gzip is not available")?;
    out.trim().parse().map_err(|e| format!("gzip size: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(wasm_gz: u64, js_gz: u64) -> PkgSize {
        PkgSize {
            files: vec![
                ("bridge_wasm.js".into(), 3 * js_gz, js_gz),
                ("bridge_wasm_bg.wasm".into(), 2 * wasm_gz, wasm_gz),
            ],
        }
    }

    #[test]
    fn the_size_check_counts_every_file_and_fails_only_above_the_bound() {
        assert_eq!(package(50_000, 25_000).gzip_total(), 75_000);
        assert!(check_size(&package(MAX_GZIP_BYTES - 1, 1)).is_ok());
        let over = check_size(&package(MAX_GZIP_BYTES, 1)).unwrap_err();
        assert!(over.contains(&(MAX_GZIP_BYTES + 1).to_string()), "{over}");
        const { assert!(GOAL_GZIP_BYTES <= MAX_GZIP_BYTES) };
    }
}
