//! The agents socket against the real server: delivery with acks, offline
//! queues, redelivery, deduplication, expiry, broadcast, discover, presence,
//! name ownership and takeover, and the errors of each.

use std::time::Duration;

use bridge_tests::{Client, TestServer, config};
use serde_json::{Value, json};

/// A client named `name` on /agents that has registered as `name`.
async fn agent(server: &TestServer, name: &str) -> Client {
    agent_with(server, name, json!({})).await
}

/// Like [`agent`], with extra register fields (`capabilities`, `presence`, ...).
async fn agent_with(server: &TestServer, name: &str, extra: Value) -> Client {
    let mut c = server.client("/agents", name).await;
    let ack = register(&mut c, name, extra).await;
    assert_eq!(ack["queued"], 0, "{ack}");
    c
}

/// Registers as `name`; returns the ack.
async fn register(c: &mut Client, name: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "register", "id": format!("reg-{name}"), "agent": name});
    for (k, v) in extra.as_object().expect("extra fields") {
        frame[k] = v.clone();
    }
    let ack = c.call(frame).await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some(format!("reg-{name}").as_str())),
        "{ack}"
    );
    ack
}

fn send_frame(id: &str, to: &str, content: Value) -> Value {
    json!({"type": "send", "id": id, "to": to, "message_type": "note", "content": content})
}

/// Sends a message and returns the ack.
async fn send(c: &mut Client, id: &str, to: &str, content: Value) -> Value {
    let ack = c.call(send_frame(id, to, content)).await;
    assert_eq!((ack["type"].as_str(), ack["id"].as_str()), (Some("ack"), Some(id)), "{ack}");
    ack
}

/// Reads the next frame, which must be the message `id` from `from`.
async fn expect_message(c: &mut Client, id: &str, from: &str) -> Value {
    let m = c.recv_type("message").await;
    assert_eq!((m["id"].as_str(), m["from"].as_str()), (Some(id), Some(from)), "{m}");
    m
}

async fn ack_message(c: &mut Client, id: &str, from: &str) {
    c.send(json!({"type": "ack", "id": id, "from": from})).await;
}

async fn ping(c: &mut Client, id: u64) {
    let pong = c.call(json!({"type": "ping", "id": id})).await;
    assert_eq!(pong, json!({"type": "pong", "id": id}));
}

/// Waits until the server counts `n` agents online (disconnects are processed
/// after the client sees its connection end).
async fn wait_online(server: &TestServer, n: u64) {
    server.wait_status(&format!("{n} agents online"), |s| s["agents"]["online"] == n).await;
}

async fn discover(c: &mut Client, capability: Option<&str>) -> Vec<Value> {
    let mut frame = json!({"type": "discover", "id": "d"});
    if let Some(cap) = capability {
        frame["capability"] = json!(cap);
    }
    let answer = c.call(frame).await;
    assert_eq!((answer["type"].as_str(), answer["id"].as_str()), (Some("agents"), Some("d")), "{answer}");
    answer["agents"].as_array().expect("agents list").clone()
}

