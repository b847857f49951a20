//! A backend node as its own process (`target/debug/bridge-backend`), for what
//! only a process can show: being killed with SIGKILL and started again.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The backend binary next to this test binary (`target/debug/`), checked to be
/// newer than the backend's sources so a test never runs an old build.
pub fn backend_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDGE_BACKEND_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/<test> -> target/debug/bridge-backend
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target/debug").join("bridge-backend");
    assert!(bin.is_file(), "{} is missing: cargo build -p bridge-backend (cargo xtask test does)", bin.display());
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).expect("binary mtime");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../backend/src");
    if let Some(newer) = newest(&src).filter(|(t, _)| *t > built) {
        panic!("{} is older than {}: cargo build -p bridge-backend", bin.display(), newer.1.display());
    }
    bin
}

fn newest(dir: &std::path::Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok().map(|t| (t, path))
        };
        if let Some(c) = candidate
            && best.as_ref().is_none_or(|b| c.0 > b.0)
        {
            best = Some(c);
        }
    }
    best
}

/// A running node process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its node id.
    pub id: String,
    args: Vec<String>,
}

impl NodeProcess {
    /// Starts a node on NATS at `nats_url` with id `id` (port 0) and waits for it to listen.
    pub async fn start(nats_url: &str, id: &str, extra: &[&str]) -> NodeProcess {
        let mut args: Vec<String> =
            ["--store", "nats", "--nats-url", nats_url, "--node-id", id].iter().map(|s| (*s).to_owned()).collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut node = NodeProcess { child: None, addr: String::new(), id: id.to_owned(), args };
        node.restart().await;
        node
    }

    /// Kills it with SIGKILL: no close frames, nothing said to anyone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again (a new port; the same id and settings).
    pub async fn restart(&mut self) {
        self.kill().await;
        let mut child = Command::new(backend_bin())
            .args(["--port", "0"])
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            // Resuming clients of a killed node arrive in a burst.
            .env("BRIDGE_LIMITS__RATE_PER_SEC", "100000")
            .env("BRIDGE_LIMITS__RATE_BURST", "100000")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", backend_bin().display()));
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("bridge-backend listening on http://") {
                    return Some(url.trim_end_matches('/').to_owned());
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("node {} did not listen within 30 s", self.id))
        .unwrap_or_else(|| panic!("node {} exited before listening", self.id));
        // Keep reading its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.child = Some(child);
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `ws://addr` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
