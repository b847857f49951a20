//! (c) Agent messages: `send` → `message` delivered to the recipient → the
//! recipient's `ack`, between two agents on one node over loopback. Sequential
//! (one message at a time: the latency of one exchange) and pipelined (up to a
//! window of unacknowledged messages: the throughput). Latency is measured from
//! the sender's `send` to the recipient's receipt of the `message`, and to the
//! sender's receipt of its `ack`, on one clock (both agents live in this process).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bridge_core::metrics::Histogram;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use super::{Backend, Ws};

async fn agent(addr: &str, name: &str) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/agents"), None, true)
        .await
        .map_err(|e| e.to_string())?;
    for frame in
        [json!({"type": "hello", "protocol": 1, "client": name}), json!({"type": "register", "id": "r", "agent": name})]
    {
        ws.send(Message::text(frame.to_string())).await.map_err(|e| e.to_string())?;
    }
    let mut acked = false;
    while !acked {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => acked = t.contains("\"ack\""),
            Some(Ok(_)) => {}
            other => return Err(format!("{name}: expected welcome and ack, got {other:?}")),
        }
    }
    Ok(ws)
}

fn send(id: u64, origin: Instant) -> Message {
    let t = origin.elapsed().as_micros() as u64;
    Message::text(format!(
        r#"{{"type":"send","id":{id},"to":"bob","message_type":"bench","content":{{"t":{t},"pad":"0123456789abcdef0123456789abcdef"}}}}"#
    ))
}

/// The `t` of a frame's content, and its `id`.
fn parse(text: &str) -> (Value, u64) {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let t = v["content"]["t"].as_u64().unwrap_or(0);
    (v, t)
}

fn ms(h: &Histogram, q: f64) -> f64 {
    h.quantile(q) as f64 / 1000.0
}

/// Runs both modes; prints the figures.
pub(crate) async fn run(backend_bin: &str, messages: u64, window: usize) -> Result<(), String> {
    println!("\n(c) agent messages: send -> deliver -> ack between two agents, one node, loopback");
    let backend = Backend::start(backend_bin, &[]).await?;
    let origin = Instant::now();
    let (mut alice, mut bob) = (agent(&backend.addr, "alice").await?, agent(&backend.addr, "bob").await?);

    // Sequential: one exchange at a time.
    let (mut deliver, mut acked) = (Histogram::default(), Histogram::default());
    let started = Instant::now();
    for id in 1..=messages / 4 {
        let sent = origin.elapsed().as_micros() as u64;
        alice.send(send(id, origin)).await.map_err(|e| e.to_string())?;
        loop {
            let Some(Ok(Message::Text(t))) = bob.next().await else { return Err("bob lost his connection".into()) };
            let (v, _) = parse(t.as_str());
            if v["type"] == "message" && v["id"] == id {
                deliver.record(origin.elapsed().as_micros() as u64 - sent);
                let ack = json!({"type": "ack", "id": id, "from": "alice"}).to_string();
                bob.send(Message::text(ack)).await.map_err(|e| e.to_string())?;
                break;
            }
        }
        loop {
            let Some(Ok(Message::Text(t))) = alice.next().await else { return Err("alice lost her connection".into()) };
            let (v, _) = parse(t.as_str());
            if v["type"] == "ack" && v["id"] == id {
                acked.record(origin.elapsed().as_micros() as u64 - sent);
                break;
            }
        }
    }
    let n = messages / 4;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  sequential: {n} messages in {secs:.2} s = {:.0} msgs/s; send->deliver p50 {:.3} ms p99 {:.3} ms; send->ack p50 {:.3} ms p99 {:.3} ms",
        n as f64 / secs,
        ms(&deliver, 0.5),
        ms(&deliver, 0.99),
        ms(&acked, 0.5),
        ms(&acked, 0.99)
    );

    // Pipelined: up to `window` messages that bob has not acknowledged yet; bob acks each as it comes.
    let (mut a_tx, mut a_rx) = alice.split();
    let (mut b_tx, mut b_rx) = bob.split();
    let first = messages / 4 + 1;
    let last = first + messages - 1;
    let bob_acked = Arc::new(AtomicU64::new(0));
    let wake = Arc::new(Notify::new());
    let (acked_by_bob, woken) = (Arc::clone(&bob_acked), Arc::clone(&wake));
    let receiver = tokio::spawn(async move {
        let mut h = Histogram::default();
        let mut got = 0u64;
        while got < messages {
            // Acks go out in batches: flushed whenever no message is waiting.
            let next = match b_rx.next().now_or_never() {
                Some(next) => next,
                None => {
                    let _ = b_tx.flush().await;
                    acked_by_bob.store(got, Ordering::Release);
                    woken.notify_one();
                    b_rx.next().await
                }
            };
            let Some(Ok(msg)) = next else { break };
            let Message::Text(t) = msg else { continue };
            let (v, t0) = parse(t.as_str());
            if v["type"] != "message" {
                continue;
            }
            h.record((origin.elapsed().as_micros() as u64).saturating_sub(t0));
            got += 1;
            let ack = json!({"type": "ack", "id": v["id"], "from": "alice"}).to_string();
            if b_tx.feed(Message::text(ack)).await.is_err() {
                break;
            }
        }
        let _ = b_tx.flush().await;
        (got, h)
    });
    // The server's answers to alice's sends: counted, refusals shown.
    let refusals = tokio::spawn(async move {
        let (mut accepted, mut refused) = (0u64, 0u64);
        while accepted + refused < messages {
            let Some(Ok(Message::Text(t))) = a_rx.next().await else { break };
            let (v, _) = parse(t.as_str());
            match v["type"].as_str() {
                Some("ack") => accepted += 1,
                Some("error") => {
                    if refused == 0 {
                        println!("  first refusal: {v}");
                    }
                    refused += 1;
                }
                _ => {}
            }
        }
        refused
    });
    let started = Instant::now();
    let mut next = first;
    while next <= last {
        let in_flight = (next - first) - bob_acked.load(Ordering::Acquire);
        if in_flight >= window as u64 {
            let _ = tokio::time::timeout(Duration::from_millis(50), wake.notified()).await;
            continue;
        }
        for _ in 0..(window as u64 - in_flight).min(last + 1 - next) {
            a_tx.feed(send(next, origin)).await.map_err(|e| e.to_string())?;
            next += 1;
        }
        a_tx.flush().await.map_err(|e| e.to_string())?;
    }
    let (delivered, h) = tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .map_err(|_| "bob stalled")?
        .map_err(|e| e.to_string())?;
    let refused = refusals.await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  pipelined (window {window}): {messages} messages in {secs:.2} s = {:.0} msgs/s ({delivered} delivered, {refused} refused); send->deliver p50 {:.3} ms p99 {:.3} ms",
        messages as f64 / secs,
        ms(&h, 0.5),
        ms(&h, 0.99)
    );
    println!(
        "  RESULT agent messages: sequential p50 {:.0} us (target <= 100 us); pipelined {:.0} msgs/s (target >= 100k)",
        deliver.quantile(0.5) as f64,
        messages as f64 / secs
    );
    backend.stop().await;
    Ok(())
}
