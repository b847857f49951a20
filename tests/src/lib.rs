//! Shared fixtures for the cross-crate tests: a real backend on an
//! ephemeral loopback port, and a real WebSocket client that speaks the
//! wire protocol. Every wait has a timeout that says what it waited for.

use std::net::SocketAddr;
use std::time::Duration;

use bridge_backend::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A backend running on 127.0.0.1:0.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// The default test config: port 0.
pub fn config() -> Config {
    Config { port: 0, ..Config::default() }
}

impl TestServer {
    /// Starts a backend with the default config (port 0).
    pub async fn start() -> Self {
        Self::start_with(config()).await
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

    /// `ws://127.0.0.1:port` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
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

    /// A client connected to `path` that has sent hello as `client` and read the welcome.
    pub async fn client(&self, path: &str, client: &str) -> Client {
        let mut c = Client::connect(&self.ws_url(path), None).await.expect("connect");
        c.hello(client, None).await;
        c
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = reqwest::get(self.url(path)).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        resp.json().await.unwrap_or_else(|e| panic!("GET {path}: body is not JSON: {e}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket client speaking wire contract v1.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The welcome frame, once received.
    pub welcome: Option<Value>,
}

impl Client {
    /// Opens a connection (no hello yet), optionally with an Origin header.
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Client, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().expect("origin header"));
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .unwrap_or_else(|_| panic!("connecting to {url} timed out"))?;
        Ok(Client { ws, welcome: None })
    }

    /// Sends hello and expects welcome.
    pub async fn hello(&mut self, client: &str, token: Option<&str>) -> Value {
        let mut hello = json!({"type": "hello", "protocol": 1, "client": client});
        if let Some(t) = token {
            hello["token"] = json!(t);
        }
        self.send(hello).await;
        let welcome = self.recv_type("welcome").await;
        self.welcome = Some(welcome.clone());
        welcome
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap_or_else(|e| panic!("sending {text:.80}: {e}"));
    }

    /// Sends a raw binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("sending a binary frame");
    }

    /// The next frame, parsed; pings and pongs are skipped. None when the connection closed
    /// (the close frame is returned by [`Client::expect_close`]).
    pub async fn next(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame from the server within {WAIT:?}"));
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(
                        serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("server sent non-JSON {t}: {e}"))
                    );
                }
                Some(Ok(Message::Close(frame))) => return Err(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next frame, which must be a JSON frame.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(close) => panic!("expected a frame, the connection closed: {close:?}"),
        }
    }

    /// The next frame, which must have `type` = `kind`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "expected a \"{kind}\" frame, got {v}");
        v
    }

    /// The next frame must be an error with `code`; returns it.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.recv_type("error").await;
        assert_eq!(v["code"], code, "expected error {code}, got {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {v}");
        assert!(v["retryable"].is_boolean(), "error without retryable: {v}");
        v
    }

    /// Sends `frame` and returns the next frame.
    pub async fn call(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.recv().await
    }

    /// The connection must close (after any frames, which are returned); returns the close code and reason.
    pub async fn expect_close(&mut self) -> (u16, String, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Ok(v) => frames.push(v),
                Err(Some(f)) => return (u16::from(f.code), f.reason.to_string(), frames),
                Err(None) => return (1006, String::new(), frames),
            }
        }
    }

    /// No frame arrives within `d` (pings aside).
    pub async fn expect_silence(&mut self, d: Duration) {
        loop {
            match tokio::time::timeout(d, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        drop(self);
    }
}
