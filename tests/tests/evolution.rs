//! The evolution socket against the real server: publish, subscribe, resume,
//! reset, dedup, request/response.

use std::time::Duration;

use bridge_tests::{Client, TestServer, config};
use serde_json::json;

async fn subscriber(server: &TestServer, topics: serde_json::Value, since: Option<serde_json::Value>) -> Client {
    let mut c = server.client("/evolution", "sub").await;
    let mut frame = json!({"type": "subscribe", "id": "s1", "topics": topics});
    if let Some(s) = since {
        frame["since"] = s;
    }
    let ack = c.call(frame).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["id"], "s1");
    c
}

async fn publish(c: &mut Client, id: &str, topic: &str, data: serde_json::Value) -> serde_json::Value {
    let ack = c.call(json!({"type": "publish", "id": id, "topic": topic, "data": data})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

#[tokio::test]
async fn publish_reaches_subscribers_in_order() {
    let server = TestServer::start().await;
    let mut sub = subscriber(&server, json!(["demo.*"]), None).await;
    let mut other = subscriber(&server, json!(["unrelated"]), None).await;
    let mut publisher = server.client("/evolution", "pub").await;
    for i in 1..=20 {
        let ack = publish(&mut publisher, &format!("p{i}"), "demo.tick", json!({"i": i})).await;
        assert_eq!(ack["position"]["seq"], i);
        assert_eq!(ack["position"]["epoch"], server_epoch(&server).await);
    }
    for i in 1..=20 {
        let e = sub.recv_type("event").await;
        assert_eq!((e["seq"].as_u64(), e["data"]["i"].as_u64()), (Some(i), Some(i)));
        assert_eq!(e["topic"], "demo.tick");
        assert_eq!(e["publisher"], "anonymous/pub");
    }
    other.expect_silence(Duration::from_millis(200)).await;
}

async fn server_epoch(server: &TestServer) -> String {
    server.get_json("/status").await["evolution"]["epoch"].as_str().expect("epoch").to_owned()
}

#[tokio::test]
async fn resume_replays_exactly_what_was_missed() {
    let server = TestServer::start().await;
    let epoch = server_epoch(&server).await;
    let mut publisher = server.client("/evolution", "pub").await;
    let mut sub = subscriber(&server, json!(["t"]), None).await;
    for i in 1..=5 {
        publish(&mut publisher, &format!("a{i}"), "t", json!(i)).await;
    }
    let mut last = 0;
    for _ in 0..3 {
        last = sub.recv_type("event").await["seq"].as_u64().expect("seq");
    }
    assert_eq!(last, 3);
    sub.drop_connection();
    for i in 6..=8 {
        publish(&mut publisher, &format!("a{i}"), "t", json!(i)).await;
    }
    let mut resumed = subscriber(&server, json!(["t"]), Some(json!({"epoch": epoch, "seq": last}))).await;
    let seqs: Vec<u64> = futures_collect(&mut resumed, 5).await;
    assert_eq!(seqs, [4, 5, 6, 7, 8], "no loss, no duplicate, no reordering");
    resumed.expect_silence(Duration::from_millis(100)).await;
}

async fn futures_collect(c: &mut Client, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.recv_type("event").await["seq"].as_u64().expect("seq"));
    }
    out
}

#[tokio::test]
async fn reset_when_history_cannot_cover() {
    let mut cfg = config();
    cfg.evolution.history_events = 3;
    let server = TestServer::start_with(cfg).await;
    let epoch = server_epoch(&server).await;
    let mut publisher = server.client("/evolution", "pub").await;
    for i in 1..=6 {
        publish(&mut publisher, &format!("a{i}"), "t", json!(i)).await;
    }
    let mut c = server.client("/evolution", "late").await;
    c.send(json!({"type": "subscribe", "id": "s", "topics": ["t"], "since": {"epoch": epoch, "seq": 1}})).await;
    c.recv_type("ack").await;
    let reset = c.recv_type("reset").await;
    assert_eq!((reset["seq"].as_u64(), reset["reason"].as_str()), (Some(3), Some("history_trimmed")));
    assert_eq!(futures_collect(&mut c, 3).await, [4, 5, 6]);

    let mut old = server.client("/evolution", "old").await;
    old.send(json!({"type": "subscribe", "id": "s", "topics": ["t"], "since": {"epoch": "previous-run", "seq": 5}}))
        .await;
    old.recv_type("ack").await;
    let reset = old.recv_type("reset").await;
    assert_eq!(reset["reason"], "epoch_changed");
    assert_eq!(reset["epoch"], epoch);
}

