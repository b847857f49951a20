//! The backend's HTTP API against the real server: readiness, status, metrics,
//! bridge reports (idempotency, validation, bounds, auth), graceful shutdown
//! and the idle timeout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bridge_backend::config::{Role, Token};
use bridge_core::breaker::{BreakerConfig, CircuitBreaker};
use bridge_core::health::HealthModel;
use bridge_core::metrics::RetryMetrics;
use bridge_core::report::{BridgeReport, SocketSnapshot, SocketState, WebMcpSnapshot};
use bridge_core::time::Millis;
use bridge_tests::{Client, TestServer, config};
use serde_json::{Value, json};

/// A valid report, built from the real types the bridge serializes.
fn report(bridge: &str, instance: &str, seq: u64) -> BridgeReport {
    let mut breaker = CircuitBreaker::new("fetch", BreakerConfig::DEFAULT, Millis(0));
    BridgeReport {
        bridge_id: bridge.into(),
        instance: instance.into(),
        seq,
        ts: 1_700_000_000_000 + seq,
        version: bridge_core::VERSION.into(),
        page: Some("http://127.0.0.1:8765/demo/".into()),
        uptime_ms: 1000 * seq,
        health: HealthModel::bridge_default().snapshot(),
        breakers: vec![breaker.snapshot(Millis(5), 10)],
        retry: RetryMetrics::default().snapshot(),
        sockets: bridge_core::vecmap::VecMap::from([(
            "evolution".to_owned(),
            SocketSnapshot {
                state: SocketState::Open,
                url: "ws://127.0.0.1:8765/evolution".into(),
                connected_since: Some(Millis(1)),
                reconnects: 0,
                outbox: 0,
                outbox_limit: 256,
                last_error: None,
                position: Some("e:4".into()),
                resets: 0,
            },
        )]),
        nodes: Vec::new(),
        webmcp: Some(WebMcpSnapshot { available: false, provider: None, tools: vec![] }),
        tabs: None,
    }
}

fn body(r: &BridgeReport) -> String {
    serde_json::to_string(r).expect("reports serialize")
}

/// `PUT /api/bridges/{id}/report`; returns the status and the JSON body.
async fn put_report(server: &TestServer, id: &str, body: String, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .put(server.url(&format!("/api/bridges/{id}/report")))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("PUT report");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("response body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
    (status, json)
}

/// Asserts an HTTP JSON error: status, code, a message, and `retryable`.
fn assert_api_error((status, body): &(u16, Value), want_status: u16, code: &str) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["retryable"].is_boolean(), "{body}");
}

async fn bridges(server: &TestServer) -> Vec<Value> {
    server.get_json("/api/bridges").await["bridges"].as_array().expect("bridges list").clone()
}

async fn metrics_text(server: &TestServer) -> String {
    let resp = reqwest::get(server.url("/metrics")).await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "Prometheus text format: {ct}");
    resp.text().await.unwrap()
}

/// The value of the sample `series` (name with its labels, exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn temp_www(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bridge-http-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>dash</title>").unwrap();
    dir
}

async fn ping(c: &mut Client, id: u64) {
    assert_eq!(c.call(json!({"type": "ping", "id": id})).await, json!({"type": "pong", "id": id}));
}

// --- Health, status, metrics --------------------------------------------------------------------