#[tokio::test]
async fn delivery_to_an_online_agent_is_acked_both_ways() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    // A "from" in the input is ignored: the server stamps the sender.
    let mut frame = send_frame("m1", "bob", json!({"task": 42}));
    frame["from"] = json!("mallory");
    frame["priority"] = json!("high");
    let ack = alice.call(frame).await;
    assert_eq!(ack, json!({"type": "ack", "id": "m1", "status": "delivered"}));

    let m = expect_message(&mut bob, "m1", "alice").await;
    assert_eq!((m["message_type"].as_str(), m["priority"].as_str()), (Some("note"), Some("high")));
    assert_eq!(m["content"], json!({"task": 42}));
    assert!(m["ts"].as_u64().is_some_and(|ts| ts > 1_600_000_000_000), "ts is unix ms: {m}");
    assert!(m.get("redelivery").is_none() && m.get("broadcast").is_none(), "first delivery, not a broadcast: {m}");
    assert_eq!(server.get_json("/status").await["agents"]["queuedMessages"], 1, "unacked until bob acks");

    ack_message(&mut bob, "m1", "alice").await;
    // No answer to a good ack; the message left the queue, so a second ack is refused.
    ack_message(&mut bob, "m1", "alice").await;
    let e = bob.expect_error("unknown_message").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("m1"), Some(false)));
    assert_eq!(server.get_json("/status").await["agents"]["queuedMessages"], 0);
    alice.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn messages_to_an_offline_agent_are_queued_and_delivered_in_order() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let bob = agent(&server, "bob").await;
    bob.close().await;
    wait_online(&server, 1).await;
    for i in 1..=3 {
        let ack = send(&mut alice, &format!("m{i}"), "bob", json!(i)).await;
        assert_eq!(ack["status"], "queued", "{ack}");
    }
    assert_eq!(server.get_json("/status").await["agents"]["queuedMessages"], 3);

    let mut bob = server.client("/agents", "bob").await;
    let ack = register(&mut bob, "bob", json!({})).await;
    assert_eq!(ack["queued"], 3, "the register ack says how many follow: {ack}");
    for i in 1..=3 {
        let m = expect_message(&mut bob, &format!("m{i}"), "alice").await;
        assert_eq!(m["content"], i);
        assert!(m.get("redelivery").is_none(), "a queued message's first delivery is not a redelivery: {m}");
    }
    bob.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn unacked_messages_are_redelivered_after_a_reconnect_in_order() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    for id in ["m1", "m2", "m3"] {
        assert_eq!(send(&mut alice, id, "bob", json!(id)).await["status"], "delivered");
    }
    for id in ["m1", "m2", "m3"] {
        expect_message(&mut bob, id, "alice").await;
    }
    ack_message(&mut bob, "m2", "alice").await;
    ping(&mut bob, 1).await; // the ack was processed
    bob.drop_connection();
    wait_online(&server, 1).await;

    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 2);
    for id in ["m1", "m3"] {
        let m = expect_message(&mut bob, id, "alice").await;
        assert_eq!(m["redelivery"], 1, "{m}");
        assert_eq!(m["content"], id);
    }
    ack_message(&mut bob, "m1", "alice").await;
    ping(&mut bob, 2).await;
    bob.close().await;
    wait_online(&server, 1).await;

    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 1);
    let m = expect_message(&mut bob, "m3", "alice").await;
    assert_eq!(m["redelivery"], 2, "{m}");
    ack_message(&mut bob, "m3", "alice").await;
    ping(&mut bob, 3).await;
    assert_eq!(server.get_json("/status").await["agents"]["queuedMessages"], 0);
}

#[tokio::test]
async fn a_repeated_sender_and_id_is_a_duplicate_and_delivered_once() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut carol = agent(&server, "carol").await;
    let mut bob = agent(&server, "bob").await;
    let first = send(&mut alice, "same", "bob", json!("once")).await;
    assert_eq!(first, json!({"type": "ack", "id": "same", "status": "delivered"}));
    let again = send(&mut alice, "same", "bob", json!("once")).await;
    assert_eq!(again, json!({"type": "ack", "id": "same", "status": "delivered", "duplicate": true}));
    expect_message(&mut bob, "same", "alice").await;
    bob.expect_silence(Duration::from_millis(150)).await;

    // After a reconnect of the sender it is still a duplicate; another sender's same id is not.
    alice.close().await;
    let mut alice = server.client("/agents", "alice").await;
    register(&mut alice, "alice", json!({})).await;
    assert_eq!(send(&mut alice, "same", "bob", json!("once")).await["duplicate"], true);
    let other = send(&mut carol, "same", "bob", json!("from carol")).await;
    assert!(other.get("duplicate").is_none(), "{other}");
    let m = expect_message(&mut bob, "same", "carol").await;
    assert_eq!(m["content"], "from carol");
    bob.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn an_expired_message_is_not_delivered() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    agent(&server, "bob").await.close().await;
    wait_online(&server, 1).await;
    let mut short = send_frame("short", "bob", json!("stale soon"));
    short["expires_in_ms"] = json!(50);
    assert_eq!(alice.call(short).await["status"], "queued");
    let mut long = send_frame("long", "bob", json!("still good"));
    long["expires_in_ms"] = json!(60_000);
    assert_eq!(alice.call(long).await["status"], "queued");
    // A real wait: the server's expiry clock has to pass.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 1, "the expired message is not counted");
    let m = expect_message(&mut bob, "long", "alice").await;
    assert_eq!(m["content"], "still good");
    bob.expect_silence(Duration::from_millis(100)).await;
    // It is gone, not just hidden: acking it is refused.
    ack_message(&mut bob, "short", "alice").await;
    bob.expect_error("unknown_message").await;
}

