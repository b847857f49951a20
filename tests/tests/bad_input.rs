//! Bad input of every kind against the real server: each gets its documented
//! error code (or HTTP status and JSON code, or close code), and a bystander
//! connected to the same server keeps working afterwards.

use std::time::{Duration, Instant};

use bridge_backend::config::{Role, Token};
use bridge_tests::{Client, RawClient, TestServer, config};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// A well-behaved client on /evolution, subscribed to its own topic before the
/// bad input happens; [`Bystander::still_works`] proves the server still serves it.
struct Bystander {
    c: Client,
    n: u64,
}

impl Bystander {
    async fn join(server: &TestServer) -> Self {
        Self::join_with(server, None).await
    }

    async fn join_with(server: &TestServer, token: Option<&str>) -> Self {
        let mut c = Client::connect(&server.ws_url("/evolution"), None).await.expect("bystander connects");
        c.hello("bystander", token).await;
        let ack = c.call(json!({"type": "subscribe", "id": "by-sub", "topics": ["bystander"]})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        Self { c, n: 0 }
    }

    /// Publishes on its topic and receives the event, then pings.
    async fn still_works(&mut self) {
        self.n += 1;
        let id = format!("by-{}", self.n);
        self.c.send(json!({"type": "publish", "id": id, "topic": "bystander", "data": {"n": self.n}})).await;
        // The ack and the event may come in either order (the event is read from the shared log).
        let (mut acked, mut got_event) = (false, false);
        while !(acked && got_event) {
            let f = self.c.recv().await;
            match f["type"].as_str() {
                Some("ack") if f["id"] == id.as_str() => acked = true,
                Some("event") if f["data"]["n"] == self.n => got_event = true,
                _ => panic!("the bystander got an unexpected frame: {f}"),
            }
        }
        ping(&mut self.c, 1000 + self.n).await;
    }
}

async fn ping(c: &mut Client, id: u64) {
    let pong = c.call(json!({"type": "ping", "id": id})).await;
    assert_eq!(pong, json!({"type": "pong", "id": id}), "the connection still answers pings");
}

/// Starts a server with the default test config, joins a bystander, opens a
/// client on `socket`, sends `text`, and checks the error: `code` and the echoed `id`.
/// The client stays usable (ping) and so does the bystander.
async fn bad_frame(socket: &str, text: &str, code: &str, id: Option<Value>) -> Value {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client(socket, "bad").await;
    c.send_text(text).await;
    let e = c.expect_error(code).await;
    assert_eq!(e.get("id"), id.as_ref(), "id echoed when it could be read: {e}");
    assert_eq!(e["retryable"], false, "{e}");
    ping(&mut c, 1).await;
    bystander.still_works().await;
    e
}

fn full_token_config() -> bridge_backend::Config {
    let mut cfg = config();
    cfg.auth.tokens = vec![
        Token {
            name: "ops".into(),
            token: FULL_TOKEN.into(),
            roles: vec![Role::Subscribe, Role::Publish, Role::Handle, Role::Agent, Role::Report],
        },
        Token { name: "reader".into(), token: READ_TOKEN.into(), roles: vec![Role::Subscribe] },
    ];
    cfg
}

const FULL_TOKEN: &str = "full-token-0123456789";
const READ_TOKEN: &str = "read-token-0123456789";

/// The refused upgrade's status and JSON body.
fn http_refusal(result: Result<Client, tungstenite::Error>) -> (u16, tungstenite::http::HeaderMap, Value) {
    match result {
        Ok(_) => panic!("the upgrade should have been refused"),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            let json = serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("refusal body is not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
            (resp.status().as_u16(), resp.headers().clone(), json)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

// --- Frames that are not valid requests --------------------------------------------------------

#[tokio::test]
async fn not_json() {
    let e = bad_frame("/evolution", "this is not json", "bad_request", None).await;
    assert!(e["message"].as_str().unwrap().starts_with("the frame is not valid JSON"), "{e}");
    bad_frame("/agents", "{\"type\": \"ping\", ", "bad_request", None).await;
}

#[tokio::test]
async fn json_but_not_an_object() {
    for text in ["[1, 2]", "42", "null", "\"ping\""] {
        let e = bad_frame("/evolution", text, "bad_request", None).await;
        assert_eq!(e["message"], "a frame must be a JSON object with a \"type\"", "{text}");
    }
}

#[tokio::test]
async fn no_type() {
    let e = bad_frame("/evolution", r#"{"id": "x1", "topic": "t"}"#, "bad_request", Some(json!("x1"))).await;
    assert_eq!(e["message"], "the frame has no \"type\"");
}

#[tokio::test]
async fn type_not_a_string() {
    let e = bad_frame("/agents", r#"{"type": 5, "id": 9}"#, "bad_request", Some(json!(9))).await;
    assert_eq!(e["message"], "\"type\" must be a string");
}

#[tokio::test]
async fn unknown_type() {
    let e = bad_frame("/evolution", r#"{"type": "teleport", "id": 7}"#, "unknown_type", Some(json!(7))).await;
    assert!(e["message"].as_str().unwrap().contains("teleport"), "{e}");
}

#[tokio::test]
async fn wrong_field_types() {
    let e = bad_frame(
        "/evolution",
        r#"{"type": "publish", "id": "p1", "topic": 3, "data": 1}"#,
        "bad_request",
        Some(json!("p1")),
    )
    .await;
    assert!(e["message"].as_str().unwrap().starts_with("invalid \"publish\" frame"), "{e}");
    bad_frame(
        "/agents",
        r#"{"type": "register", "id": "r1", "agent": "a", "capabilities": "plan"}"#,
        "bad_request",
        Some(json!("r1")),
    )
    .await;
    bad_frame("/evolution", r#"{"type": "ping", "id": 1.5}"#, "bad_request", None).await;
}

#[tokio::test]
async fn missing_id() {
    let e = bad_frame("/evolution", r#"{"type": "ping"}"#, "bad_request", None).await;
    assert_eq!(e["message"], "invalid \"ping\" frame: missing field `id`");
    bad_frame("/agents", r#"{"type": "discover"}"#, "bad_request", None).await;
}

#[tokio::test]
async fn empty_or_too_long_id() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "bad").await;
    for id in [String::new(), "x".repeat(129)] {
        c.send(json!({"type": "ping", "id": id})).await;
        let e = c.expect_error("bad_request").await;
        assert!(e["message"].as_str().unwrap().contains("\"id\" must be 1 to 128 bytes"), "{e}");
    }
    // 128 bytes is still fine.
    let id = "y".repeat(128);
    assert_eq!(c.call(json!({"type": "ping", "id": id})).await, json!({"type": "pong", "id": id}));
    bystander.still_works().await;
}

#[tokio::test]
async fn names_breaking_their_rules() {
    bad_frame("/agents", r#"{"type": "register", "id": "r", "agent": "bad name"}"#, "bad_request", Some(json!("r")))
        .await;
    bad_frame(
        "/evolution",
        r#"{"type": "publish", "id": "p", "topic": "a.*", "data": 1}"#,
        "bad_request",
        Some(json!("p")),
    )
    .await;
}

#[tokio::test]
async fn deep_nesting() {
    let nested =
        |n: usize| format!(r#"{{"type":"publish","id":"deep","topic":"t","data":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    let e = bad_frame("/evolution", &nested(70), "bad_request", None).await;
    assert_eq!(e["message"], "the frame nests deeper than 64 levels");
    // The frame object itself is a level: 63 levels of data are the most allowed.
    let server = TestServer::start().await;
    let mut c = server.client("/evolution", "ok").await;
    c.send_text(&nested(63)).await;
    assert_eq!(c.recv_type("ack").await["id"], "deep");
    c.send_text(&nested(64)).await;
    c.expect_error("bad_request").await;
}

#[tokio::test]
async fn huge_topic_list() {
    let topics: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let text = json!({"type": "subscribe", "id": "s", "topics": topics}).to_string();
    let e = bad_frame("/evolution", &text, "bad_request", Some(json!("s"))).await;
    assert_eq!(e["message"], "\"topics\" must list 1 to 64 names, got 65");
    // 64 is accepted.
    let server = TestServer::start().await;
    let mut c = server.client("/evolution", "ok").await;
    let ack = c.call(json!({"type": "subscribe", "id": "s", "topics": &topics[..64]})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[tokio::test]
async fn frames_of_the_other_socket() {
    let e = bad_frame(
        "/agents",
        r#"{"type": "publish", "id": "p", "topic": "t", "data": 1}"#,
        "unknown_type",
        Some(json!("p")),
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("agents socket"), "{e}");
    bad_frame("/evolution", r#"{"type": "register", "id": "r", "agent": "a"}"#, "unknown_type", Some(json!("r"))).await;
    bad_frame("/evolution", r#"{"type": "discover", "id": "d"}"#, "unknown_type", Some(json!("d"))).await;
}

// --- Size, binary, rate, misbehaviour -----------------------------------------------------------

#[tokio::test]
async fn oversize_frame_is_refused_and_the_connection_stays() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 1024;
    cfg.limits.hard_frame_bytes = 64 * 1024;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "big").await;
    assert_eq!(c.welcome.as_ref().unwrap()["max_frame_bytes"], 1024);
    let big = json!({"type": "publish", "id": "big", "topic": "t", "data": "x".repeat(2000)}).to_string();
    c.send_text(&big).await;
    let e = c.expect_error("too_large").await;
    assert!(e["message"].as_str().unwrap().contains("1024"), "{e}");
    ping(&mut c, 1).await;
    // Nothing was published.
    assert_eq!(server.get_json("/status").await["evolution"]["head"], 0);
    bystander.still_works().await;
}

#[tokio::test]
async fn frame_above_the_hard_limit_closes_with_1009() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 1024;
    cfg.limits.hard_frame_bytes = 4096;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "huge").await;
    c.send_text(&json!({"type": "publish", "id": "h", "topic": "t", "data": "x".repeat(6000)}).to_string()).await;
    let (code, _, frames) = c.expect_close().await;
    assert_eq!(code, 1009, "frames: {frames:?}");
    bystander.still_works().await;
}

#[tokio::test]
async fn binary_frame_is_refused_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/agents", "bin").await;
    c.send_binary(b"{\"type\":\"ping\",\"id\":1}".to_vec()).await;
    let e = c.expect_error("unsupported_frame").await;
    assert!(e.get("id").is_none(), "{e}");
    ping(&mut c, 2).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn flood_is_rate_limited_with_retry_after() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 2;
    cfg.limits.rate_burst = 3;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "flood").await;
    for i in 1..=6 {
        c.send(json!({"type": "ping", "id": i})).await;
    }
    for i in 1..=3 {
        assert_eq!(c.recv_type("pong").await["id"], i, "the burst is served");
    }
    let mut wait = 0;
    for _ in 4..=6 {
        let e = c.expect_error("rate_limited").await;
        assert_eq!(e["retryable"], true, "{e}");
        wait = e["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("rate_limited without retry_after_ms: {e}"));
        assert!((1..=501).contains(&wait), "at 2 frames/s one more is allowed within 500 ms: {e}");
    }
    // The limited frames were not processed; after retry_after_ms one more frame is.
    tokio::time::sleep(Duration::from_millis(wait)).await;
    ping(&mut c, 7).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn repeated_bad_frames_close_with_4429() {
    let mut cfg = config();
    cfg.limits.max_bad_frames = 3;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "pest").await;
    for _ in 0..4 {
        c.send_text("garbage").await;
    }
    let (code, reason, frames) = c.expect_close().await;
    assert_eq!(code, 4429, "{reason}");
    assert!(frames.iter().all(|f| f["code"] == "bad_request"), "{frames:?}");
    // Application outcomes do not count: a well-behaved client with many no_handler errors stays.
    let mut asker = server.client("/evolution", "asker").await;
    for i in 0..6 {
        asker.send(json!({"type": "request", "id": i, "action": "nobody"})).await;
        asker.expect_error("no_handler").await;
    }
    ping(&mut asker, 1).await;
    bystander.still_works().await;
    // Every bad frame within the allowance (and the one that exhausted it) is answered before the close.
    assert!((3..=4).contains(&frames.len()), "{} error frames before the close: {frames:?}", frames.len());
}

// --- Handshake ----------------------------------------------------------------------------------

#[tokio::test]
async fn no_hello_first() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = Client::connect(&server.ws_url("/evolution"), None).await.unwrap();
    c.send(json!({"type": "ping", "id": 1})).await;
    let (code, _, frames) = c.expect_close().await;
    assert_eq!(code, 4400);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0]["code"].as_str(), frames[0]["id"].as_u64()), (Some("hello_required"), Some(1)));
    bystander.still_works().await;
}

#[tokio::test]
async fn hello_timeout() {
    let mut cfg = config();
    cfg.heartbeat.hello_timeout_ms = 200;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let started = Instant::now();
    let mut c = Client::connect(&server.ws_url("/agents"), None).await.unwrap();
    let (code, _, frames) = c.expect_close().await;
    assert_eq!(code, 4400);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "hello_required");
    assert!(started.elapsed() >= Duration::from_millis(150), "closed before the hello timeout");
    bystander.still_works().await;
}

#[tokio::test]
async fn second_hello() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "twice").await;
    c.send(json!({"type": "hello", "protocol": 1, "client": "twice"})).await;
    let e = c.expect_error("already_hello").await;
    assert_eq!(e["retryable"], false);
    ping(&mut c, 1).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn wrong_protocol_version() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = Client::connect(&server.ws_url("/evolution"), None).await.unwrap();
    c.send(json!({"type": "hello", "protocol": 2, "client": "future"})).await;
    let (code, _, frames) = c.expect_close().await;
    assert_eq!(code, 4406);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "unsupported_protocol");
    bystander.still_works().await;
}

// --- Origins, tokens, roles ---------------------------------------------------------------------

#[tokio::test]
async fn bad_origin_is_refused_before_the_upgrade() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    for origin in ["https://evil.example", "http://localhost.evil.com", "null"] {
        let (status, _, body) = http_refusal(Client::connect(&server.ws_url("/evolution"), Some(origin)).await);
        assert_eq!(status, 403, "{origin}");
        assert_eq!(body["code"], "forbidden_origin", "{origin}: {body}");
        assert_eq!(body["retryable"], false, "{body}");
        assert!(body["message"].as_str().unwrap().contains(origin), "{body}");
    }
    bystander.still_works().await;
}

