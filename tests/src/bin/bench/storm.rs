//! `--only storm`: a reconnect storm. Three nodes on NATS, N subscribers spread
//! over them, a publisher on the first; the last node is killed with SIGKILL.
//! Its clients reconnect to the other nodes with jitter, honouring the 503 +
//! `Retry-After` of a node admitting no more handshakes this second, and resume
//! from their positions. Prints the time until every one of them resumed, the
//! events lost (every subscriber must end with every event, in order, with no
//! `reset`), and the handshakes refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bridge_core::random::SeededRandom;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Backend, Ws};

/// The storm's settings.
pub(crate) struct Storm {
    pub(crate) clients: usize,
    /// Handshakes each node admits per second (and half as many at once).
    pub(crate) handshakes_per_sec: u32,
    /// Events per second published throughout.
    pub(crate) events_per_sec: u64,
}

/// What all clients count together.
#[derive(Default)]
struct Totals {
    refused_503: AtomicU64,
    connect_failures: AtomicU64,
    resets: AtomicU64,
    gaps: AtomicU64,
    subscribed: AtomicU64,
}

/// One subscriber's view, read at the end.
#[derive(Default)]
struct Seen {
    /// Highest seq received, in order.
    last: AtomicU64,
    /// When it resumed after losing its node (ms after the kill), 0 while it has not.
    resumed_ms: AtomicU64,
    lost_node: AtomicBool,
}

fn jitter(rng: &mut SeededRandom, max_ms: u64) -> Duration {
    Duration::from_millis(rng.next_u64() % max_ms.max(1))
}

/// Connects, says hello and subscribes to `storm` (resuming after `since`).
async fn subscribe(addr: &str, client: &str, since: Option<&Value>) -> Result<Ws, WsError> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/evolution"), None, true).await?;
    let hello = json!({"type": "hello", "protocol": 1, "client": client});
    ws.send(Message::text(hello.to_string())).await?;
    let mut frame = json!({"type": "subscribe", "id": "s", "topics": ["storm"]});
    if let Some(since) = since {
        frame["since"] = since.clone();
    }
    ws.send(Message::text(frame.to_string())).await?;
    Ok(ws)
}

