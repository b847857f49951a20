//! `cargo xtask cluster [--nodes 3]`: nats-server and N backend nodes on
//! loopback, all serving one event stream (`--store nats`), in demo mode as
//! `cargo xtask run`. Prints each node's URL; Ctrl-C stops them all (they share
//! the terminal's process group; they are also killed if this process fails).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::steps::{cargo, root, run_cmd};
use crate::{build, setup};

struct Options {
    nodes: u16,
    base_port: u16,
    nats_port: u16,
    demo: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { nodes: 3, base_port: 8765, nats_port: 4222, demo: true };
    let mut it = args.iter().filter(|a| *a != "--");
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u16, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match flag.as_str() {
            "--nodes" => o.nodes = value("--nodes")?.clamp(1, 16),
            "--base-port" => o.base_port = value("--base-port")?,
            "--nats-port" => o.nats_port = value("--nats-port")?,
            "--no-demo" => o.demo = false,
            other => {
                return Err(format!(
                    "unknown flag {other}; usage: cargo xtask cluster [--nodes N] [--base-port P] [--nats-port P] [--no-demo]"
                ));
            }
        }
    }
    Ok(o)
}

/// Children killed when this process leaves by an error.
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies a child's output to ours, each line prefixed with its name.
fn relay(name: String, out: impl std::io::Read + Send + 'static, listening: Option<std::sync::mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(tx) = &listening
                && let Some(url) = line.strip_prefix("bridge-backend listening on ")
            {
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
            println!("[{name}] {line}");
        }
    });
}

fn wait_for_port(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on 127.0.0.1:{port} within 15 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub(crate) fn cluster(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let tools = setup::all()?;
    println!("\n==> building the wasm package");
    build::wasm_pkg(&tools)?;
    println!("\n==> building the backend (release)");
    run_cmd(cargo().args(["build", "--release", "-p", "bridge-backend"]))?;
    let bin = root().join("target/release/bridge-backend");
    if TcpStream::connect(("127.0.0.1", o.nats_port)).is_ok() {
        return Err(format!("port {} is taken (another nats-server?); pick another with --nats-port", o.nats_port));
    }
    let data: PathBuf = root().join("target/cluster/nats");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let mut children = Children(Vec::new());
    println!("\n==> starting nats-server on 127.0.0.1:{} (JetStream data in {})", o.nats_port, data.display());
    let mut nats = Command::new(setup::nats_server_bin())
        .args(["-js", "-a", "127.0.0.1", "-p", &o.nats_port.to_string(), "-sd"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start nats-server: {e}"))?;
    relay("nats".into(), nats.stderr.take().expect("piped"), None);
    relay("nats".into(), nats.stdout.take().expect("piped"), None);
    children.0.push(("nats".into(), nats));
    wait_for_port(o.nats_port, "nats-server")?;
    let nats_url = format!("nats://127.0.0.1:{}", o.nats_port);
    let mut urls = Vec::new();
    for i in 0..o.nodes {
        let name = format!("node-{}", i + 1);
        let port = o.base_port + i;
        println!("\n==> starting {name} on 127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.arg("--www").arg(root().join("www"));
        cmd.args(["--port", &port.to_string(), "--store", "nats", "--nats-url", &nats_url, "--node-id", &name]);
        if o.demo {
            cmd.arg("--demo");
        }
        let mut child =
            cmd.stdout(Stdio::piped()).spawn().map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        relay(name.clone(), child.stdout.take().expect("piped"), Some(tx));
        children.0.push((name.clone(), child));
        let url = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| format!("{name} did not start within 30 s"))?;
        urls.push((name, url));
    }
    println!("\n  the cluster: nats-server at {nats_url}, {} nodes on one event stream", o.nodes);
    for (name, url) in &urls {
        println!("  {name}: dashboard {url}/   demo page {url}/demo/   status {url}/status");
    }
    println!("\n  Publish on one node, watch the event on another; kill a node and restart it: nothing is lost.");
    println!("  Ctrl-C stops them all.\n");
    // Wait for them; if one exits by itself, say so and keep the others.
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut running = 0;
        for (name, child) in &mut children.0 {
            match child.try_wait() {
                Ok(None) => running += 1,
                Ok(Some(status)) => {
                    println!("[{name}] exited ({status})");
                    *name = format!("{name} (exited)");
                }
                Err(_) => {}
            }
        }
        children.0.retain(|(name, _)| !name.ends_with("(exited)"));
        if running == 0 {
            return Ok(());
        }
    }
}