#[tokio::test]
async fn allowed_origins_connect() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let own = format!("http://{}", server.addr);
    for origin in ["http://localhost:1234", "http://127.0.0.1:9", own.as_str()] {
        let mut c = Client::connect(&server.ws_url("/agents"), Some(origin))
            .await
            .unwrap_or_else(|e| panic!("{origin} should be allowed: {e}"));
        c.hello("browser", None).await;
        ping(&mut c, 1).await;
    }
    bystander.still_works().await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_unauthorized() {
    let server = TestServer::start_with(full_token_config()).await;
    let mut bystander = Bystander::join_with(&server, Some(FULL_TOKEN)).await;
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let mut c = Client::connect(&server.ws_url("/evolution"), None).await.unwrap();
        let mut hello = json!({"type": "hello", "protocol": 1, "client": "intruder"});
        if let Some(t) = token {
            hello["token"] = json!(t);
        }
        c.send(hello).await;
        let (code, _, frames) = c.expect_close().await;
        assert_eq!(code, 4401, "token {token:?}");
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["code"], "unauthorized", "token {token:?}");
    }
    bystander.still_works().await;
}

#[tokio::test]
async fn token_without_the_role_is_forbidden_and_the_connection_stays() {
    let server = TestServer::start_with(full_token_config()).await;
    let mut bystander = Bystander::join_with(&server, Some(FULL_TOKEN)).await;
    let mut reader = Client::connect(&server.ws_url("/evolution"), None).await.unwrap();
    reader.hello("reader", Some(READ_TOKEN)).await;
    reader.send(json!({"type": "publish", "id": "p", "topic": "bystander", "data": 1})).await;
    let e = reader.expect_error("forbidden").await;
    assert_eq!(e["id"], "p");
    assert!(e["message"].as_str().unwrap().contains("publish"), "{e}");
    reader.send(json!({"type": "handle", "id": "h", "actions": ["evolve"]})).await;
    reader.expect_error("forbidden").await;
    // What the role allows still works.
    let ack = reader.call(json!({"type": "subscribe", "id": "s", "topics": ["bystander"]})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ping(&mut reader, 1).await;

    let mut agent = Client::connect(&server.ws_url("/agents"), None).await.unwrap();
    agent.hello("reader-agent", Some(READ_TOKEN)).await;
    agent.send(json!({"type": "register", "id": "r", "agent": "a"})).await;
    assert_eq!(agent.expect_error("forbidden").await["id"], "r");
    ping(&mut agent, 2).await;

    bystander.still_works().await;
    // The reader, subscribed to the bystander's topic, got the bystander's event but nothing from its refused publish.
    let e = reader.recv_type("event").await;
    assert_eq!((e["publisher"].as_str(), e["data"]["n"].as_u64()), (Some("ops/bystander"), Some(1)));
}

// --- Liveness and backpressure -----------------------------------------------------------------

/// Keeps the bystander talking for `d` (a live client pings; this is also the real
/// wait a server-side heartbeat timer needs).
async fn keep_talking(bystander: &mut Bystander, d: Duration) {
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < d {
        i += 1;
        ping(&mut bystander.c, i).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn heartbeat_config() -> bridge_backend::Config {
    let mut cfg = config();
    cfg.heartbeat.interval_ms = 100;
    cfg.heartbeat.timeout_ms = 300;
    cfg
}

#[tokio::test]
async fn heartbeat_timeout_closes_a_silent_client_with_4408() {
    let server = TestServer::start_with(heartbeat_config()).await;
    let mut bystander = Bystander::join(&server).await;
    // A client that, after its welcome, neither sends nor reads: not even pongs.
    let mut silent = RawClient::connect(&server, "/agents", "silent").await;
    assert_eq!(silent.welcome["heartbeat_ms"], 100);
    // The server lingers up to 1 s for a close reply this client never sends; the
    // bystander keeps talking all the while so only the silent client times out.
    let (end, ()) = tokio::join!(silent.read_until_end(), keep_talking(&mut bystander, Duration::from_millis(1800)));
    assert_eq!(end.close_code, Some(4408), "{end:?}");
    assert!(end.pings >= 1, "the server pinged before giving up: {end:?}");
    assert!(end.frames.is_empty(), "{end:?}");
    server.wait_status("the silent connection to be gone", |s| s["connections"]["agents"] == 0).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn heartbeat_timeout_close_code_reaches_a_client_that_reads_late() {
    let server = TestServer::start_with(heartbeat_config()).await;
    let mut bystander = Bystander::join(&server).await;
    // A tungstenite client that does not read for a while (so it does not answer the
    // server's pings), then reads: it answers the buffered pings and must see 4408.
    let mut late = server.client("/agents", "late").await;
    keep_talking(&mut bystander, Duration::from_millis(700)).await;
    let (code, reason, _) = late.expect_close().await;
    assert_eq!(code, 4408, "the heartbeat close code was lost ({reason:?})");
    bystander.still_works().await;
}

#[tokio::test]
async fn slow_consumer_that_falls_behind_the_history_is_closed_with_4000() {
    let mut cfg = config();
    cfg.evolution.history_events = 16;
    cfg.limits.max_frame_bytes = 256 * 1024;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    // A subscriber with a small receive buffer that stops reading after its ack.
    let mut slow = Client::connect_with_recv_buffer(&server.ws_url("/evolution"), 16 * 1024).await;
    slow.hello("slow", None).await;
    assert_eq!(slow.call(json!({"type": "subscribe", "id": "s", "topics": ["flood"]})).await["type"], "ack");

    // ~20 MB of events: far more than the socket buffers and 16 events of history hold.
    let mut publisher = server.client("/evolution", "flooder").await;
    let blob = "x".repeat(100 * 1024);
    for i in 1..=200u64 {
        let ack = publisher.call(json!({"type": "publish", "id": i, "topic": "flood", "data": blob})).await;
        assert_eq!(ack["position"]["seq"], i, "{}", ack["type"]);
    }
    bystander.still_works().await;

    // Now it reads: what was in flight arrives in order, then the close.
    let (code, reason, frames) = slow.expect_close().await;
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().expect("only events")).collect();
    assert!(seqs.iter().copied().eq(1..=seqs.len() as u64), "in order, without gaps: {seqs:?}");
    assert!(seqs.len() < 200, "a consumer that stopped reading cannot have got everything");
    assert_eq!(code, 4000, "{reason}; after {} events", seqs.len());
    assert!(reason.contains("slow consumer"), "{reason}");
    bystander.still_works().await;
}

#[tokio::test]
async fn subscriber_that_never_reads_is_dropped_after_the_write_timeout() {
    let mut cfg = config();
    cfg.evolution.history_events = 16;
    cfg.limits.max_frame_bytes = 256 * 1024;
    cfg.limits.write_timeout_ms = 300;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let mut slow = Client::connect_with_recv_buffer(&server.ws_url("/evolution"), 16 * 1024).await;
    slow.hello("slow", None).await;
    assert_eq!(slow.call(json!({"type": "subscribe", "id": "s", "topics": ["flood"]})).await["type"], "ack");
    let mut publisher = server.client("/evolution", "flooder").await;
    let blob = "x".repeat(100 * 1024);
    for i in 1..=200u64 {
        publisher.call(json!({"type": "publish", "id": i, "topic": "flood", "data": blob})).await;
    }
    // Without the slow client reading anything, the server must let go of it:
    // its writes have been blocked far longer than write_timeout_ms.
    server
        .wait_status("the server to drop the subscriber that never reads", |s| s["connections"]["evolution"] == 2)
        .await;
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("bridge_queue_drops_total{")), "{metrics}");
    // What it finally reads ends with the slow-consumer close, or the dropped connection.
    let (code, reason, _) = slow.expect_close().await;
    assert!(code == 4000 || code == 1006, "{code} {reason}");
    bystander.still_works().await;
}

// --- Agents errors ------------------------------------------------------------------------------

#[tokio::test]
async fn name_taken() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut first = server.client("/agents", "first").await;
    assert_eq!(first.call(json!({"type": "register", "id": 1, "agent": "alice"})).await["type"], "ack");
    let mut second = server.client("/agents", "second").await;
    second.send(json!({"type": "register", "id": 2, "agent": "alice"})).await;
    assert_eq!(second.expect_error("name_taken").await["id"], 2);
    ping(&mut second, 1).await;
    ping(&mut first, 1).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn unknown_agent() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/agents", "alice").await;
    c.call(json!({"type": "register", "id": 1, "agent": "alice"})).await;
    c.send(json!({"type": "send", "id": "m", "to": "nobody", "message_type": "x", "content": 1})).await;
    assert_eq!(c.expect_error("unknown_agent").await["id"], "m");
    ping(&mut c, 1).await;
    bystander.still_works().await;
}

