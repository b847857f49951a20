//! Shared fixtures for the cross-crate tests: a real backend on an
//! ephemeral loopback port, and a real WebSocket client that speaks the
//! wire protocol. Every wait has a timeout that says what it waited for.

use std::net::SocketAddr;
use std::time::Duration;

pub mod nats;
pub mod node;

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

/// Prints a measured figure and appends it to `target/figures.txt`, which
/// `cargo xtask test` shows at the end (cargo hides a passing test's output).
pub fn figure(line: &str) {
    use std::io::Write;
    println!("FIGURE {line}");
    let file = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("figures.txt")))
        .unwrap_or_else(|| std::path::PathBuf::from("figures.txt"));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        let _ = writeln!(f, "{line}");
    }
}

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

impl TestServer {
    /// Waits at most `within` for the server to finish by itself (the idle
    /// timeout), without sending the stop signal. None when it is still running.
    pub async fn finished_within(mut self, within: Duration) -> Option<std::io::Result<()>> {
        let task = self.task.take().expect("running");
        match tokio::time::timeout(within, task).await {
            Ok(result) => Some(result.expect("the server task panicked")),
            Err(_) => None,
        }
    }

    /// Polls `GET /status` until `ready` holds for it (at most [`WAIT`]); returns that status.
    /// For server-side effects that follow a client-visible event asynchronously
    /// (a connection's slot is released after its close frame was sent).
    pub async fn wait_status(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.get_json("/status").await;
            if ready(&status) {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "waited {WAIT:?} for {what}; last status: {status}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Client {
    /// Opens a connection (no hello yet) whose kernel receive buffer is about
    /// `recv_buffer` bytes, so a client that stops reading pushes back on the server quickly.
    pub async fn connect_with_recv_buffer(url: &str, recv_buffer: u32) -> Client {
        let req = url.into_client_request().expect("ws url");
        let authority = req.uri().authority().expect("ws url with host and port").as_str().to_owned();
        let addr: SocketAddr = authority.parse().expect("ws url with an IP address and port");
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .expect("tcp socket");
        socket.set_recv_buffer_size(recv_buffer).expect("SO_RCVBUF");
        let stream = tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
            .expect("tcp connect");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)))
            .await
            .unwrap_or_else(|_| panic!("the WebSocket handshake with {url} timed out"))
            .expect("WebSocket handshake");
        Client { ws, welcome: None }
    }
}

/// A WebSocket client at the TCP level: after the upgrade and `hello` it writes
/// only what the test sends (never a pong, never a close reply) and reads only
/// when asked, so it can play a peer that has gone silent or stopped reading.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The welcome frame.
    pub welcome: Value,
}

/// What a [`RawClient`] read until the connection ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnd {
    /// The close frame's code, or None when the connection ended without one.
    pub close_code: Option<u16>,
    /// The close frame's reason.
    pub reason: String,
    /// The text frames before it, parsed.
    pub frames: Vec<Value>,
    /// WebSocket pings received.
    pub pings: usize,
}

impl RawClient {
    /// Upgrades `path` on `server` and does the hello as `client`.
    pub async fn connect(server: &TestServer, path: &str, client: &str) -> RawClient {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(server.addr))
            .await
            .expect("connect timed out")
            .expect("tcp connect");
        let mut c = RawClient { stream, buf: Vec::new(), welcome: Value::Null };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        c.write_all(request.as_bytes()).await;
        let end = loop {
            if let Some(i) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(c.read_some().await > 0, "the server closed during the upgrade");
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        c.buf.drain(..end);
        c.send_text(&json!({"type": "hello", "protocol": 1, "client": client}).to_string()).await;
        let welcome = c.read_frame().await.expect("welcome");
        assert_eq!(welcome.0, 1, "welcome must be a text frame");
        c.welcome = serde_json::from_slice(&welcome.1).expect("welcome is JSON");
        assert_eq!(c.welcome["type"], "welcome", "{}", c.welcome);
        c
    }

    /// Sends a (masked) text frame.
    pub async fn send_text(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.write_all(&frame).await;
    }

