//! The soak: many connections on both sockets and a steady load for minutes,
//! sampled every second. Evolution subscribers all take one topic that a
//! publisher feeds at `deliveries / subscribers` events per second; agents send
//! each other messages, which are acknowledged. At the end: the RSS drift after
//! warm-up, errors, lost events and messages, closed connections; every second's
//! sample goes to a CSV.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bridge_core::metrics::Histogram;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use super::{Backend, Ws, connect, sent_at};

/// What the soak is asked to hold.
pub(crate) struct Load {
    pub(crate) minutes: f64,
    pub(crate) subscribers: usize,
    pub(crate) agents: usize,
    pub(crate) deliveries_per_sec: u64,
    pub(crate) agent_msgs_per_sec: u64,
    pub(crate) csv: std::path::PathBuf,
}

#[derive(Default)]
struct Counters {
    /// Subscriptions acknowledged (publishing starts when all are).
    subscribed: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    closed: AtomicU64,
    messages_received: AtomicU64,
    messages_acked: AtomicU64,
}

/// Opens `n` connections with `open(i)`, 200 at a time.
async fn open_many<F, Fut>(n: usize, open: F) -> Result<Vec<Ws>, String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Ws, String>> + Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let batch: Vec<_> = chunk.iter().map(|i| tokio::spawn(open(*i))).collect();
        for h in batch {
            out.push(h.await.map_err(|e| e.to_string())??);
        }
    }
    Ok(out)
}

async fn agent(addr: String, i: usize) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/agents"), None, true)
        .await
        .map_err(|e| e.to_string())?;
    let name = format!("soak-{i}");
    for frame in
        [json!({"type": "hello", "protocol": 1, "client": name}), json!({"type": "register", "id": "r", "agent": name})]
    {
        ws.send(Message::text(frame.to_string())).await.map_err(|e| e.to_string())?;
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ack\"") => return Ok(ws),
            Some(Ok(_)) => {}
            other => return Err(format!("agent {i}: {other:?}")),
        }
    }
}

