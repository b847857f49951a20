//! Cluster mode (`store = "nats"`) against a real nats-server on a free
//! loopback port: one stream and one epoch for every node, resume on another
//! node after a SIGKILL, every node killed and restarted during a stream,
//! NATS itself killed and restarted, requests answered across nodes, and clear
//! errors at start.

use std::time::{Duration, Instant};

use bridge_backend::Config;
use bridge_backend::config::{Nats, StoreKind};
use bridge_tests::nats::{NatsServer, free_port};
use bridge_tests::node::{NodeProcess, backend_bin};
use bridge_tests::{Client, TestServer, WAIT, config};
use serde_json::{Value, json};

/// A node's config on `nats`: the NATS store, short NATS timeouts, no per-connection rate limit.
fn node_config(nats: &NatsServer, id: &str) -> Config {
    let mut cfg = config();
    cfg.store = StoreKind::Nats;
    cfg.node_id = id.to_owned();
    cfg.nats = Nats { url: nats.url(), request_timeout_ms: 1_000, connect_timeout_ms: 2_000, ..Nats::default() };
    cfg.limits.rate_per_sec = 100_000;
    cfg.limits.rate_burst = 100_000;
    cfg
}

async fn subscribe(c: &mut Client, since: Option<Value>) -> Value {
    let mut frame = json!({"type": "subscribe", "id": "s", "topics": ["*"]});
    if let Some(since) = since {
        frame["since"] = since;
    }
    let ack = c.call(frame).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

async fn publish(c: &mut Client, id: u64, topic: &str) -> Value {
    let ack = c.call(json!({"type": "publish", "id": id, "topic": topic, "data": {"n": id}})).await;
    assert_eq!(ack["type"], "ack", "publish {id}: {ack}");
    ack
}

/// Polls `url` until `ready` holds for its status and JSON body.
async fn poll(url: &str, what: &str, within: Duration, ready: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(resp) = reqwest::get(url).await {
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if ready(status, &body) {
                return body;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}; last: {status} {body}");
        } else {
            assert!(Instant::now() < deadline, "waited {within:?} for {what}; {url} does not answer");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_every_node_once_in_order_with_one_epoch() {
    let nats = NatsServer::start();
    let a = TestServer::start_with(node_config(&nats, "a")).await;
    let b = TestServer::start_with(node_config(&nats, "b")).await;
    let c = TestServer::start_with(node_config(&nats, "c")).await;
    let mut on_a = a.client("/evolution", "sub-a").await;
    let mut on_b = b.client("/evolution", "sub-b").await;
    let epoch = subscribe(&mut on_a, None).await["position"]["epoch"].clone();
    assert_eq!(subscribe(&mut on_b, None).await["position"]["epoch"], epoch, "one epoch on every node");
    let mut publisher = c.client("/evolution", "publisher").await;
    for id in 1..=50 {
        let ack = publish(&mut publisher, id, &format!("t.{}", id % 3)).await;
        assert_eq!(ack["position"], json!({"epoch": epoch, "seq": id}), "the stream's seq, on node c too");
    }
    for (name, sub) in [("a", &mut on_a), ("b", &mut on_b)] {
        for seq in 1..=50 {
            let e = sub.recv_type("event").await;
            assert_eq!((e["seq"].as_u64(), &e["epoch"]), (Some(seq), &epoch), "node {name}: {e}");
            assert_eq!(e["data"], json!({"n": seq}), "node {name}");
            assert_eq!(e["publisher"], "anonymous/publisher");
        }
        sub.expect_silence(Duration::from_millis(200)).await;
    }
    for node in [&a, &b, &c] {
        let status = node.get_json("/status").await;
        assert_eq!(status["evolution"]["epoch"], epoch, "{status}");
        assert_eq!(status["store"]["kind"], "nats");
        assert_eq!(status["store"]["details"]["state"], "connected", "{status}");
    }
    // A re-sent id on another node is the same event: JetStream's deduplication is cluster-wide.
    let mut again = a.client("/evolution", "publisher").await;
    let dup = again.call(json!({"type": "publish", "id": 7, "topic": "t.1", "data": {"n": 7}})).await;
    assert_eq!((dup["position"]["seq"].as_u64(), dup["duplicate"].as_bool()), (Some(7), Some(true)), "{dup}");
    on_a.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_subscriber_resumes_on_another_node_after_its_node_is_killed() {
    let nats = NatsServer::start();
    let mut a = NodeProcess::start(&nats.url(), "a", &[]).await;
    let b = NodeProcess::start(&nats.url(), "b", &[]).await;
    let mut sub = Client::connect(&a.ws_url("/evolution"), None).await.expect("connect to a");
    sub.hello("sub", None).await;
    let epoch = subscribe(&mut sub, None).await["position"]["epoch"].clone();
    let mut publisher = Client::connect(&b.ws_url("/evolution"), None).await.expect("connect to b");
    publisher.hello("pub", None).await;
    for id in 1..=50 {
        publish(&mut publisher, id, "t").await;
    }
    for seq in 1..=50 {
        assert_eq!(sub.recv_type("event").await["seq"], seq);
    }
    a.kill().await;
    let (code, _, _) = sub.expect_close().await;
    assert_eq!(code, 1006, "SIGKILL: no close frame");
    for id in 51..=100 {
        publish(&mut publisher, id, "t").await;
    }
    let started = Instant::now();
    let mut sub = Client::connect(&b.ws_url("/evolution"), None).await.expect("connect to b");
    sub.hello("sub", None).await;
    let ack = subscribe(&mut sub, Some(json!({"epoch": epoch, "seq": 50}))).await;
    assert_eq!(ack["position"], json!({"epoch": epoch, "seq": 100}));
    for seq in 51..=100 {
        let e = sub.recv().await;
        assert_eq!((e["type"].as_str(), e["seq"].as_u64()), (Some("event"), Some(seq)), "no reset, no gap: {e}");
    }
    bridge_tests::figure(&format!(
        "cluster: a subscriber resumed on another node after SIGKILL and had the 50 missed events in {:?}",
        started.elapsed()
    ));
}

#[tokio::test]
async fn nats_killed_and_restarted_readiness_goes_red_then_green_and_nothing_acknowledged_is_lost() {
    let mut nats = NatsServer::start();
    let node = TestServer::start_with(node_config(&nats, "a")).await;
    let mut sub = node.client("/evolution", "sub").await;
    subscribe(&mut sub, None).await;
    let mut publisher = node.client("/evolution", "pub").await;
    for id in 1..=20 {
        publish(&mut publisher, id, "t").await;
    }
    nats.kill();
    let body = poll(&node.url("/readyz"), "readiness to fail", WAIT, |s, _| s == 503).await;
    let check = &body["checks"]["store:reachable"][0];
    assert_eq!(check["status"], "fail", "{body}");
    assert!(check["output"].as_str().is_some_and(|o| o.contains("unreachable")), "says why: {body}");
    // Publishing now fails, retryably, over the socket and over HTTP.
    let e = publisher.call(json!({"type": "publish", "id": 21, "topic": "t", "data": {"n": 21}})).await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("unavailable")), "{e}");
    assert_eq!(e["retryable"], true);
    let resp = reqwest::Client::new()
        .post(node.url("/api/evolution/publish"))
        .json(&json!({"topic": "t", "data": 0}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unavailable");
    nats.restart();
    poll(&node.url("/readyz"), "readiness to pass again", Duration::from_secs(15), |s, _| s == 200).await;
    // The failed publish is retried with the same id; the rest follow.
    for id in 21..=30 {
        publish(&mut publisher, id, "t").await;
    }
    // The subscriber kept its socket and misses nothing that was acknowledged.
    for seq in 1..=30 {
        let e = sub.recv_type("event").await;
        assert_eq!(e["seq"], seq, "{e}");
        assert_eq!(e["data"]["n"], seq, "{e}");
    }
    sub.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_request_sent_on_one_node_is_answered_by_a_handler_on_another() {
    let nats = NatsServer::start();
    let a = TestServer::start_with(node_config(&nats, "a")).await;
    let c = TestServer::start_with(node_config(&nats, "c")).await;
    let mut handler = c.client("/evolution", "handler").await;
    let ack = handler.call(json!({"type": "handle", "id": 1, "actions": ["evolve", "stall"]})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mut requester = a.client("/evolution", "requester").await;
    requester.send(json!({"type": "request", "id": "q1", "action": "evolve", "params": {"p": 64}})).await;
    let Some(routed) = handler.recv_within(bridge_tests::WAIT).await else {
        panic!("the handler got no request; the requester got {:?}", requester.recv_within(WAIT).await);
    };
    assert_eq!((routed["action"].as_str(), &routed["params"]), (Some("evolve"), &json!({"p": 64})), "{routed}");
    handler.send(json!({"type": "response", "id": routed["id"], "ok": true, "result": {"best": 0.97}})).await;
    assert_eq!(
        requester.recv().await,
        json!({"type": "response", "id": "q1", "ok": true, "result": {"best": 0.97}}),
        "exactly one answer, under the requester's id"
    );
    requester.expect_silence(Duration::from_millis(200)).await;
    // Nobody handles it anywhere: no_handler, at once.
    let started = Instant::now();
    requester.send(json!({"type": "request", "id": "q2", "action": "nobody"})).await;
    let e = requester.expect_error("no_handler").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("q2"), Some(true)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1), "no waiting for a timeout: {:?}", started.elapsed());
    // The handler stays silent: timeout, as on one node.
    requester.send(json!({"type": "request", "id": "q3", "action": "stall", "timeout_ms": 300})).await;
    handler.recv_type("request").await;
    requester.expect_error("timeout").await;
    // The handler leaves before answering: no_handler.
    requester.send(json!({"type": "request", "id": "q4", "action": "evolve"})).await;
    handler.recv_type("request").await;
    handler.close().await;
    let e = requester.expect_error("no_handler").await;
    assert_eq!(e["id"], "q4", "{e}");
    let status = c.wait_status("the handler's action to be gone", |s| s["evolution"]["handlers"] == json!({})).await;
    assert_eq!(status["evolution"]["pendingRequests"], 0, "{status}");
}

#[tokio::test]
async fn unreachable_nats_at_start_is_a_clear_error() {
    let port = free_port();
    let mut cfg = config();
    cfg.store = StoreKind::Nats;
    cfg.nats.url = format!("nats://127.0.0.1:{port}");
    cfg.nats.connect_timeout_ms = 1_000;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let started = Instant::now();
    let err = bridge_backend::run(listener, cfg, std::future::pending()).await.expect_err("no NATS there");
    let text = err.to_string();
    assert!(text.contains(&format!("nats://127.0.0.1:{port}")), "names the URL: {text}");
    assert!(text.contains("cannot connect to NATS") || text.contains("cannot reach NATS"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The binary says the same and exits non-zero, before it claims to listen.
    let out = std::process::Command::new(backend_bin())
        .args(["--port", "0", "--store", "nats", "--nats-url", &format!("nats://127.0.0.1:{port}")])
        .env("BRIDGE_NATS__CONNECT_TIMEOUT_MS", "1000")
        .output()
        .expect("run bridge-backend");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bridge-backend: cannot connect to NATS at nats://127.0.0.1:"), "{stderr}");
}

#[tokio::test]
async fn a_stream_with_other_settings_is_refused_and_left_alone() {
    let nats = NatsServer::start();
    let mut first = node_config(&nats, "a");
    first.evolution.history_events = 100;
    let a = TestServer::start_with(first).await;
    let mut publisher = a.client("/evolution", "pub").await;
    publish(&mut publisher, 1, "t").await;
    let mut other = node_config(&nats, "b");
    other.evolution.history_events = 200;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let err = bridge_backend::run(listener, other, std::future::pending()).await.expect_err("other limits");
    let text = err.to_string();
    assert!(text.contains("BRIDGE_EVOLUTION exists with other settings"), "{text}");
    assert!(text.contains("max_msgs is 100, this node wants 200 (evolution.history_events)"), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    // The first node and its stream are untouched.
    assert_eq!(publish(&mut publisher, 2, "t").await["position"]["seq"], 2);
}

#[tokio::test]
async fn a_restarted_node_keeps_the_epoch_and_serves_history_from_the_stream() {
    let nats = NatsServer::start();
    let mut a = NodeProcess::start(&nats.url(), "a", &[]).await;
    let mut c = Client::connect(&a.ws_url("/evolution"), None).await.expect("connect");
    c.hello("pub", None).await;
    let epoch = publish(&mut c, 1, "t").await["position"]["epoch"].clone();
    for id in 2..=5 {
        publish(&mut c, id, "t").await;
    }
    a.kill().await;
    a.restart().await;
    let mut c = Client::connect(&a.ws_url("/evolution"), None).await.expect("connect");
    c.hello("sub", None).await;
    let ack = subscribe(&mut c, Some(json!({"epoch": epoch, "seq": 2}))).await;
    assert_eq!(ack["position"], json!({"epoch": epoch, "seq": 5}), "same epoch after a restart");
    for seq in 3..=5 {
        assert_eq!(c.recv_type("event").await["seq"], seq);
    }
}

#[tokio::test]
async fn a_lost_stream_is_recreated_with_a_new_epoch_and_subscribers_are_told() {
    let nats = NatsServer::start();
    let node = TestServer::start_with(node_config(&nats, "a")).await;
    let mut sub = node.client("/evolution", "sub").await;
    let old = subscribe(&mut sub, None).await["position"]["epoch"].clone();
    let mut publisher = node.client("/evolution", "pub").await;
    for id in 1..=3 {
        publish(&mut publisher, id, "t").await;
    }
    for seq in 1..=3 {
        assert_eq!(sub.recv_type("event").await["seq"], seq);
    }
    // Someone deletes the stream behind the cluster's back.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect to NATS"));
    js.delete_stream("BRIDGE_EVOLUTION").await.expect("delete the stream");
    let (code, reason, _) = tokio::time::timeout(Duration::from_secs(10), sub.expect_close())
        .await
        .expect("the subscriber is told within 10 s");
    assert_eq!(code, 4000, "{reason}");
    assert!(reason.contains("new epoch"), "{reason}");
    let status = node.wait_status("a new epoch", |s| s["evolution"]["epoch"] != old).await;
    let new = status["evolution"]["epoch"].clone();
    let mut sub = node.client("/evolution", "sub").await;
    let ack = subscribe(&mut sub, Some(json!({"epoch": old, "seq": 3}))).await;
    assert_eq!(ack["position"], json!({"epoch": new, "seq": 0}));
    let reset = sub.recv_type("reset").await;
    assert_eq!((reset["reason"].as_str(), &reset["epoch"]), (Some("epoch_changed"), &new), "{reset}");
    let mut publisher = node.client("/evolution", "pub2").await;
    assert_eq!(publish(&mut publisher, 1, "t").await["position"], json!({"epoch": new, "seq": 1}));
    assert_eq!(sub.recv_type("event").await["seq"], 1);
}

/// A valid report of bridge `id`, instance `i1`, number `seq`.
fn report(id: &str, seq: u64) -> Value {
    serde_json::to_value(bridge_core::report::BridgeReport {
        bridge_id: id.into(),
        instance: "i1".into(),
        seq,
        ts: seq,
        version: "test".into(),
        page: None,
        uptime_ms: seq,
        health: bridge_core::health::HealthModel::bridge_default().snapshot(),
        breakers: vec![],
        retry: bridge_core::metrics::RetryMetrics::default().snapshot(),
        sockets: bridge_core::vecmap::VecMap::default(),
        nodes: Vec::new(),
        webmcp: None,
        tabs: None,
    })
    .expect("reports serialize")
}

async fn put_report(node: &TestServer, id: &str, seq: u64) {
    let resp = reqwest::Client::new()
        .put(node.url(&format!("/api/bridges/{id}/report")))
        .json(&report(id, seq))
        .send()
        .await
        .expect("PUT report");
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
}

/// The bridge `id` as node `node` lists it, once `ready` holds for it.
async fn bridge_on(node: &TestServer, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = node.get_json("/api/bridges").await;
        let found = list["bridges"].as_array().and_then(|b| b.iter().find(|b| b["bridgeId"] == id).cloned());
        if let Some(b) = found.filter(|b| ready(b)) {
            return b;
        }
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}; last list: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_node_lists_every_bridge_with_the_node_it_reports_to() {
    let nats = NatsServer::start();
    let short = |id: &str| {
        let mut cfg = node_config(&nats, id);
        cfg.reports.stale_after_ms = 400;
        cfg
    };
    let a = TestServer::start_with(short("a")).await;
    let b = TestServer::start_with(short("b")).await;
    put_report(&a, "page-1", 1).await;
    let seen = bridge_on(&b, "page-1", "node b to list a bridge of node a", |v| v["stale"] == false).await;
    assert_eq!(seen["node"], "a", "{seen}");
    // Its node goes away: node b sees it go stale, then come back when it reports to b.
    a.stop().await.expect("node a stops");
    bridge_on(&b, "page-1", "the bridge of a dead node to go stale", |v| v["stale"] == true).await;
    put_report(&b, "page-1", 2).await;
    let back = bridge_on(&b, "page-1", "the bridge to come back on b", |v| v["stale"] == false).await;
    assert_eq!((back["node"].as_str(), back["reports"].as_u64()), (Some("b"), Some(2)), "{back}");
    // A node that starts later learns it too.
    let c = TestServer::start_with(short("c")).await;
    let late = bridge_on(&c, "page-1", "a late node to know the bridge", |_| true).await;
    assert_eq!(late["node"], "b");
}

async fn agent(node: &TestServer, client: &str, name: &str, presence: bool) -> Client {
    let mut c = node.client("/agents", client).await;
    let ack = c.call(json!({"type": "register", "id": "r", "agent": name, "presence": presence})).await;
    assert_eq!(ack["type"], "ack", "register {name} on {}: {ack}", node.addr);
    c
}

#[tokio::test]
async fn agents_on_different_nodes_exchange_messages_with_acks() {
    let nats = NatsServer::start();
    let a = TestServer::start_with(node_config(&nats, "a")).await;
    let b = TestServer::start_with(node_config(&nats, "b")).await;
    let mut watcher = agent(&a, "watcher", "watcher", true).await;
    let mut alice = agent(&a, "alice-page", "alice", false).await;
    let mut bob = agent(&b, "bob-page", "bob", false).await;
    let online = watcher.recv_type("presence").await;
    assert!(online["agent"] == "alice" || online["agent"] == "bob", "{online}");
    // alice (node a) -> bob (node b): delivered, acked, and only once per id.
    let ack =
        alice.call(json!({"type": "send", "id": "m1", "to": "bob", "message_type": "task", "content": {"n": 1}})).await;
    assert_eq!((ack["type"].as_str(), ack["status"].as_str()), (Some("ack"), Some("delivered")), "{ack}");
    let msg = bob.recv_type("message").await;
    assert_eq!(
        (msg["from"].as_str(), msg["id"].as_str(), &msg["content"]),
        (Some("alice"), Some("m1"), &json!({"n": 1}))
    );
    let again =
        alice.call(json!({"type": "send", "id": "m1", "to": "bob", "message_type": "task", "content": {"n": 1}})).await;
    assert_eq!(again["duplicate"], true, "the same id again is a duplicate, cluster-wide: {again}");
    bob.send(json!({"type": "ack", "id": "m1", "from": "alice"})).await;
    bob.expect_silence(Duration::from_millis(300)).await;
    let stray = bob.call(json!({"type": "ack", "id": "m1", "from": "alice"})).await;
    assert_eq!(stray["code"], "unknown_message", "acked once, gone: {stray}");
    // discover and broadcast are cluster-wide.
    let list = alice.call(json!({"type": "discover", "id": "d"})).await;
    let names: Vec<_> =
        list["agents"].as_array().unwrap().iter().map(|x| x["agent"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["alice", "bob", "watcher"], "{list}");
    let sent = bob.call(json!({"type": "broadcast", "id": "b1", "message_type": "hello", "content": 1})).await;
    assert_eq!(sent["recipients"], 2, "{sent}");
    let heard = alice.recv_type("message").await;
    assert_eq!((heard["from"].as_str(), heard["broadcast"].as_bool()), (Some("bob"), Some(true)), "{heard}");
    // Presence: bob leaves node b; the watcher on node a hears it.
    bob.close().await;
    loop {
        let p = watcher.recv().await;
        if p["type"] == "presence" && p["agent"] == "bob" && p["online"] == false {
            break;
        }
    }
}

#[tokio::test]
async fn a_name_held_on_one_node_cannot_be_taken_on_another_while_its_connection_lives() {
    let nats = NatsServer::start();
    let a = TestServer::start_with(node_config(&nats, "a")).await;
    let b = TestServer::start_with(node_config(&nats, "b")).await;
    let mut holder = agent(&a, "planner-1", "planner", false).await;
    let mut thief = b.client("/agents", "someone-else").await;
    let e = thief.call(json!({"type": "register", "id": "r", "agent": "planner"})).await;
    assert_eq!(e["code"], "name_taken", "{e}");
    assert!(e["message"].as_str().unwrap().contains("on node a"), "{e}");
    // The same client may take its name back on another node: the old connection is closed with 4409.
    let mut again = b.client("/agents", "planner-1").await;
    let ack = again.call(json!({"type": "register", "id": "r", "agent": "planner", "takeover": true})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (code, _, _) = holder.expect_close().await;
    assert_eq!(code, 4409);
    // Once its connection is gone, anyone may take a name.
    again.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut c = a.client("/agents", "someone-else").await;
        let r = c.call(json!({"type": "register", "id": "r", "agent": "planner"})).await;
        if r["type"] == "ack" {
            break;
        }
        assert!(Instant::now() < deadline, "the name was never freed: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_queued_message_survives_a_restart_of_every_node() {
    let nats = NatsServer::start();
    let mut nodes =
        [NodeProcess::start(&nats.url(), "n0", &[]).await, NodeProcess::start(&nats.url(), "n1", &[]).await];
    let register = |url: String, client: &'static str, name: &'static str| async move {
        let mut c = Client::connect(&url, None).await.expect("connect");
        c.hello(client, None).await;
        let ack = c.call(json!({"type": "register", "id": "r", "agent": name})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        (c, ack)
    };
    // bob exists, then leaves; alice sends him a message: queued.
    let (bob, _) = register(nodes[0].ws_url("/agents"), "bob-page", "bob").await;
    bob.close().await;
    let (mut alice, _) = register(nodes[1].ws_url("/agents"), "alice-page", "alice").await;
    let deadline = Instant::now() + WAIT;
    let ack = loop {
        let ack =
            alice.call(json!({"type": "send", "id": "q1", "to": "bob", "message_type": "task", "content": "hi"})).await;
        if ack["status"] == "queued" || Instant::now() > deadline {
            break ack;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // bob's leaving may take a moment to be known
    };
    assert_eq!(ack["status"], "queued", "{ack}");
    // Every node dies and comes back.
    for n in &mut nodes {
        n.kill().await;
    }
    for n in &mut nodes {
        n.restart().await;
    }
    let (mut bob, ack) = register(nodes[1].ws_url("/agents"), "bob-page", "bob").await;
    assert_eq!(ack["queued"], 1, "{ack}");
    let msg = bob.recv_type("message").await;
    assert_eq!(
        (msg["from"].as_str(), msg["id"].as_str(), msg["content"].as_str()),
        (Some("alice"), Some("q1"), Some("hi"))
    );
    bob.send(json!({"type": "ack", "id": "q1", "from": "alice"})).await;
    bob.expect_silence(Duration::from_millis(300)).await;
    bob.close().await;
    // The other node hears of the close a moment later: until then the name is still held there.
    let deadline = Instant::now() + WAIT;
    let ack = loop {
        let mut c = Client::connect(&nodes[0].ws_url("/agents"), None).await.expect("connect");
        c.hello("bob-page", None).await;
        let ack = c.call(json!({"type": "register", "id": "r", "agent": "bob"})).await;
        if ack["type"] == "ack" {
            break ack;
        }
        assert_eq!(ack["code"], "name_taken", "{ack}");
        assert!(Instant::now() < deadline, "bob's name was never freed: {ack}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ack["queued"], 0, "acked, so gone for good: {ack}");
}

#[tokio::test]
async fn status_lists_every_node_and_a_killed_node_goes_down_and_frees_its_agents_names() {
    let nats = NatsServer::start();
    let mut nodes =
        [NodeProcess::start(&nats.url(), "n0", &[]).await, NodeProcess::start(&nats.url(), "n1", &[]).await];
    let nodes_of = |body: &Value| -> Vec<(String, bool)> {
        body["cluster"]["nodes"]
            .as_array()
            .map(|v| v.iter().map(|n| (n["id"].as_str().unwrap_or("").to_owned(), n["up"] == true)).collect())
            .unwrap_or_default()
    };
    let both_up = vec![("n0".to_owned(), true), ("n1".to_owned(), true)];
    let status =
        poll(&nodes[0].url("/status"), "both nodes up in n0's /status", WAIT, |_, b| nodes_of(b) == both_up).await;
    let n1 = &status["cluster"]["nodes"][1];
    assert_eq!(
        n1["addr"].as_str().map(|a| a.ends_with(nodes[1].url("").rsplit(':').next().unwrap())),
        Some(true),
        "{n1}"
    );
    assert_eq!((n1["store"].as_str(), n1["ready"].as_bool()), (Some("nats"), Some(true)), "{n1}");
    // An agent on n1; n1 dies without a word.
    let mut holder = Client::connect(&nodes[1].ws_url("/agents"), None).await.expect("connect");
    holder.hello("planner-page", None).await;
    let ack = holder.call(json!({"type": "register", "id": "r", "agent": "planner"})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    nodes[1].kill().await;
    // n0 shows n1 down once it has been silent for the down-after time (6 s).
    let down = vec![("n0".to_owned(), true), ("n1".to_owned(), false)];
    poll(&nodes[0].url("/status"), "n1 shown down", Duration::from_secs(15), |_, b| nodes_of(b) == down).await;
    // ...and the name its dead connection held is free.
    let mut taker = Client::connect(&nodes[0].ws_url("/agents"), None).await.expect("connect");
    taker.hello("someone-else", None).await;
    let ack = taker.call(json!({"type": "register", "id": "r", "agent": "planner"})).await;
    assert_eq!(ack["type"], "ack", "a dead node's names are free: {ack}");
}

#[tokio::test]
async fn the_agent_limit_holds_cluster_wide_and_forgets_the_longest_offline_agent_first() {
    let nats = NatsServer::start();
    let limited = |id| {
        let mut cfg = node_config(&nats, id);
        cfg.agents.max_agents = 2;
        cfg
    };
    let a = TestServer::start_with(limited("a")).await;
    let b = TestServer::start_with(limited("b")).await;
    agent(&a, "x-page", "x", false).await.close().await;
    let _y = agent(&b, "y-page", "y", false).await;
    // Full: x is offline with nothing queued, so it makes room for z.
    let deadline = Instant::now() + WAIT;
    let _z = loop {
        let mut c = a.client("/agents", "z-page").await;
        let ack = c.call(json!({"type": "register", "id": "r", "agent": "z"})).await;
        if ack["type"] == "ack" {
            break c;
        }
        // x's leaving may take a moment to reach the directory.
        assert!(Instant::now() < deadline, "z never got room: {ack}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut w = b.client("/agents", "w-page").await;
    let e = w.call(json!({"type": "register", "id": "r", "agent": "w"})).await;
    assert_eq!(e["code"], "limit_exceeded", "y and z are online: nothing to forget: {e}");
    let list = w.call(json!({"type": "discover", "id": "d"})).await;
    let names: Vec<_> =
        list["agents"].as_array().unwrap().iter().map(|x| x["agent"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["y", "z"], "{list}");
}