#[tokio::test]
async fn readyz_warns_without_the_wasm_package_and_passes_with_it() {
    let www = temp_www("readyz");
    let server = TestServer::start_with(bridge_backend::Config { www_dir: www.clone(), ..config() }).await;
    let get = || async {
        let resp = reqwest::get(server.url("/readyz")).await.expect("GET /readyz");
        let status = resp.status().as_u16();
        assert_eq!(resp.headers()["content-type"], "application/health+json");
        (status, resp.json::<Value>().await.expect("json"))
    };
    let (status, body) = get().await;
    assert_eq!(status, 200, "warn is still ready: {body}");
    assert_eq!(body["status"], "warn", "{body}");
    assert_eq!(
        (body["version"].as_str(), body["serviceId"].as_str()),
        (Some(bridge_core::VERSION), Some("bridge-backend"))
    );
    let pkg = &body["checks"]["wasm:package"][0];
    assert_eq!(pkg["status"], "warn", "{body}");
    let output = pkg["output"].as_str().unwrap_or_else(|| panic!("a warn check says why: {body}"));
    assert!(output.contains("bridge_wasm_bg.wasm") && output.contains("missing"), "{output}");
    assert_eq!(body["checks"]["connections:utilization"][0]["status"], "pass");
    assert_eq!(body["checks"]["server:shutdown"][0]["status"], "pass");

    std::fs::create_dir_all(www.join("pkg")).unwrap();
    std::fs::write(www.join("pkg/bridge_wasm_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let (status, body) = get().await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pass")), "{body}");
    assert!(body["checks"]["wasm:package"][0].get("output").is_none(), "{body}");
    let _ = std::fs::remove_dir_all(&www);
}

