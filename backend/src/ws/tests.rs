//! The connection engine driven through in-memory channels: no socket, no
//! port, paused time where timing matters.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use bridge_core::protocol::{Ack, ClientFrame, ErrorCode, FrameError, ServerFrame, close};
use futures_util::{Sink, Stream};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::*;
use crate::activity::Activity;
use crate::config::{Auth, Heartbeat, Limits};
use crate::wire::encode;

/// A service that acks every frame, and whose feed hands out what the test puts in it.
#[derive(Debug, Default)]
struct Echo {
    closed: AtomicUsize,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    frames: Mutex<VecDeque<Utf8Bytes>>,
    lagged: Mutex<Option<String>>,
    ready: Mutex<Option<watch::Sender<()>>>,
}

impl Shared {
    fn put(&self, frame: Value) {
        crate::sync::lock(&self.frames).push_back(Utf8Bytes::from(frame.to_string()));
        if let Some(tx) = crate::sync::lock(&self.ready).as_ref() {
            tx.send_replace(());
        }
    }
}

#[derive(Debug)]
struct EchoFeed {
    shared: Arc<Shared>,
    ready: watch::Receiver<()>,
    active: bool,
}

impl Feed for EchoFeed {
    fn is_active(&self) -> bool {
        self.active
    }
    fn pending(&self) -> bool {
        self.active
            && (!crate::sync::lock(&self.shared.frames).is_empty() || crate::sync::lock(&self.shared.lagged).is_some())
    }
    async fn changed(&mut self) {
        let _ = self.ready.changed().await;
    }
    fn next_batch(&mut self, out: &mut Vec<Utf8Bytes>) -> Result<Option<Instant>, String> {
        if let Some(why) = crate::sync::lock(&self.shared.lagged).take() {
            return Err(why);
        }
        out.extend(crate::sync::lock(&self.shared.frames).drain(..));
        Ok(Some(Instant::now()))
    }
}

impl Service for Echo {
    type Feed = EchoFeed;
    type Command = bridge_core::protocol::Id;
    const SOCKET: &'static str = "echo";

    fn open(&self) -> EchoFeed {
        let (tx, rx) = watch::channel(());
        *crate::sync::lock(&self.shared.ready) = Some(tx);
        EchoFeed { shared: Arc::clone(&self.shared), ready: rx, active: false }
    }

    async fn handle(&self, frame: ClientFrame, peer: &Arc<Peer<Self::Command>>) -> Result<(), FrameError> {
        match frame {
            // "subscribe" turns the feed on, through the writer, in order with the frames.
            ClientFrame::Subscribe(s) => {
                let _ = peer.send(Outbound::Command(Box::new(s.id))).await;
                Ok(())
            }
            ClientFrame::Publish(p) => {
                let _ = peer.send_frame(&ServerFrame::Ack(Ack::new(p.id))).await;
                Ok(())
            }
            other => {
                Err(FrameError { code: ErrorCode::UnknownType, message: "not here".into(), id: other.id().cloned() })
            }
        }
    }

    fn command(&self, feed: &mut EchoFeed, id: Self::Command) -> Vec<Utf8Bytes> {
        feed.active = true;
        vec![encode(&ServerFrame::Ack(Ack::new(id)))]
    }

    fn closed(&self, _: &Arc<Peer<Self::Command>>) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

type TestSink = Pin<Box<dyn Sink<Message, Error = axum::Error> + Send>>;
type TestStream = Pin<Box<dyn Stream<Item = Result<Message, axum::Error>> + Send>>;

/// The client's end of an in-memory connection.
struct Client {
    to_server: Option<mpsc::UnboundedSender<Message>>,
    from_server: mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<()>,
    service: Arc<Echo>,
    connections: Arc<Connections>,
    shutdown: Shutdown,
}

fn limits() -> Limits {
    Limits { outbound_queue: 4, max_bad_frames: 3, rate_per_sec: 1000, rate_burst: 1000, ..Limits::default() }
}

fn heartbeat() -> Heartbeat {
    Heartbeat { interval_ms: 1_000, timeout_ms: 3_000, hello_timeout_ms: 500 }
}

fn connect(limits: Limits) -> Client {
    let (to_server, server_in) = mpsc::unbounded_channel::<Message>();
    let (server_out, from_server) = mpsc::unbounded_channel::<Message>();
    let sink: TestSink = Box::pin(futures_util::sink::unfold(server_out, |tx, msg: Message| async move {
        tx.send(msg).map_err(axum::Error::new)?;
        Ok::<_, axum::Error>(tx)
    }));
    let stream: TestStream =
        Box::pin(futures_util::stream::unfold(server_in, |mut rx| async move { rx.recv().await.map(|m| (Ok(m), rx)) }));
    let metrics = Arc::new(Metrics::new());
    let connections = Arc::new(Connections::new(10, Arc::clone(&metrics), Arc::new(Activity::new())));
    let shutdown = Shutdown::new();
    let gate = Arc::new(Gate::new(&Auth::default(), "127.0.0.1:1".parse().expect("addr")));
    let transport = Transport::new(limits, heartbeat(), gate, metrics, shutdown.clone(), Arc::clone(&connections));
    let service = Arc::new(Echo::default());
    let slot = connections.acquire("echo").expect("a free slot");
    let task = tokio::spawn(serve(sink, stream, Arc::clone(&service), transport, slot));
    Client { to_server: Some(to_server), from_server, task, service, connections, shutdown }
}

impl Client {
    fn send(&self, frame: Value) {
        self.send_text(&frame.to_string());
    }

    fn send_text(&self, text: &str) {
        let _ = self.to_server.as_ref().expect("open").send(Message::Text(Utf8Bytes::from(text.to_owned())));
    }

