//! nats-server's WebSocket listener as a fan-out peer: the same load generator
//! speaks the NATS client protocol (`CONNECT`, `SUB`, `PUB`, `MSG`, `PING`/`PONG`)
//! in WebSocket frames, so both servers are measured by one yardstick.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Ws;

/// Connects to the WebSocket listener at `addr`, says CONNECT, sends `ops`
/// (e.g. a `SUB`), and waits for the PONG that proves the server took them.
pub(crate) async fn connect(addr: &str, ops: &[&str]) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), None, true)
        .await
        .map_err(|e| format!("nats websocket: {e}"))?;
    let mut hello = String::from(r#"CONNECT {"verbose":false,"pedantic":false,"protocol":1}"#);
    hello.push_str("\r\n");
    for op in ops {
        hello.push_str(op);
        hello.push_str("\r\n");
    }
    hello.push_str("PING\r\n");
    ws.send(Message::binary(hello.into_bytes())).await.map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.map_err(|_| "nats: no PONG within 5 s")?;
        match msg {
            Some(Ok(Message::Binary(b))) if b.windows(4).any(|w| w == b"PONG") => return Ok(ws),
            Some(Ok(Message::Text(t))) if t.contains("PONG") => return Ok(ws),
            Some(Ok(_)) => continue,
            other => return Err(format!("nats: expected PONG, got {other:?}")),
        }
    }
}

/// `PUB subject` with `payload`.
pub(crate) fn publish(subject: &str, payload: &str) -> Message {
    Message::binary(format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()).into_bytes())
}

/// Whether a frame from the server holds a PING (to be answered with PONG).
pub(crate) fn is_ping(frame: &[u8]) -> bool {
    frame.starts_with(b"PING\r\n") || frame.windows(8).any(|w| w == b"\r\nPING\r\n")
}

pub(crate) fn pong() -> Message {
    Message::binary(b"PONG\r\n".to_vec())
}