#[tokio::test]
async fn status_counts_connections_and_its_counters_move() {
    let server = TestServer::start().await;
    let before = server.get_json("/status").await;
    assert_eq!(before["version"], bridge_core::VERSION);
    assert!(before["uptimeMs"].is_u64() && before["idleMs"].is_u64(), "{before}");
    assert_eq!(before["connections"], json!({"evolution": 0, "agents": 0, "total": 0, "max": 10_000}));

    let mut evo = server.client("/evolution", "status-evo").await;
    let mut agent = server.client("/agents", "status-agent").await;
    let s = server.get_json("/status").await;
    assert_eq!(s["connections"], json!({"evolution": 1, "agents": 1, "total": 2, "max": 10_000}));
    assert_eq!(s["idleMs"], 0, "not idle while connections are open");

    ping(&mut evo, 1).await;
    assert_eq!(evo.call(json!({"type": "publish", "id": "p", "topic": "t", "data": 1})).await["type"], "ack");
    evo.send_text("nonsense").await;
    evo.expect_error("bad_request").await;
    assert_eq!(agent.call(json!({"type": "register", "id": "r", "agent": "a1"})).await["type"], "ack");
    let after = server.get_json("/status").await;
    let c = |v: &Value, k: &str| v["counters"][k].as_u64().unwrap_or_else(|| panic!("counter {k}: {v}"));
    assert!(
        c(&after, "framesReceived") >= c(&before, "framesReceived") + 5,
        "hellos, ping, publish, register: {after}"
    );
    assert!(c(&after, "framesSent") >= c(&before, "framesSent") + 5, "welcomes, pong, acks, error: {after}");
    assert_eq!(c(&after, "errors"), c(&before, "errors") + 1, "{after}");
    assert_eq!(c(&after, "eventsPublished"), c(&before, "eventsPublished") + 1, "{after}");
    assert_eq!(after["evolution"]["head"], 1);
    assert_eq!(after["agents"], json!({"online": 1, "known": 1, "queuedMessages": 0}));

    agent.close().await;
    server.wait_status("the agents connection to be counted out", |s| s["connections"]["agents"] == 0).await;
    let s = server.get_json("/status").await;
    assert_eq!((s["connections"]["evolution"].as_u64(), s["connections"]["total"].as_u64()), (Some(1), Some(1)));
    assert_eq!(s["agents"]["online"], 0);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = TestServer::start().await;
    let mut sub = server.client("/evolution", "sub").await;
    assert_eq!(sub.call(json!({"type": "subscribe", "id": "s", "topics": ["m"]})).await["type"], "ack");
    let mut publisher = server.client("/evolution", "pub").await;
    let _agent = server.client("/agents", "agent").await;
    assert_eq!(publisher.call(json!({"type": "publish", "id": 1, "topic": "m", "data": 1})).await["type"], "ack");
    sub.recv_type("event").await;
    publisher.send_text("[]").await;
    publisher.expect_error("bad_request").await;
    publisher.send(json!({"type": "teleport", "id": 2})).await;
    publisher.expect_error("unknown_type").await;

    let text = metrics_text(&server).await;
    assert!(text.contains("# TYPE bridge_connections gauge"), "{text}");
    assert_eq!(sample(&text, "bridge_connections{socket=\"evolution\"}"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "bridge_connections{socket=\"agents\"}"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "bridge_frames_received_total{socket=\"evolution\",frame_type=\"publish\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "bridge_frames_received_total{socket=\"evolution\",frame_type=\"hello\"}"), Some(2.0));
    assert!(
        sample(&text, "bridge_frames_sent_total{socket=\"evolution\",frame_type=\"event\"}") >= Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "bridge_errors_total{code=\"bad_request\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "bridge_errors_total{code=\"unknown_type\"}"), Some(1.0), "{text}");
    assert!(text.contains("# TYPE bridge_publish_deliver_latency_seconds histogram"), "{text}");
    assert!(sample(&text, "bridge_publish_deliver_latency_seconds_count") >= Some(1.0), "{text}");
    assert!(text.lines().any(|l| l.starts_with("bridge_publish_deliver_latency_seconds_bucket{le=")), "{text}");
    assert_eq!(sample(&text, "bridge_events_published_total"), Some(1.0), "{text}");

    // Counters move.
    publisher.send_text("x").await;
    publisher.expect_error("bad_request").await;
    let text = metrics_text(&server).await;
    assert_eq!(sample(&text, "bridge_errors_total{code=\"bad_request\"}"), Some(2.0), "{text}");
}

// --- Bridge reports -----------------------------------------------------------------------------

#[tokio::test]
async fn reports_are_idempotent_by_instance_and_seq() {
    let server = TestServer::start().await;
    let put = |r: BridgeReport| put_report(&server, "b1", body(&r), None);
    assert_eq!(put(report("b1", "i1", 1)).await, (200, json!({"accepted": "stored", "seq": 1})));
    assert_eq!(put(report("b1", "i1", 1)).await, (200, json!({"accepted": "duplicate", "seq": 1})));
    assert_eq!(put(report("b1", "i1", 3)).await, (200, json!({"accepted": "stored", "seq": 3})));
    assert_eq!(put(report("b1", "i1", 2)).await, (200, json!({"accepted": "stale", "seq": 2})));
    // A reloaded page is a new instance and starts over at 1.
    assert_eq!(put(report("b1", "i2", 1)).await, (200, json!({"accepted": "stored", "seq": 1})));

    let list = server.get_json("/api/bridges").await;
    assert_eq!(list["staleAfterMs"], 30_000);
    let b = &list["bridges"][0];
    assert_eq!(list["bridges"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        (b["bridgeId"].as_str(), b["stale"].as_bool(), b["reports"].as_u64()),
        (Some("b1"), Some(false), Some(3))
    );
    assert!(b["lastSeenMsAgo"].as_u64().is_some_and(|ms| ms < 5_000), "{b}");
    assert!(b["lastReportUnixMs"].as_u64().is_some_and(|ms| ms > 1_600_000_000_000), "{b}");
    // The stored report is the latest stored one, as sent.
    let stored: BridgeReport = serde_json::from_value(b["report"].clone()).expect("the stored report round-trips");
    assert_eq!(stored, report("b1", "i2", 1));
    assert_eq!(server.get_json("/status").await["bridges"], json!({"known": 1, "stale": 0}));
}

#[tokio::test]
async fn a_silent_bridge_is_shown_stale() {
    let mut cfg = config();
    cfg.reports.stale_after_ms = 100;
    let server = TestServer::start_with(cfg).await;
    assert_eq!(put_report(&server, "b1", body(&report("b1", "i", 1)), None).await.0, 200);
    assert_eq!(bridges(&server).await[0]["stale"], false);
    // A real wait: the server's staleness clock has to pass.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let list = bridges(&server).await;
    assert_eq!(list[0]["stale"], true, "{list:?}");
    assert!(list[0]["lastSeenMsAgo"].as_u64().is_some_and(|ms| ms >= 100), "{list:?}");
    assert_eq!(server.get_json("/status").await["bridges"], json!({"known": 1, "stale": 1}));
}

#[tokio::test]
async fn bad_reports_are_refused_with_json_errors() {
    let mut cfg = config();
    cfg.reports.max_report_bytes = 16 * 1024;
    let server = TestServer::start_with(cfg).await;
    let valid = report("b1", "i1", 1);

    let mismatch = put_report(&server, "b2", body(&valid), None).await;
    assert_api_error(&mismatch, 400, "bad_request");
    assert!(mismatch.1["message"].as_str().unwrap().contains("b2"), "{}", mismatch.1);
    assert_api_error(&put_report(&server, "b1", "{not json".into(), None).await, 400, "bad_request");
    assert_api_error(&put_report(&server, "b1", json!({"bridgeId": "b1"}).to_string(), None).await, 400, "bad_request");
    assert_api_error(&put_report(&server, "-bad", body(&report("-bad", "i1", 1)), None).await, 400, "bad_request");
    assert_api_error(&put_report(&server, "b.1_x", body(&report("b.1_x", "", 1)), None).await, 400, "bad_request");

    let mut big = valid.clone();
    big.page = Some(format!("http://127.0.0.1/{}", "x".repeat(20 * 1024)));
    let too_large = put_report(&server, "b1", body(&big), None).await;
    assert_api_error(&too_large, 413, "too_large");

    // Nothing was stored; a good report still is.
    assert!(bridges(&server).await.is_empty());
    assert_eq!(put_report(&server, "b1", body(&valid), None).await.1["accepted"], "stored");
}

#[tokio::test]
async fn max_bridges_forgets_the_longest_silent() {
    let mut cfg = config();
    cfg.reports.max_bridges = 2;
    let server = TestServer::start_with(cfg).await;
    for id in ["a", "b"] {
        assert_eq!(put_report(&server, id, body(&report(id, "i", 1)), None).await.0, 200);
    }
    // a reports again (even a duplicate is a sign of life), so b is now the longest silent.
    assert_eq!(put_report(&server, "a", body(&report("a", "i", 1)), None).await.1["accepted"], "duplicate");
    assert_eq!(put_report(&server, "c", body(&report("c", "i", 1)), None).await.1["accepted"], "stored");
    let ids: Vec<String> = bridges(&server).await.iter().map(|b| b["bridgeId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["a", "c"]);
}

#[tokio::test]
async fn reports_need_a_token_with_the_report_role_when_tokens_are_configured() {
    let mut cfg = config();
    cfg.auth.tokens = vec![
        Token { name: "bridge".into(), token: "report-token-0123456789".into(), roles: vec![Role::Report] },
        Token { name: "reader".into(), token: "read-token-0123456789".into(), roles: vec![Role::Subscribe] },
    ];
    let server = TestServer::start_with(cfg).await;
    let b = || body(&report("b1", "i1", 1));
    assert_api_error(&put_report(&server, "b1", b(), None).await, 401, "unauthorized");
    assert_api_error(&put_report(&server, "b1", b(), Some("wrong-token-0123456789")).await, 401, "unauthorized");
    let forbidden = put_report(&server, "b1", b(), Some("read-token-0123456789")).await;
    assert_api_error(&forbidden, 403, "forbidden");
    assert!(forbidden.1["message"].as_str().unwrap().contains("report"), "{}", forbidden.1);
    assert!(bridges(&server).await.is_empty(), "refused reports are not stored");
    assert_eq!(put_report(&server, "b1", b(), Some("report-token-0123456789")).await.1["accepted"], "stored");
    // Reads stay open.
    assert_eq!(bridges(&server).await.len(), 1);
}

// --- Lifecycle ----------------------------------------------------------------------------------

#[tokio::test]
async fn stop_closes_sockets_with_1001_within_the_grace_period() {
    let mut cfg = config();
    cfg.shutdown.grace_ms = 2_000;
    let server = TestServer::start_with(cfg).await;
    let addr = server.addr;
    let mut evo = server.client("/evolution", "evo").await;
    let mut agent = server.client("/agents", "agent").await;
    ping(&mut evo, 1).await;
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    for c in [&mut evo, &mut agent] {
        let (code, reason, frames) = c.expect_close().await;
        assert_eq!(code, 1001, "{reason} {frames:?}");
        assert!(reason.contains("shutting down"), "{reason}");
    }
    let result = tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stop() returned")
        .expect("stop() did not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "finished within the grace period: {:?}",
        started.elapsed()
    );
    // Nothing listens any more.
    assert!(reqwest::get(format!("http://{addr}/livez")).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn idle_timeout_stops_a_server_without_connections() {
    let mut cfg = config();
    cfg.idle_timeout_ms = 300;
    let started = Instant::now();
    let server = TestServer::start_with(cfg).await;
    let addr = server.addr;
    let result = server.finished_within(Duration::from_secs(5)).await.expect("the idle server stopped by itself");
    assert!(result.is_ok(), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the idle timeout: {:?}", started.elapsed());
    assert!(reqwest::get(format!("http://{addr}/livez")).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn idle_timeout_waits_while_a_connection_is_open() {
    let mut cfg = config();
    cfg.idle_timeout_ms = 300;
    let server = TestServer::start_with(cfg).await;
    let mut c = server.client("/agents", "keeps-it-up").await;
    // A real wait, longer than the idle timeout: an open connection keeps the server up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    ping(&mut c, 1).await;
    c.close().await;
    let result = server.finished_within(Duration::from_secs(5)).await.expect("idle once the connection closed");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn idle_timeout_waits_while_a_dashboard_is_open() {
    let mut cfg = config();
    cfg.idle_timeout_ms = 1_500;
    let server = TestServer::start_with(cfg).await;
    // Three status ticks (one a second) outlast the 1.5 s idle timeout: the open stream keeps the server up.
    let ticks = sse_events(&server, 3, |kind, _| kind == "status").await;
    assert_eq!(ticks.len(), 3);
    assert_eq!(reqwest::get(server.url("/livez")).await.expect("still serving").status(), 200);
    // The stream was dropped with `sse_events`: now the server goes idle and stops.
    let result = server.finished_within(Duration::from_secs(6)).await.expect("idle once the dashboard closed");
    assert!(result.is_ok(), "{result:?}");
}

/// Reads SSE events from `/api/dashboard/stream` until `want` of them matched.
async fn sse_events(
    server: &TestServer,
    want: usize,
    mut keep: impl FnMut(&str, &serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let mut resp = reqwest::get(server.url("/api/dashboard/stream")).await.expect("GET stream");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while out.len() < want {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("SSE events within 5 s")
            .expect("the stream reads")
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message").to_owned();
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if data.is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&data).expect("SSE data is JSON");
            if keep(&event, &v) {
                out.push((event, v));
            }
        }
    }
    out
}

#[tokio::test]
async fn dashboard_stream_starts_with_a_snapshot_then_reports_and_status() {
    let server = TestServer::start().await;
    let (status, _) = put_report(&server, "dash-1", body(&report("dash-1", "i1", 1)), None).await;
    assert_eq!(status, 200);
    let first = sse_events(&server, 1, |_, _| true).await;
    assert_eq!(first[0].0, "snapshot");
    let snap = &first[0].1;
    assert_eq!(snap["bridges"][0]["bridgeId"], "dash-1");
    assert_eq!(snap["history"]["dash-1"].as_array().unwrap().len(), 1);
    assert!(snap["status"]["connections"].is_object());

    let status_events = sse_events(&server, 1, |e, _| e == "status").await;
    assert!(status_events[0].1["uptimeMs"].is_u64(), "the backend's status every second");

    let (reports, _) = tokio::join!(sse_events(&server, 1, |e, _| e == "report"), async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        put_report(&server, "dash-1", body(&report("dash-1", "i1", 2)), None).await;
    });
    let r = &reports[0].1;
    assert_eq!(r["bridge"]["bridgeId"], "dash-1");
    assert_eq!(r["bridge"]["report"]["seq"], 2);
    assert_eq!(r["point"]["health"], "unknown");
    assert_eq!(r["point"]["breakers"]["fetch"], "closed");
}