#[tokio::test]
async fn an_unacked_message_that_expires_is_not_redelivered() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    let mut frame = send_frame("brief", "bob", json!(1));
    frame["expires_in_ms"] = json!(50);
    assert_eq!(alice.call(frame).await["status"], "delivered");
    expect_message(&mut bob, "brief", "alice").await;
    bob.drop_connection();
    wait_online(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 0);
    bob.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn broadcast_reaches_every_other_online_agent() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    let mut carol = agent(&server, "carol").await;
    agent(&server, "dave").await.close().await;
    wait_online(&server, 3).await;
    let ack = alice
        .call(json!({"type": "broadcast", "id": "b1", "message_type": "announce", "content": {"hello": "all"}}))
        .await;
    assert_eq!(ack, json!({"type": "ack", "id": "b1", "recipients": 2}));
    for c in [&mut bob, &mut carol] {
        let m = expect_message(c, "b1", "alice").await;
        assert_eq!((m["broadcast"].as_bool(), m["message_type"].as_str()), (Some(true), Some("announce")), "{m}");
        assert_eq!(m["content"], json!({"hello": "all"}));
    }
    alice.expect_silence(Duration::from_millis(100)).await;
    // Broadcasts are not queued: dave, offline, gets nothing when he comes back.
    let mut dave = server.client("/agents", "dave").await;
    assert_eq!(register(&mut dave, "dave", json!({})).await["queued"], 0);
    dave.expect_silence(Duration::from_millis(100)).await;
    // And need no ack: nothing is pending for bob.
    ack_message(&mut bob, "b1", "alice").await;
    bob.expect_error("unknown_message").await;
}

#[tokio::test]
async fn discover_lists_agents_with_capabilities_and_online_flags() {
    let server = TestServer::start().await;
    let mut alice = agent_with(&server, "alice", json!({"capabilities": ["plan", "code"]})).await;
    let _bob = agent_with(&server, "bob", json!({"capabilities": ["code"]})).await;
    agent_with(&server, "carol", json!({"capabilities": ["review"]})).await.close().await;
    wait_online(&server, 2).await;

    let all = discover(&mut alice, None).await;
    let summary: Vec<(&str, bool)> =
        all.iter().map(|a| (a["agent"].as_str().unwrap(), a["online"].as_bool().unwrap())).collect();
    assert_eq!(summary, [("alice", true), ("bob", true), ("carol", false)], "sorted by name: {all:?}");
    assert_eq!(all[0]["capabilities"], json!(["plan", "code"]));
    assert_eq!(all[2]["capabilities"], json!(["review"]));
    assert!(all.iter().all(|a| a["since"].as_u64().is_some_and(|s| s > 1_600_000_000_000)), "{all:?}");

    let coders = discover(&mut alice, Some("code")).await;
    let names: Vec<&str> = coders.iter().map(|a| a["agent"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let reviewers = discover(&mut alice, Some("review")).await;
    assert_eq!((reviewers.len(), reviewers[0]["agent"].as_str()), (1, Some("carol")));
    assert!(discover(&mut alice, Some("nobody-has-this")).await.is_empty());
}

#[tokio::test]
async fn a_presence_watcher_sees_agents_come_and_go() {
    let server = TestServer::start().await;
    let mut watcher = agent_with(&server, "watcher", json!({"presence": true})).await;
    let mut quiet = agent(&server, "quiet").await;
    let p = watcher.recv_type("presence").await;
    assert_eq!((p["agent"].as_str(), p["online"].as_bool()), (Some("quiet"), Some(true)), "{p}");
    assert!(p["ts"].as_u64().is_some_and(|ts| ts > 1_600_000_000_000), "{p}");

    let bob = agent(&server, "bob").await;
    let p = watcher.recv_type("presence").await;
    assert_eq!((p["agent"].as_str(), p["online"].as_bool()), (Some("bob"), Some(true)), "{p}");
    bob.close().await;
    let p = watcher.recv_type("presence").await;
    assert_eq!((p["agent"].as_str(), p["online"].as_bool()), (Some("bob"), Some(false)), "{p}");
    // Only watchers get presence frames.
    quiet.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_live_name_is_taken_unless_the_same_client_takes_it_over() {
    let server = TestServer::start().await;
    let mut old = agent(&server, "alice").await; // client "alice", agent "alice"
    let mut bob = agent(&server, "bob").await;
    // A message the old connection received but never acked.
    assert_eq!(send(&mut bob, "unacked", "alice", json!(1)).await["status"], "delivered");
    expect_message(&mut old, "unacked", "bob").await;

    // Another client cannot have it, even with takeover.
    let mut stranger = server.client("/agents", "someone-else").await;
    for takeover in [false, true] {
        stranger.send(json!({"type": "register", "id": "r", "agent": "alice", "takeover": takeover})).await;
        let e = stranger.expect_error("name_taken").await;
        assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("r"), Some(false)));
    }
    // The same client without takeover is told how to take it.
    let mut new = server.client("/agents", "alice").await;
    new.send(json!({"type": "register", "id": "r1", "agent": "alice"})).await;
    let e = new.expect_error("name_taken").await;
    assert!(e["message"].as_str().unwrap().contains("takeover"), "{e}");

    // The new connection gets the name and the queue.
    let ack = new.call(json!({"type": "register", "id": "r2", "agent": "alice", "takeover": true})).await;
    assert_eq!(ack, json!({"type": "ack", "id": "r2", "queued": 1}));
    let m = expect_message(&mut new, "unacked", "bob").await;
    assert_eq!(m["redelivery"], 1, "{m}");
    let (code, _, _) = old.expect_close().await;
    assert_eq!(code, 4409, "the replaced connection is closed with 4409");
    server.wait_status("the replaced connection to end", |s| s["connections"]["agents"] == 3).await;

    // The name stays online, on the new connection.
    let list = discover(&mut bob, None).await;
    assert_eq!((list[0]["agent"].as_str(), list[0]["online"].as_bool()), (Some("alice"), Some(true)), "{list:?}");
    assert_eq!(send(&mut bob, "hi", "alice", json!("hi")).await["status"], "delivered");
    expect_message(&mut new, "hi", "bob").await;
}

#[tokio::test]
async fn agent_frames_need_register_first() {
    let server = TestServer::start().await;
    let _bob = agent(&server, "bob").await;
    let mut c = server.client("/agents", "anon").await;
    for (frame, id) in [
        (send_frame("s1", "bob", json!(1)), "s1"),
        (json!({"type": "broadcast", "id": "b1", "message_type": "x", "content": null}), "b1"),
        (json!({"type": "ack", "id": "a1", "from": "bob"}), "a1"),
    ] {
        c.send(frame).await;
        let e = c.expect_error("not_registered").await;
        assert_eq!(e["id"], id);
    }
    // Still usable, and registering fixes it.
    register(&mut c, "anon", json!({})).await;
    assert_eq!(send(&mut c, "s2", "bob", json!(1)).await["status"], "delivered");
}

#[tokio::test]
async fn sending_to_a_never_registered_agent_is_unknown_agent() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    alice.send(send_frame("m1", "ghost", json!(1))).await;
    let e = alice.expect_error("unknown_agent").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("m1"), Some(false)));
    assert!(e["message"].as_str().unwrap().contains("ghost"), "{e}");
    // The refused id was not remembered: once ghost exists, the same id goes through.
    let _ghost = agent(&server, "ghost").await;
    assert_eq!(send(&mut alice, "m1", "ghost", json!(1)).await["status"], "delivered");
}