#[tokio::test]
async fn publish_is_idempotent_by_publisher_and_id() {
    let server = TestServer::start().await;
    let mut sub = subscriber(&server, json!(["*"]), None).await;
    let mut p = server.client("/evolution", "daemon-1").await;
    let first = publish(&mut p, "same", "t", json!(1)).await;
    let again = publish(&mut p, "same", "t", json!(1)).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["position"], first["position"]);
    // The same publisher after a reconnect is still deduplicated.
    p.close().await;
    let mut p = server.client("/evolution", "daemon-1").await;
    assert_eq!(publish(&mut p, "same", "t", json!(1)).await["duplicate"], true);
    // Another publisher with the same id is not.
    let mut q = server.client("/evolution", "daemon-2").await;
    assert!(publish(&mut q, "same", "t", json!(2)).await.get("duplicate").is_none());
    assert_eq!(futures_collect(&mut sub, 2).await, [1, 2]);
    sub.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn requests_are_routed_to_a_handler_and_answered_once() {
    let server = TestServer::start().await;
    let mut handler = server.client("/evolution", "evolver").await;
    assert_eq!(handler.call(json!({"type": "handle", "id": "h", "actions": ["evolve"]})).await["type"], "ack");
    let mut page = server.client("/evolution", "page").await;
    page.send(json!({"type": "request", "id": "q1", "action": "evolve", "params": {"gen": 7}})).await;
    let routed = handler.recv_type("request").await;
    assert_eq!(routed["action"], "evolve");
    assert_eq!(routed["params"], json!({"gen": 7}));
    handler.send(json!({"type": "response", "id": routed["id"], "ok": true, "result": {"fitness": 0.9}})).await;
    let resp = page.recv_type("response").await;
    assert_eq!(resp, json!({"type": "response", "id": "q1", "ok": true, "result": {"fitness": 0.9}}));
    // The same id again (a retry after a lost answer) gets the same answer without a second run.
    page.send(json!({"type": "request", "id": "q1", "action": "evolve", "params": {"gen": 7}})).await;
    assert_eq!(page.recv_type("response").await, resp);
    handler.expect_silence(Duration::from_millis(100)).await;
    // A second answer to the same routed request is refused.
    handler.send(json!({"type": "response", "id": routed["id"], "ok": true})).await;
    handler.expect_error("unknown_message").await;
}

#[tokio::test]
async fn no_handler_and_timeout() {
    let server = TestServer::start().await;
    let mut page = server.client("/evolution", "page").await;
    page.send(json!({"type": "request", "id": 1, "action": "evolve"})).await;
    let e = page.expect_error("no_handler").await;
    assert_eq!((e["id"].as_u64(), e["retryable"].as_bool()), (Some(1), Some(true)));

    let mut handler = server.client("/evolution", "slow").await;
    handler.call(json!({"type": "handle", "id": "h", "actions": ["evolve"]})).await;
    page.send(json!({"type": "request", "id": 2, "action": "evolve", "timeout_ms": 100})).await;
    handler.recv_type("request").await;
    let e = page.expect_error("timeout").await;
    assert_eq!(e["id"], 2);
}

#[tokio::test]
async fn a_handler_that_leaves_fails_its_requests() {
    let server = TestServer::start().await;
    let mut handler = server.client("/evolution", "flaky").await;
    handler.call(json!({"type": "handle", "id": "h", "actions": ["evolve"]})).await;
    let mut page = server.client("/evolution", "page").await;
    page.send(json!({"type": "request", "id": "q", "action": "evolve"})).await;
    handler.recv_type("request").await;
    handler.drop_connection();
    let e = page.expect_error("no_handler").await;
    assert!(e["message"].as_str().unwrap().contains("disconnected"), "{e}");
}

#[tokio::test]
async fn http_publish_with_idempotency_key() {
    let server = TestServer::start().await;
    let mut sub = subscriber(&server, json!(["ops.*"]), None).await;
    let http = reqwest::Client::new();
    let post = || {
        http.post(server.url("/api/evolution/publish"))
            .header("idempotency-key", "k-1")
            .json(&json!({"topic": "ops.deploy", "data": {"v": 2}}))
            .send()
    };
    let first: serde_json::Value = post().await.unwrap().json().await.unwrap();
    let again: serde_json::Value = post().await.unwrap().json().await.unwrap();
    assert_eq!((first["seq"].as_u64(), first["duplicate"].as_bool()), (Some(1), Some(false)));
    assert_eq!((again["seq"].as_u64(), again["duplicate"].as_bool()), (Some(1), Some(true)));
    let e = sub.recv_type("event").await;
    assert_eq!((e["publisher"].as_str(), e["data"]["v"].as_u64()), (Some("http:anonymous"), Some(2)));
    sub.expect_silence(Duration::from_millis(100)).await;
    let bad = http
        .post(server.url("/api/evolution/publish"))
        .json(&json!({"topic": "bad topic", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");
}