#[tokio::test]
async fn stray_ack() {
    let server = TestServer::start().await;
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/agents", "alice").await;
    c.call(json!({"type": "register", "id": 1, "agent": "alice"})).await;
    c.send(json!({"type": "ack", "id": "never-sent", "from": "bob"})).await;
    let e = c.expect_error("unknown_message").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("never-sent"), Some(false)));
    ping(&mut c, 1).await;
    bystander.still_works().await;
}

// --- Limits -------------------------------------------------------------------------------------

#[tokio::test]
async fn too_many_subscriptions() {
    let mut cfg = config();
    cfg.evolution.max_subscriptions = 2;
    let server = TestServer::start_with(cfg).await;
    // The bystander's own subscription is within its own limit: limits are per connection.
    let mut bystander = Bystander::join(&server).await;
    let mut c = server.client("/evolution", "greedy").await;
    assert_eq!(c.call(json!({"type": "subscribe", "id": "s1", "topics": ["a", "b"]})).await["type"], "ack");
    c.send(json!({"type": "subscribe", "id": "s2", "topics": ["c"]})).await;
    let e = c.expect_error("limit_exceeded").await;
    assert_eq!(e["id"], "s2");
    // Re-subscribing what it already has is not more subscriptions.
    assert_eq!(c.call(json!({"type": "subscribe", "id": "s3", "topics": ["a"]})).await["type"], "ack");
    // The subscriptions it has still deliver; the refused one does not.
    let mut publisher = server.client("/evolution", "pub").await;
    for (id, topic) in [(1, "c"), (2, "a")] {
        publisher.call(json!({"type": "publish", "id": id, "topic": topic, "data": id})).await;
    }
    let e = c.recv_type("event").await;
    assert_eq!((e["topic"].as_str(), e["seq"].as_u64()), (Some("a"), Some(2)));
    bystander.still_works().await;
}

