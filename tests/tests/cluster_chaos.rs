//! Every node of a three-node cluster killed with SIGKILL and restarted, ten
//! times, while a publisher streams 20,000 events and a subscriber reads them.
//! The publisher re-sends what was not acknowledged with the same ids; the
//! subscriber resumes from its last seq on whichever node is up. In the end the
//! subscriber holds exactly the 20,000 events, in one epoch, with no gap and no
//! reset; duplicates it had to skip are counted and printed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge_tests::nats::NatsServer;
use bridge_tests::node::NodeProcess;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const EVENTS: u64 = 20_000;
const ROUNDS: u64 = 10;
const WINDOW: usize = 200;
/// Publishes per second, with bursts of at most BURST: paces the stream so the
/// rounds of kills spread over it.
const RATE: f64 = 2_500.0;
const BURST: f64 = 50.0;

/// The nodes' current addresses (None while a node is down), shared with the clients.
#[derive(Debug, Clone, Default)]
struct Nodes(Arc<Mutex<Vec<Option<String>>>>);

impl Nodes {
    fn set(&self, i: usize, addr: Option<String>) {
        let mut v = self.0.lock().unwrap();
        if v.len() <= i {
            v.resize(i + 1, None);
        }
        v[i] = addr;
    }

    /// A live node, taking turns.
    fn pick(&self, turn: usize) -> Option<String> {
        let v = self.0.lock().unwrap();
        (0..v.len()).find_map(|k| v[(turn + k) % v.len()].clone())
    }
}

/// Connects to `addr`'s evolution socket and says hello; None when that fails.
async fn open(addr: &str, client: &str) -> Option<Ws> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio_tungstenite::connect_async(format!("ws://{addr}/evolution")),
    )
    .await
    .ok()?
    .ok()?;
    let hello = json!({"type": "hello", "protocol": 1, "client": client}).to_string();
    ws.send(Message::text(hello)).await.ok()?;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.ok()?? {
            Ok(Message::Text(t)) if t.contains("\"welcome\"") => return Some(ws),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

fn publish_frame(id: u64) -> Message {
    Message::text(json!({"type": "publish", "id": id, "topic": format!("t.{}", id % 7), "data": {"n": id}}).to_string())
}

#[derive(Debug, Default)]
struct Published {
    /// id -> seq, from the acks.
    seqs: BTreeMap<u64, u64>,
    duplicates: u64,
    resent: u64,
    reconnects: u64,
}

/// What the clients have done so far, for the test to pace its rounds.
#[derive(Debug, Default)]
struct Progress {
    /// The subscriber's first subscription is acknowledged (the publisher starts after it).
    subscribed: std::sync::atomic::AtomicBool,
    acked: AtomicU64,
    /// The publisher publishes ids up to this: the test lets it go on round by round.
    allowed: AtomicU64,
    publisher_connections: AtomicU64,
    /// The publisher has a connection now.
    publisher_live: std::sync::atomic::AtomicBool,
    /// The subscriber has a subscription standing now.
    subscriber_live: std::sync::atomic::AtomicBool,
}

/// Publishes ids 1..=EVENTS with up to WINDOW unacknowledged; after a lost
/// connection, re-sends every unacknowledged id, in order, on another node.
async fn publisher(nodes: Nodes, progress: Arc<Progress>) -> Published {
    let mut out = Published::default();
    let mut next = 1u64;
    let (mut tokens, mut refilled) = (BURST, Instant::now());
    let mut turn = 0;
    while (out.seqs.len() as u64) < EVENTS {
        turn += 1;
        let Some(addr) = nodes.pick(turn) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Some(ws) = open(&addr, "publisher").await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        out.reconnects += 1;
        progress.publisher_connections.fetch_add(1, Ordering::Relaxed);
        progress.publisher_live.store(true, Ordering::Relaxed);
        let (mut tx, mut rx) = ws.split();
        let mut pending: Vec<u64> = (1..next).filter(|id| !out.seqs.contains_key(id)).collect();
        out.resent += pending.len() as u64;
        if !resend(&mut tx, &pending).await {
            continue;
        }
        let mut last_heard = Instant::now();
        'connection: loop {
            tokens = (tokens + refilled.elapsed().as_secs_f64() * RATE).min(BURST);
            refilled = Instant::now();
            let allowed = progress.allowed.load(Ordering::Relaxed);
            while pending.len() < WINDOW && next <= allowed && tokens >= 1.0 {
                tokens -= 1.0;
                pending.push(next);
                if tx.feed(publish_frame(next)).await.is_err() {
                    break 'connection;
                }
                next += 1;
            }
            if tx.flush().await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(10), rx.next()).await {
                Err(_) if pending.is_empty() || last_heard.elapsed() < Duration::from_secs(5) => continue,
                Ok(Some(Ok(Message::Text(t)))) => {
                    last_heard = Instant::now();
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                    let Some(id) = v["id"].as_u64() else { continue };
                    match v["type"].as_str() {
                        Some("ack") => {
                            let seq = v["position"]["seq"].as_u64().expect("a publish ack has a position");
                            if v["duplicate"] == true {
                                out.duplicates += 1;
                            }
                            if let Some(old) = out.seqs.insert(id, seq) {
                                assert_eq!(old, seq, "id {id} acked at two positions");
                            }
                            pending.retain(|p| *p != id);
                            progress.acked.store(out.seqs.len() as u64, Ordering::Relaxed);
                        }
                        Some("error") => {
                            assert_eq!(v["retryable"], true, "only retryable errors are expected: {v}");
                            if tx.send(publish_frame(id)).await.is_err() {
                                break;
                            }
                        }
                        _ => {}
                    }
                    if out.seqs.len() as u64 == EVENTS {
                        break;
                    }
                }
                Ok(Some(Ok(_))) => {}
                // Closed, broken, or silent for 5 s with publishes unanswered: another node.
                _ => break,
            }
        }
        progress.publisher_live.store(false, Ordering::Relaxed);
    }
    out
}