/// One subscriber: stays subscribed, moving to the next node when its node dies.
#[allow(clippy::too_many_arguments)]
async fn subscriber(
    i: usize,
    nodes: Arc<Vec<String>>,
    totals: Arc<Totals>,
    seen: Arc<Seen>,
    killed_at: Arc<std::sync::Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
) {
    let mut node = i % nodes.len();
    let mut rng = SeededRandom::new(i as u64 + 1);
    let mut position: Option<Value> = None;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut ws = match subscribe(&nodes[node], &format!("storm-{i}"), position.as_ref()).await {
            Ok(ws) => ws,
            Err(WsError::Http(resp)) if resp.status() == 503 => {
                // Admission control: come back at the turn the node gave (the body has it in ms;
                // Retry-After in whole seconds), plus a little jitter.
                totals.refused_503.fetch_add(1, Ordering::Relaxed);
                let body: Value =
                    resp.body().as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
                let secs = || resp.headers().get("retry-after")?.to_str().ok()?.parse::<u64>().ok().map(|s| s * 1000);
                let after = body["retry_after_ms"].as_u64().or_else(secs).unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(after) + jitter(&mut rng, 50)).await;
                continue;
            }
            Err(_) => {
                // The node is gone (or never answered): the next one, backing off with jitter.
                totals.connect_failures.fetch_add(1, Ordering::Relaxed);
                node = (node + 1) % nodes.len();
                failures += 1;
                tokio::time::sleep(jitter(&mut rng, 50u64 << failures.min(5))).await;
                continue;
            }
        };
        failures = 0;
        let mut subscribed = false;
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
            match frame["type"].as_str() {
                Some("ack") if !subscribed => {
                    subscribed = true;
                    if position.is_none() {
                        position = Some(frame["position"].clone());
                        seen.last.store(frame["position"]["seq"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        totals.subscribed.fetch_add(1, Ordering::Relaxed);
                    } else if seen.lost_node.load(Ordering::Relaxed) && seen.resumed_ms.load(Ordering::Relaxed) == 0 {
                        let since_kill = killed_at.lock().unwrap().map_or(0, |k| k.elapsed().as_millis() as u64);
                        seen.resumed_ms.store(since_kill.max(1), Ordering::Relaxed);
                    }
                }
                Some("event") => {
                    let seq = frame["seq"].as_u64().unwrap_or(0);
                    let last = seen.last.load(Ordering::Relaxed);
                    if seq <= last {
                        continue; // a repeat after a resume: de-duplicated by seq
                    }
                    if seq != last + 1 {
                        totals.gaps.fetch_add(seq - last - 1, Ordering::Relaxed);
                    }
                    seen.last.store(seq, Ordering::Relaxed);
                    position = Some(json!({"epoch": frame["epoch"], "seq": seq}));
                }
                Some("reset") => {
                    totals.resets.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        // The connection ended: its node died (or we are stopping). Another node, at random.
        if !stop.load(Ordering::Relaxed) {
            seen.lost_node.store(true, Ordering::Relaxed);
            node = (node + 1 + (rng.next_u64() as usize) % (nodes.len() - 1)) % nodes.len();
            tokio::time::sleep(jitter(&mut rng, 250)).await;
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the storm against three fresh nodes on the NATS at `nats_url`.
pub(crate) async fn run(bin: &str, nats_url: &str, storm: &Storm) -> Result<(), String> {
    println!(
        "\n(e) reconnect storm: {} subscribers over 3 nodes (store = nats), {} events/s, each node admitting {} handshakes/s",
        storm.clients, storm.events_per_sec, storm.handshakes_per_sec
    );
    let env = [
        ("BRIDGE_LIMITS__HANDSHAKES_PER_SEC", storm.handshakes_per_sec.to_string()),
        ("BRIDGE_LIMITS__HANDSHAKE_BURST", (storm.handshakes_per_sec / 2).max(1).to_string()),
    ];
    let mut backends = Vec::new();
    for i in 0..3 {
        let extra = ["--store", "nats", "--nats-url", nats_url, "--node-id", &format!("storm-{i}")];
        backends.push(Backend::start_with(bin, &extra, &env).await?);
    }
    let nodes = Arc::new(backends.iter().map(|b| b.addr.clone()).collect::<Vec<_>>());
    let totals = Arc::new(Totals::default());
    let killed_at = Arc::new(std::sync::Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<Arc<Seen>> = (0..storm.clients).map(|_| Arc::new(Seen::default())).collect();
    let started = Instant::now();
    for (i, s) in seen.iter().enumerate() {
        tokio::spawn(subscriber(
            i,
            Arc::clone(&nodes),
            Arc::clone(&totals),
            Arc::clone(s),
            Arc::clone(&killed_at),
            Arc::clone(&stop),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while totals.subscribed.load(Ordering::Relaxed) < storm.clients as u64 {
        if Instant::now() > deadline {
            return Err(format!("only {} subscribed within 60 s", totals.subscribed.load(Ordering::Relaxed)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "  all {} subscribed in {:.1} s ({} handshakes refused with 503 on the way)",
        storm.clients,
        started.elapsed().as_secs_f64(),
        totals.refused_503.swap(0, Ordering::Relaxed)
    );

    // The publisher, on the first node, paced; it remembers the highest seq acked.
    let publishing = Arc::new(AtomicBool::new(true));
    let head = Arc::new(AtomicU64::new(0));
    let publisher =
        tokio::spawn(publish(nodes[0].clone(), storm.events_per_sec, Arc::clone(&publishing), Arc::clone(&head)));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // SIGKILL the last node.
    let victim = backends.pop().ok_or("no nodes")?;
    let orphans = (0..storm.clients).filter(|i| i % 3 == 2).count();
    *killed_at.lock().unwrap() = Some(Instant::now());
    victim.stop().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resumed = seen.iter().filter(|s| s.resumed_ms.load(Ordering::Relaxed) > 0).count();
        if resumed >= orphans || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    publishing.store(false, Ordering::Relaxed);
    let published = publisher.await.map_err(|e| e.to_string())??;
    let head = head.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.iter().any(|s| s.last.load(Ordering::Relaxed) < head) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);

    let mut resumed: Vec<u64> =
        seen.iter().map(|s| s.resumed_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0).collect();
    resumed.sort_unstable();
    let behind: u64 = seen.iter().map(|s| head.saturating_sub(s.last.load(Ordering::Relaxed))).sum();
    let lost = behind + totals.gaps.load(Ordering::Relaxed);
    println!(
        "  killed 1 node holding {orphans} subscribers; {} of them resumed on another node: p50 {} ms, p99 {} ms, all by {} ms after the kill",
        resumed.len(),
        percentile(&resumed, 0.5),
        percentile(&resumed, 0.99),
        resumed.last().copied().unwrap_or(0)
    );
    println!(
        "  handshakes refused with 503 + Retry-After: {}; connects that failed (node gone): {}; resets: {}",
        totals.refused_503.load(Ordering::Relaxed),
        totals.connect_failures.load(Ordering::Relaxed),
        totals.resets.load(Ordering::Relaxed)
    );
    println!(
        "  RESULT storm: {}/{orphans} resumed, all within {} ms; {published} events published, {lost} lost deliveries across {} subscribers, {} resets, {} handshakes refused",
        resumed.len(),
        resumed.last().copied().unwrap_or(0),
        storm.clients,
        totals.resets.load(Ordering::Relaxed),
        totals.refused_503.load(Ordering::Relaxed)
    );
    for b in backends {
        b.stop().await;
    }
    Ok(())
}

/// Publishes to `storm` at `rate` until `publishing` turns false, then waits (5 s at most) for
/// the remaining acks. Returns how many it published; `head` holds the highest seq acked.
async fn publish(addr: String, rate: u64, publishing: Arc<AtomicBool>, head: Arc<AtomicU64>) -> Result<u64, String> {
    let mut ws = super::connect(&addr, "storm-publisher").await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut last_sent = None;
    loop {
        let done = !publishing.load(Ordering::Relaxed);
        if done && (acked == sent || last_sent.is_some_and(|t: Instant| t.elapsed() > Duration::from_secs(5))) {
            return Ok(sent);
        }
        tokio::select! {
            _ = tick.tick(), if !done => {
                sent += 1;
                let frame = json!({"type": "publish", "id": sent, "topic": "storm", "data": {"n": sent}});
                ws.send(Message::text(frame.to_string())).await.map_err(|e| e.to_string())?;
                last_sent = Some(Instant::now());
            }
            msg = ws.next() => {
                let Some(Ok(Message::Text(t))) = msg else { return Err("the publisher's node closed".into()) };
                let frame: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if frame["type"] == "ack" {
                    acked += 1;
                    head.fetch_max(frame["position"]["seq"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
            }
            () = tokio::time::sleep(Duration::from_millis(100)), if done => {}
        }
    }
}