#[tokio::test]
async fn max_connections_gets_503_with_retry_after() {
    let mut cfg = config();
    cfg.limits.max_connections = 2;
    let server = TestServer::start_with(cfg).await;
    let mut bystander = Bystander::join(&server).await;
    let second = server.client("/agents", "second").await;
    let (status, headers, body) = http_refusal(Client::connect(&server.ws_url("/agents"), None).await);
    assert_eq!(status, 503);
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("5"));
    assert_eq!((body["code"].as_str(), body["retryable"].as_bool()), (Some("too_many_connections"), Some(true)));
    assert_eq!(body["retry_after_ms"], 5000);
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "a full server is not ready");
    bystander.still_works().await;
    // A freed slot can be used again.
    second.close().await;
    server.wait_status("the closed connection to free its slot", |s| s["connections"]["total"] == 1).await;
    let mut again = server.client("/evolution", "again").await;
    ping(&mut again, 1).await;
}

#[tokio::test]
async fn a_handshake_storm_is_admitted_at_the_configured_rate_and_the_rest_get_503_with_retry_after() {
    let mut cfg = config();
    cfg.limits.handshakes_per_sec = 1;
    cfg.limits.handshake_burst = 2;
    let server = TestServer::start_with(cfg).await;
    // A plain GET is a probe: it says what an upgrade would get, and takes nothing.
    for _ in 0..5 {
        let probe = reqwest::get(server.ws_url("/evolution").replacen("ws", "http", 1)).await.unwrap();
        assert_eq!(probe.status(), 426);
        let body: Value = probe.json().await.unwrap();
        assert_eq!(body["code"], "upgrade_required", "{body}");
    }
    let mut first = server.client("/evolution", "first").await;
    let _second = server.client("/agents", "second").await;
    let (status, headers, body) = http_refusal(Client::connect(&server.ws_url("/evolution"), None).await);
    assert_eq!(status, 503);
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    assert_eq!((body["code"].as_str(), body["retryable"].as_bool()), (Some("too_many_handshakes"), Some(true)));
    assert!(body["message"].as_str().unwrap().contains("limits.handshakes_per_sec"), "{body}");
    // Each refused client gets its own turn, a token apart: a storm comes back spread out.
    let first_turn = body["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&first_turn), "{body}");
    let (_, headers, body) = http_refusal(Client::connect(&server.ws_url("/evolution"), None).await);
    let second_turn = body["retry_after_ms"].as_u64().unwrap();
    assert!(second_turn > first_turn + 900, "turns {first_turn} then {second_turn} ms");
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("2"));
    // The probe tells a browser (which cannot see a failed upgrade's answer) the same.
    let probe = reqwest::get(server.url("/agents")).await.unwrap();
    assert_eq!(probe.status(), 503);
    assert!(probe.headers().contains_key("retry-after"));
    let body: Value = probe.json().await.unwrap();
    assert_eq!(body["code"], "too_many_handshakes", "{body}");
    // Admitted connections are not disturbed.
    ping(&mut first, 1).await;
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("reason=\"handshake_rate\""), "counted in the rejections");
}