    /// Reads frames until the connection ends (each read waits at most [`WAIT`]).
    pub async fn read_until_end(&mut self) -> RawEnd {
        let mut end = RawEnd { close_code: None, reason: String::new(), frames: Vec::new(), pings: 0 };
        while let Some((opcode, payload)) = self.read_frame().await {
            match opcode {
                1 => end.frames.push(serde_json::from_slice(&payload).expect("text frames are JSON")),
                8 => {
                    if payload.len() >= 2 {
                        end.close_code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                        end.reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                    }
                    return end;
                }
                9 => end.pings += 1,
                other => panic!("unexpected opcode {other}"),
            }
        }
        end
    }

    /// The next whole frame (opcode, payload); None at the end of the stream.
    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, header, len)) = Self::parse_header(&self.buf)
                && self.buf.len() >= header + len
            {
                let payload = self.buf[header..header + len].to_vec();
                self.buf.drain(..header + len);
                return Some((opcode, payload));
            }
            if self.read_some().await == 0 {
                return None;
            }
        }
    }

    fn parse_header(buf: &[u8]) -> Option<(u8, usize, usize)> {
        if buf.len() < 2 {
            return None;
        }
        assert_eq!(buf[0] & 0x80, 0x80, "the server fragments frames");
        assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
        let (header, len) = match buf[1] & 0x7f {
            126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
            127 if buf.len() >= 10 => (10, u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize),
            126 | 127 => return None,
            n => (2, usize::from(n)),
        };
        Some((buf[0] & 0x0f, header, len))
    }

    /// Reads what is available into the buffer; 0 at the end of the stream (or a reset).
    async fn read_some(&mut self) -> usize {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            tokio::time::timeout(WAIT, self.stream.readable())
                .await
                .unwrap_or_else(|_| panic!("nothing from the server within {WAIT:?}"))
                .expect("readable");
            match self.stream.try_read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return 0,
            }
        }
    }

    async fn write_all(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            tokio::time::timeout(WAIT, self.stream.writable())
                .await
                .unwrap_or_else(|_| panic!("could not write within {WAIT:?}"))
                .expect("writable");
            match self.stream.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }
}

impl Client {
    /// The next JSON frame if one arrives within `d` (pings skipped); None when none does.
    /// Panics if the connection closes.
    pub async fn recv_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Some(
                        serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("server sent non-JSON {t}: {e}")),
                    );
                }
                Ok(other) => panic!("expected a frame or nothing, got {other:?}"),
            }
        }
    }
}

/// A stand-in for an OpenAI-compatible LLM server (the one thing we cannot run
/// here): real HTTP on 127.0.0.1:0, answering `POST /v1/chat/completions` as
/// scripted and counting requests.
pub mod llm_fixture {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    /// How the fixture answers.
    #[derive(Debug, Clone, Copy)]
    pub enum Script {
        /// Always answer.
        Ok,
        /// Answer HTTP 500 this many times, then answer.
        FailFirst(u32),
        /// Wait this long before answering.
        Slow(Duration),
    }

    #[derive(Debug)]
    struct Shared {
        script: Script,
        requests: AtomicU32,
    }

    /// A running fixture.
    #[derive(Debug)]
    pub struct LlmFixture {
        /// Its chat completions URL.
        pub url: String,
        shared: Arc<Shared>,
        task: tokio::task::JoinHandle<()>,
    }

    impl LlmFixture {
        /// Starts a fixture answering as `script`.
        pub async fn start(script: Script) -> Self {
            let shared = Arc::new(Shared { script, requests: AtomicU32::new(0) });
            let app = axum::Router::new()
                .route("/v1/chat/completions", post(chat))
                .route("/v1/models", get(|| async { Json(json!({"data": [{"id": "fixture-model"}]})) }))
                .with_state(Arc::clone(&shared));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind fixture");
            let url = format!("http://{}/v1/chat/completions", listener.local_addr().expect("addr"));
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Self { url, shared, task }
        }

        /// Requests received so far.
        pub fn requests(&self) -> u32 {
            self.shared.requests.load(Ordering::SeqCst)
        }
    }

    impl Drop for LlmFixture {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn chat(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
        let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
        match shared.script {
            Script::FailFirst(k) if n <= k => {
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"message": "model crashed"}})))
                    .into_response();
            }
            Script::Slow(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        let prompt =
            body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
        Json(json!({
            "id": format!("chatcmpl-{n}"),
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": format!("echo: {prompt}")}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }))
        .into_response()
    }
}
