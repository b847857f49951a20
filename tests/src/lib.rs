//! Shared fixtures for the cross-crate tests: a real backend on an
//! ephemeral loopback port, stopped when the handle drops.

use std::net::SocketAddr;
use std::time::Duration;

use bridge_backend::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A backend running on 127.0.0.1:0.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a backend with the default config (port 0).
    pub async fn start() -> Self {
        Self::start_with(Config { port: 0, ..Config::default() }).await
    }

    /// Starts a backend with `config` on 127.0.0.1:0.
    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bridge_backend::run(listener, config, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Asks the server to shut down and waits (at most 10 s) for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the server did not shut down within 10 s")
            .expect("the server task panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