#[tokio::test]
async fn a_full_queue_refuses_with_queue_full_until_acked() {
    let mut cfg = config();
    cfg.agents.queue_messages = 3;
    let server = TestServer::start_with(cfg).await;
    let mut alice = agent(&server, "alice").await;
    agent(&server, "bob").await.close().await;
    wait_online(&server, 1).await;
    for i in 1..=3 {
        assert_eq!(send(&mut alice, &format!("m{i}"), "bob", json!(i)).await["status"], "queued");
    }
    alice.send(send_frame("m4", "bob", json!(4))).await;
    let e = alice.expect_error("queue_full").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("m4"), Some(true)));

    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 3);
    for i in 1..=3 {
        expect_message(&mut bob, &format!("m{i}"), "alice").await;
    }
    // Unacked messages still fill the queue, even with bob online.
    alice.send(send_frame("m4", "bob", json!(4))).await;
    alice.expect_error("queue_full").await;
    ack_message(&mut bob, "m1", "alice").await;
    ping(&mut bob, 1).await;
    // A retry of the refused id is accepted once there is room.
    assert_eq!(send(&mut alice, "m4", "bob", json!(4)).await["status"], "delivered");
    let m = expect_message(&mut bob, "m4", "alice").await;
    assert_eq!(m["content"], 4);
}

#[tokio::test]
async fn one_connection_holds_one_name() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    alice.send(json!({"type": "register", "id": "again", "agent": "alice2"})).await;
    let e = alice.expect_error("bad_request").await;
    assert_eq!(e["id"], "again");
    assert!(e["message"].as_str().unwrap().contains("already registered as \"alice\""), "{e}");
    // "alice2" was not taken.
    let names: Vec<String> =
        discover(&mut bob, None).await.iter().map(|a| a["agent"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["alice", "bob"]);
    ping(&mut alice, 1).await;
}

