//! Commands as named, timed steps, and the helpers every task shares.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// `cargo`, as the one running us.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, inheriting stdout/stderr; Err names the command on failure.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let shown = show(cmd);
    println!("  $ {shown}");
    let status = cmd.status().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{shown}` failed ({status})")) }
}

/// Runs `cmd` quietly and returns its trimmed stdout, or None if it failed to run or exited non-zero.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Formats a duration as `1m02s` or `3.4s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 { format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64) } else { format!("{s:.1}s") }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Passed,
    Skipped(String),
    Failed(String),
}

/// Named steps with their outcome and time, summarised at the end.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    done: Vec<(String, Status, Duration)>,
}

impl Steps {
    /// Runs `f` as the step `name`, printing a header and the time it took.
    pub(crate) fn step(&mut self, name: &str, f: impl FnOnce() -> Result<Option<String>, String>) -> bool {
        println!("\n==> {name}");
        let start = Instant::now();
        let status = match f() {
            Ok(None) => Status::Passed,
            Ok(Some(why)) => Status::Skipped(why),
            Err(e) => Status::Failed(e),
        };
        let took = start.elapsed();
        match &status {
            Status::Passed => println!("<== {name}: done in {}", fmt_duration(took)),
            Status::Skipped(why) => println!("<== {name}: skipped ({why})"),
            Status::Failed(e) => println!("<== {name}: FAILED in {}: {e}", fmt_duration(took)),
        }
        let ok = !matches!(status, Status::Failed(_));
        self.done.push((name.to_owned(), status, took));
        ok
    }

    /// True when no step failed.
    pub(crate) fn all_passed(&self) -> bool {
        !self.done.iter().any(|(_, s, _)| matches!(s, Status::Failed(_)))
    }

    /// Prints the summary table.
    pub(crate) fn summary(&self, title: &str, total: Duration) {
        println!("\n{title} summary:");
        for (name, status, took) in &self.done {
            let (mark, note) = match status {
                Status::Passed => ("ok  ", String::new()),
                Status::Skipped(why) => ("skip", format!("  ({why})")),
                Status::Failed(e) => ("FAIL", format!("  {e}")),
            };
            println!("  {mark} {name:<40} {:>8}{note}", fmt_duration(*took));
        }
        let verdict = if self.all_passed() { "all passed" } else { "FAILED" };
        println!("{title}: {verdict} in {}", fmt_duration(total));
    }
}

/// Runs `cmd` with stdout and stderr on one pipe (so their lines keep their
/// order), echoing as they come; returns the output. Err names the command on failure.
pub(crate) fn run_tee(cmd: &mut Command) -> Result<String, String> {
    use std::io::{BufRead, BufReader};

    let shown = show(cmd);
    println!("  $ {shown}");
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let writer2 = writer.try_clone().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let mut child = cmd.stdout(writer).stderr(writer2).spawn().map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    // Drop our copies of the write end (moved into `cmd`) so the read ends at exit.
    drop(std::mem::replace(cmd, Command::new("true")));
    let mut log = String::new();
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        println!("{line}");
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().map_err(|e| format!("`{shown}`: {e}"))?;
    if status.success() { Ok(log) } else { Err(format!("`{shown}` failed ({status})")) }
}