    /// The next message, pings included.
    async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(60), self.from_server.recv()).await.expect("no message within 60 s")
    }

    /// The next JSON frame (pings skipped).
    async fn recv(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(t)) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Some(Message::Ping(_)) => continue,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Frames until the close frame; returns its code and reason.
    async fn closed(&mut self) -> (u16, String, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Some(Message::Text(t)) => frames.push(serde_json::from_str(t.as_str()).expect("JSON")),
                Some(Message::Ping(_)) => continue,
                Some(Message::Close(Some(c))) => return (c.code, c.reason.to_string(), frames),
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    async fn hello(&mut self) -> Value {
        self.send(json!({"type": "hello", "protocol": 1, "client": "test"}));
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }

    /// Ends the client's side, then waits for the connection's task.
    async fn finish(mut self) -> Arc<Echo> {
        self.to_server.take();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the connection ended")
            .expect("no panic");
        self.service
    }
}

#[tokio::test]
async fn hello_then_frames_go_to_the_service_and_ping_is_answered() {
    let mut c = connect(limits());
    let welcome = c.hello().await;
    assert_eq!(welcome["session"], "echo-1");
    assert_eq!(welcome["protocol"], 1);
    c.send(json!({"type": "ping", "id": 7}));
    assert_eq!(c.recv().await, json!({"type": "pong", "id": 7}));
    c.send(json!({"type": "publish", "id": "p1", "topic": "t", "data": 1}));
    assert_eq!(c.recv().await, json!({"type": "ack", "id": "p1"}));
    c.send(json!({"type": "discover", "id": 3}));
    let e = c.recv().await;
    assert_eq!((e["code"].as_str(), &e["id"]), (Some("unknown_type"), &json!(3)), "{e}");
    assert_eq!(c.connections.open(), 1);
    let connections = Arc::clone(&c.connections);
    let service = c.finish().await;
    assert_eq!(service.closed.load(Ordering::SeqCst), 1, "the service hears that the connection closed");
    assert_eq!(connections.open(), 0, "the slot is free again");
}

#[tokio::test]
async fn a_first_frame_that_is_not_hello_is_refused_with_4400() {
    let mut c = connect(limits());
    c.send(json!({"type": "ping", "id": 1}));
    let (code, _, frames) = c.closed().await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert_eq!(frames[0]["code"], "hello_required", "{frames:?}");
    assert_eq!(c.finish().await.closed.load(Ordering::SeqCst), 0, "never handed to the service");
}

#[tokio::test(start_paused = true)]
async fn no_hello_in_time_is_refused() {
    let mut c = connect(limits());
    let (code, reason, frames) = c.closed().await;
    assert_eq!((code, frames[0]["code"].as_str()), (close::PROTOCOL_ERROR, Some("hello_required")), "{reason}");
}

#[tokio::test]
async fn bad_frames_get_errors_until_the_budget_is_spent() {
    let mut c = connect(limits());
    c.hello().await;
    for _ in 0..3 {
        c.send_text("not json");
        assert_eq!(c.recv().await["code"], "bad_request");
    }
    c.send_text("{\"type\":\"nope\",\"id\":1}");
    let (code, reason, frames) = c.closed().await;
    assert_eq!(code, close::TOO_MANY_ERRORS, "{reason}");
    assert_eq!(frames.len(), 1, "the error explaining the close comes first: {frames:?}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_pinged_then_closed_with_4408() {
    let mut c = connect(limits());
    c.hello().await;
    let mut pings = 0;
    let code = loop {
        match c.next().await {
            Some(Message::Ping(_)) => pings += 1,
            Some(Message::Close(Some(f))) => break f.code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, close::HEARTBEAT_TIMEOUT);
    assert!(pings >= 2, "pinged every interval before giving up: {pings}");
}

#[tokio::test]
async fn a_full_queue_closes_the_connection_as_a_slow_consumer() {
    let mut c = connect(limits());
    c.hello().await;
    let peer = c.connections.any().expect("one connection");
    // The queue holds 4; the writer may take one out while we push.
    let refused = (0..10)
        .map(|i| peer.push(Utf8Bytes::from(format!("{{\"type\":\"ack\",\"id\":{i}}}"))))
        .filter(Result::is_err)
        .count();
    assert!(refused > 0, "a bounded queue refuses");
    let (code, _, _) = c.closed().await;
    assert_eq!(code, close::SLOW_CONSUMER);
}

#[tokio::test]
async fn the_feed_is_written_in_order_after_its_command_and_lag_closes_with_4000() {
    let mut c = connect(limits());
    c.hello().await;
    c.service.shared.put(json!({"type": "event", "seq": 1}));
    c.send(json!({"type": "subscribe", "id": "s", "topics": ["*"]}));
    assert_eq!(c.recv().await, json!({"type": "ack", "id": "s"}), "the command's frames first");
    assert_eq!(c.recv().await, json!({"type": "event", "seq": 1}));
    c.service.shared.put(json!({"type": "event", "seq": 2}));
    assert_eq!(c.recv().await, json!({"type": "event", "seq": 2}), "woken when the feed changes");
    *crate::sync::lock(&c.service.shared.lagged) = Some("fell behind".into());
    c.service.shared.put(json!({"type": "event", "seq": 3}));
    let (code, reason, _) = c.closed().await;
    assert_eq!((code, reason.as_str()), (close::SLOW_CONSUMER, "fell behind"));
}

#[tokio::test]
async fn shutdown_closes_with_1001() {
    let mut c = connect(limits());
    c.hello().await;
    c.shutdown.trigger();
    let (code, _, _) = c.closed().await;
    assert_eq!(code, close::GOING_AWAY);
}