pub(crate) async fn run(backend_bin: &str, load: Load) -> Result<(), String> {
    println!(
        "\n(soak) {} evolution + {} agents connections, {} deliveries/s and {} agent messages/s, {:.1} min",
        load.subscribers, load.agents, load.deliveries_per_sec, load.agent_msgs_per_sec, load.minutes
    );
    let total = load.subscribers + load.agents;
    let env = [
        ("BRIDGE_LIMITS__MAX_CONNECTIONS", (total + 100).to_string()),
        ("BRIDGE_AGENTS__MAX_AGENTS", (load.agents + 100).to_string()),
    ];
    let backend = Backend::start_with(backend_bin, &[], &env).await?;
    let origin = Instant::now();
    let counters = Arc::new(Counters::default());
    // Latency from a sample of subscribers (every 100th), reset every second.
    let latency = Arc::new(Mutex::new(Histogram::default()));

    let started = Instant::now();
    let addr = backend.addr.clone();
    let subs = open_many(load.subscribers, move |i| {
        let addr = addr.clone();
        async move { connect(&addr, &format!("soak-sub-{i}")).await }
    })
    .await?;
    let mut tasks = Vec::new();
    for (i, mut ws) in subs.into_iter().enumerate() {
        let (counters, latency) = (Arc::clone(&counters), Arc::clone(&latency));
        ws.send(Message::text(r#"{"type":"subscribe","id":1,"topics":["soak"]}"#)).await.map_err(|e| e.to_string())?;
        tasks.push(tokio::spawn(async move {
            while let Some(msg) = ws.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let text = t.as_str();
                        if let Some(at) = sent_at(text) {
                            counters.delivered.fetch_add(1, Ordering::Relaxed);
                            if i % 100 == 0 {
                                latency.lock().await.record((origin.elapsed().as_micros() as u64).saturating_sub(at));
                            }
                        } else if text.starts_with("{\"type\":\"ack\"") {
                            counters.subscribed.fetch_add(1, Ordering::Relaxed);
                        } else if text.contains("\"error\"") {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    _ => {}
                }
            }
        }));
    }
    let addr = backend.addr.clone();
    let agents = open_many(load.agents, move |i| agent(addr.clone(), i)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.subscribed.load(Ordering::Relaxed) < load.subscribers as u64 {
        if Instant::now() > deadline {
            return Err(format!("only {} subscriptions acknowledged", counters.subscribed.load(Ordering::Relaxed)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("  {total} connections open and subscribed in {:.1} s", started.elapsed().as_secs_f64());
    // Agents: each reads its messages and acks them; senders count their acks.
    let mut senders = Vec::new();
    for ws in agents {
        let (mut tx, mut rx) = ws.split();
        let counters = Arc::clone(&counters);
        let (to_self_tx, mut to_self) = tokio::sync::mpsc::channel::<String>(64);
        senders.push(to_self_tx);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = to_self.recv() => {
                        let Some(frame) = frame else { break };
                        if tx.send(Message::text(frame)).await.is_err() { break; }
                    }
                    msg = rx.next() => {
                        let t = match msg {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(_)) => continue,
                            _ => {
                                counters.closed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        };
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        match v["type"].as_str() {
                            Some("message") => {
                                counters.messages_received.fetch_add(1, Ordering::Relaxed);
                                let ack = json!({"type": "ack", "id": v["id"], "from": v["from"]}).to_string();
                                if tx.send(Message::text(ack)).await.is_err() { break; }
                            }
                            Some("ack") if v["status"].is_string() => {
                                counters.messages_acked.fetch_add(1, Ordering::Relaxed);
                            }
                            Some("error") => {
                                counters.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }));
    }

    let publisher = connect(&backend.addr, "soak-publisher").await?;
    let (mut pub_tx, mut pub_rx) = publisher.split();
    let errors = Arc::clone(&counters);
    tokio::spawn(async move {
        while let Some(Ok(msg)) = pub_rx.next().await {
            if let Message::Text(t) = msg
                && t.contains("\"error\"")
            {
                errors.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let events_per_sec = (load.deliveries_per_sec as f64 / load.subscribers.max(1) as f64).max(0.0);
    let mut csv = std::fs::File::create(&load.csv).map_err(|e| format!("{}: {e}", load.csv.display()))?;
    writeln!(csv, "t_s,rss_kib,cpu_pct,connections,deliveries_per_s,p50_ms,p99_ms,agent_msgs_per_s,errors,closed")
        .map_err(|e| e.to_string())?;
    let duration = Duration::from_secs_f64(load.minutes * 60.0);
    let warmup = (duration / 10).max(Duration::from_secs(10)).min(Duration::from_secs(60));
    let run = Instant::now();
    let (mut published, mut sent_msgs, mut id) = (0u64, 0u64, 0u64);
    let (mut last_delivered, mut last_acked, mut cpu0) = (0u64, 0u64, backend.cpu_secs());
    let mut rss_after_warmup: Vec<u64> = Vec::new();
    let mut rss_last: Vec<u64> = Vec::new();
    // Bounded maps (the agents' dedup window: 100,000 entries by default) fill during the first
    // minutes; the second half's drift shows whether anything grows once they are full.
    let mut rss_mid: Vec<u64> = Vec::new();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    second.tick().await;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pad = "x".repeat(64);
    let mut next_second = Instant::now() + Duration::from_secs(1);
    while run.elapsed() < duration {
        tick.tick().await;
        let secs = run.elapsed().as_secs_f64();
        // Events at their rate.
        while (published as f64) < secs * events_per_sec {
            published += 1;
            id += 1;
            let t = origin.elapsed().as_micros();
            let frame = format!(r#"{{"type":"publish","id":{id},"topic":"soak","data":{{"t":{t},"pad":"{pad}"}}}}"#);
            pub_tx.feed(Message::text(frame)).await.map_err(|e| e.to_string())?;
        }
        pub_tx.flush().await.map_err(|e| e.to_string())?;
        // Agent messages at their rate, from agent k to agent k+1.
        while (sent_msgs as f64) < secs * load.agent_msgs_per_sec as f64 && !senders.is_empty() {
            let k = (sent_msgs as usize) % senders.len();
            let to = format!("soak-{}", (k + 1) % senders.len());
            let frame =
                json!({"type": "send", "id": sent_msgs, "to": to, "message_type": "soak", "content": {"n": sent_msgs}});
            let _ = senders[k].try_send(frame.to_string());
            sent_msgs += 1;
        }
        if Instant::now() < next_second {
            continue;
        }
        next_second += Duration::from_secs(1);
        let rss = backend.rss_kib();
        let cpu = backend.cpu_secs();
        let cpu_pct = (cpu - cpu0) * 100.0;
        cpu0 = cpu;
        let delivered = counters.delivered.load(Ordering::Relaxed);
        let acked = counters.messages_acked.load(Ordering::Relaxed);
        let h = std::mem::take(&mut *latency.lock().await);
        let conns = total as u64 - counters.closed.load(Ordering::Relaxed);
        let t = run.elapsed().as_secs();
        writeln!(
            csv,
            "{t},{rss},{cpu_pct:.1},{conns},{},{:.2},{:.2},{},{},{}",
            delivered - last_delivered,
            h.quantile(0.5) as f64 / 1000.0,
            h.quantile(0.99) as f64 / 1000.0,
            acked - last_acked,
            counters.errors.load(Ordering::Relaxed),
            counters.closed.load(Ordering::Relaxed)
        )
        .map_err(|e| e.to_string())?;
        if run.elapsed() >= warmup && rss_after_warmup.len() < 30 {
            rss_after_warmup.push(rss);
        }
        if run.elapsed() >= duration / 2 && rss_mid.len() < 30 {
            rss_mid.push(rss);
        }
        rss_last.push(rss);
        if rss_last.len() > 30 {
            rss_last.remove(0);
        }
        let per_sec = delivered.saturating_sub(last_delivered);
        last_delivered = delivered;
        last_acked = acked;
        if t.is_multiple_of(60) {
            println!(
                "  {t:>4} s: RSS {} KiB, CPU {cpu_pct:.0} %, {} deliveries/s, p99 {:.1} ms, {} errors, {} closed",
                rss,
                per_sec,
                h.quantile(0.99) as f64 / 1000.0,
                counters.errors.load(Ordering::Relaxed),
                counters.closed.load(Ordering::Relaxed)
            );
        }
    }
    // Drain: what was published must arrive.
    let expected = published * load.subscribers as u64;
    let drain = Instant::now();
    while (counters.delivered.load(Ordering::Relaxed) < expected
        || counters.messages_received.load(Ordering::Relaxed) < sent_msgs)
        && drain.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let avg = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let (early, late) = (avg(&rss_after_warmup), avg(&rss_last));
    let drift = if early > 0.0 { (late - early) / early * 100.0 } else { 0.0 };
    let mid = avg(&rss_mid);
    let second_half = if mid > 0.0 { (late - mid) / mid * 100.0 } else { 0.0 };
    let lost_events = expected.saturating_sub(counters.delivered.load(Ordering::Relaxed));
    let lost_msgs = sent_msgs.saturating_sub(counters.messages_received.load(Ordering::Relaxed));
    println!(
        "  RESULT soak {:.1} min: {total} connections ({} evolution, {} agents), {} deliveries/s and {} agent messages/s: \
         RSS {:.0} KiB after warm-up -> {:.0} KiB at the end (drift {drift:+.2} %; {second_half:+.2} % over the second half), {} errors, {lost_events} events lost, \
         {lost_msgs} messages lost, {} connections closed; every second in {}",
        load.minutes,
        load.subscribers,
        load.agents,
        load.deliveries_per_sec,
        load.agent_msgs_per_sec,
        early,
        late,
        counters.errors.load(Ordering::Relaxed),
        counters.closed.load(Ordering::Relaxed),
        load.csv.display()
    );
    for t in tasks {
        t.abort();
    }
    backend.stop().await;
    Ok(())
}