/// Sends `ids` again, in order (after a reconnect: the same ids, so each is stored once).
async fn resend(tx: &mut futures_util::stream::SplitSink<Ws, Message>, ids: &[u64]) -> bool {
    for id in ids {
        if tx.feed(publish_frame(*id)).await.is_err() {
            return false;
        }
    }
    tx.flush().await.is_ok()
}

#[derive(Debug, Default)]
struct Received {
    epochs: Vec<String>,
    last_seq: u64,
    events: u64,
    duplicates: u64,
    gaps: u64,
    resets: u64,
    resumes: u64,
    worst_resume: Duration,
}

/// Reads every event, resuming from its last seq on whichever node is up.
async fn subscriber(nodes: Nodes, progress: Arc<Progress>) -> Received {
    let mut out = Received::default();
    let mut turn = 0;
    let mut lost: Option<Instant> = None;
    while out.last_seq < EVENTS {
        turn += 1;
        let Some(addr) = nodes.pick(turn) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Some(mut ws) = open(&addr, "subscriber").await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut sub = json!({"type": "subscribe", "id": "s", "topics": ["*"]});
        if let Some(epoch) = out.epochs.last() {
            sub["since"] = json!({"epoch": epoch, "seq": out.last_seq});
        }
        if ws.send(Message::text(sub.to_string())).await.is_err() {
            continue;
        }
        loop {
            let msg = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                _ => {
                    lost.get_or_insert_with(Instant::now);
                    progress.subscriber_live.store(false, Ordering::Relaxed);
                    break;
                }
            };
            let v: Value = serde_json::from_str(msg.as_str()).expect("JSON");
            match v["type"].as_str() {
                Some("ack") => {
                    progress.subscribed.store(true, Ordering::Relaxed);
                    let epoch = v["position"]["epoch"].as_str().expect("epoch").to_owned();
                    if out.epochs.last() != Some(&epoch) {
                        out.epochs.push(epoch);
                    }
                    if let Some(t) = lost.take() {
                        out.resumes += 1;
                        out.worst_resume = out.worst_resume.max(t.elapsed());
                    }
                    progress.subscriber_live.store(true, Ordering::Relaxed);
                }
                Some("reset") => out.resets += 1,
                Some("event") => {
                    let seq = v["seq"].as_u64().expect("seq");
                    assert_eq!(v["data"]["n"].as_u64().map(|_| ()), Some(()), "{v}");
                    if seq <= out.last_seq {
                        out.duplicates += 1;
                    } else {
                        out.gaps += seq - out.last_seq - 1;
                        out.last_seq = seq;
                        out.events += 1;
                    }
                    if out.last_seq >= EVENTS {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_killed_and_restarted_ten_times_during_a_20000_event_stream() {
    let started = Instant::now();
    let nats = NatsServer::start();
    let mut nodes = Vec::new();
    let shared = Nodes::default();
    for i in 0..3 {
        let node = NodeProcess::start(&nats.url(), &format!("n{i}"), &[]).await;
        shared.set(i, Some(node.addr.clone()));
        nodes.push(node);
    }
    let progress = Arc::new(Progress::default());
    let goal = |round: u64| if round > ROUNDS { EVENTS } else { EVENTS * round / (ROUNDS + 1) };
    // The publisher may run a little past each round's goal, so every round cuts publishes in flight.
    let lead = EVENTS / (ROUNDS + 1) / 2;
    let reading = tokio::spawn(subscriber(shared.clone(), Arc::clone(&progress)));
    // The first subscription has no `since` (there is no position yet): publish only once it stands.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !progress.subscribed.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the subscriber did not subscribe within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let publishing = tokio::spawn(publisher(shared.clone(), Arc::clone(&progress)));
    let mut kills = 0;
    for round in 1..=ROUNDS {
        // Spread the rounds over the stream, each after both clients are back from the last one.
        let target = goal(round);
        progress.allowed.store(target + lead, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        // Each round cuts a standing subscription and a live publisher.
        let ready = || {
            progress.acked.load(Ordering::Relaxed) >= target
                && progress.publisher_live.load(Ordering::Relaxed)
                && progress.subscriber_live.load(Ordering::Relaxed)
        };
        while !ready() {
            assert!(Instant::now() < deadline, "round {round}: stuck: {progress:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            shared.set(i, None);
            node.kill().await;
            kills += 1;
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            node.restart().await;
            shared.set(i, Some(node.addr.clone()));
        }
    }
    progress.allowed.store(EVENTS, Ordering::Relaxed);
    let published = tokio::time::timeout(Duration::from_secs(120), publishing).await.expect("publisher done").unwrap();
    let received = tokio::time::timeout(Duration::from_secs(60), reading).await.expect("subscriber done").unwrap();
    bridge_tests::figure(&format!(
        "cluster chaos: {kills} SIGKILLs over {ROUNDS} rounds of 3 nodes; {EVENTS} events published \
         ({} re-sent, {} acked as duplicates, {} publisher connections); subscriber got {} events, lost {}, \
         {} duplicates skipped by seq, {} resets, {} resumes, worst resume {:?}; {:?} in all",
        published.resent,
        published.duplicates,
        published.reconnects,
        received.events,
        EVENTS - received.events,
        received.duplicates,
        received.resets,
        received.resumes,
        received.worst_resume,
        started.elapsed()
    ));
    let seqs: std::collections::BTreeSet<u64> = published.seqs.values().copied().collect();
    assert_eq!(seqs.len() as u64, EVENTS, "every id stored exactly once, under its own seq");
    assert_eq!((seqs.first(), seqs.last()), (Some(&1), Some(&EVENTS)), "the seqs are 1..={EVENTS}");
    assert_eq!(received.events, EVENTS, "the subscriber got every event");
    assert_eq!(received.gaps, 0, "no gap");
    assert_eq!(received.resets, 0, "no reset");
    assert_eq!(received.epochs.len(), 1, "one epoch throughout: {:?}", received.epochs);
    assert!(received.resumes >= ROUNDS, "every round cut the subscription, which resumed: {}", received.resumes);
    assert!(published.reconnects > ROUNDS, "the publisher reconnected after every round: {}", published.reconnects);
}
