//! A real nats-server for the NATS store's tests: JetStream on a free loopback
//! port, its store in a fresh temporary directory, stopped by its pid (SIGKILL,
//! as a crash would) and restarted on the same port and directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where nats-server is: `BRIDGE_NATS_SERVER`, else where `cargo xtask setup` puts it.
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDGE_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xtask/nats/venv/bin/nats-server");
    assert!(
        bin.is_file(),
        "nats-server is not installed at {}: run `cargo xtask setup` (or set BRIDGE_NATS_SERVER)",
        bin.display()
    );
    bin
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("addr").port()
}

/// A running (or killed) nats-server.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// Starts one with JetStream in a new temporary directory and waits until it accepts connections.
    pub fn start() -> NatsServer {
        let dir = std::env::temp_dir().join(format!("bridge-nats-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary store directory");
        let mut server = NatsServer { child: None, port: free_port(), dir };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL (no goodbye to its clients, nothing flushed by it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(nats_server_bin())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nats_server_bin().display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on port {} within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