#[tokio::test]
async fn registering_the_same_name_again_announces_what_follows() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    // Registering the same name again on the same connection: its ack's `queued` must
    // say how many messages follow it (docs/protocol.md, register).
    assert_eq!(send(&mut bob, "m1", "alice", json!(1)).await["status"], "delivered");
    expect_message(&mut alice, "m1", "bob").await;
    let ack = alice.call(json!({"type": "register", "id": "same", "agent": "alice"})).await;
    assert_eq!((ack["type"].as_str(), ack["id"].as_str()), (Some("ack"), Some("same")), "{ack}");
    let announced = ack["queued"].as_u64().unwrap_or_else(|| panic!("register ack without queued: {ack}"));
    let mut followed = Vec::new();
    while let Some(f) = alice.recv_within(Duration::from_millis(200)).await {
        followed.push(f);
    }
    assert_eq!(followed.len() as u64, announced, "the ack said {announced} messages follow; got {followed:?}");
}

#[tokio::test]
async fn max_agents_forgets_an_idle_offline_agent_or_refuses() {
    let mut cfg = config();
    cfg.agents.max_agents = 2;
    let server = TestServer::start_with(cfg).await;
    let mut a = agent(&server, "a").await;
    let b = agent(&server, "b").await;
    // Both online: no room.
    let mut c = server.client("/agents", "c").await;
    c.send(json!({"type": "register", "id": "rc", "agent": "c"})).await;
    let e = c.expect_error("limit_exceeded").await;
    assert_eq!(e["id"], "rc");
    // b goes offline with an empty queue: it is forgotten to make room.
    b.close().await;
    wait_online(&server, 1).await;
    register(&mut c, "c", json!({})).await;
    let names: Vec<String> =
        discover(&mut a, None).await.iter().map(|x| x["agent"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["a", "c"]);
    a.send(send_frame("m", "b", json!(1))).await;
    a.expect_error("unknown_agent").await;
}

#[tokio::test]
async fn acking_an_expired_message_is_unknown_message() {
    let server = TestServer::start().await;
    let mut alice = agent(&server, "alice").await;
    let mut bob = agent(&server, "bob").await;
    let mut frame = send_frame("brief", "bob", json!(1));
    frame["expires_in_ms"] = json!(50);
    assert_eq!(alice.call(frame).await["status"], "delivered");
    expect_message(&mut bob, "brief", "alice").await;
    // A real wait: the message's expiry has to pass before bob acks.
    tokio::time::sleep(Duration::from_millis(150)).await;
    // docs/protocol.md: `unknown_message` for a message that is not waiting (already acked, expired, never sent).
    ack_message(&mut bob, "brief", "alice").await;
    bob.send(json!({"type": "ping", "id": 1})).await;
    let answer = bob.recv().await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some("unknown_message")),
        "{answer}"
    );
}

#[tokio::test]
async fn all_queues_together_stay_within_total_queue_bytes() {
    let mut cfg = config();
    // Room for two of the ~480-byte messages below, across all agents.
    cfg.agents.total_queue_bytes = 1_000;
    let server = TestServer::start_with(cfg).await;
    let mut alice = agent(&server, "alice").await;
    agent(&server, "bob").await.close().await;
    agent(&server, "carol").await.close().await;
    wait_online(&server, 1).await;
    let big = json!("x".repeat(400));
    assert_eq!(send(&mut alice, "m1", "bob", big.clone()).await["status"], "queued");
    assert_eq!(send(&mut alice, "m2", "carol", big.clone()).await["status"], "queued");
    alice.send(send_frame("m3", "carol", big.clone())).await;
    let e = alice.expect_error("queue_full").await;
    assert_eq!((e["id"].as_str(), e["retryable"].as_bool()), (Some("m3"), Some(true)));
    assert!(e["message"].as_str().unwrap().contains("the server holds its limit"), "{e}");

    // bob takes and acks his: the room is shared, so carol's message now fits.
    let mut bob = server.client("/agents", "bob").await;
    assert_eq!(register(&mut bob, "bob", json!({})).await["queued"], 1);
    expect_message(&mut bob, "m1", "alice").await;
    ack_message(&mut bob, "m1", "alice").await;
    ping(&mut bob, 1).await;
    assert_eq!(send(&mut alice, "m3", "carol", big).await["status"], "queued");
}
