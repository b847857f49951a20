//! `cargo xtask bench`: measures the backend as a separate process.
//!
//! (a) RSS per idle connection: opens N connections (hello + welcome, then
//!     silence) and divides the server's RSS growth by N.
//! (b) Fan-out: 1 publisher, S subscribers on one topic, ~100-byte events,
//!     paced at rising rates; for each rate the share delivered and the
//!     publish→deliver latency p50/p99 (measured by the subscribers, which run
//!     on the same machine and share its cores).
//!
//! (c) Agent messages between two agents: latency and throughput (see `agents`).
//! (d) With `--store nats`: the same fan-out on a three-node cluster (nats-server
//!     on a free loopback port, subscribers spread over the nodes, the publisher
//!     on the first), printed next to the single node's figures of the same run.
//!
//! (e) `--storm` (or `--only storm`): a reconnect storm on three nodes on NATS (see `storm`).
//!
//! usage: bench <path to bridge-backend> [--connections N] [--subscribers S] [--rates r1,r2,..] [--step-secs T]
//!        [--store memory|nats] [--only idle,fanout,agents,storm,soak] [--messages N]
//!        [--storm] [--storm-clients N] [--storm-handshakes H] [--storm-events E]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bridge_core::metrics::Histogram;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod agents;
mod nats_ws;
mod soak;
mod storm;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Args {
    backend: String,
    connections: usize,
    subscribers: usize,
    rates: Vec<u64>,
    step: Duration,
    /// Also measure a three-node cluster on NATS.
    nats: bool,
    /// Which parts to run.
    only: Vec<String>,
    /// Agent messages per mode.
    messages: u64,
    /// The soak's length and load (`--only soak`).
    soak_minutes: f64,
    soak_subscribers: usize,
    soak_agents: usize,
    soak_deliveries: u64,
    soak_messages: u64,
    /// The reconnect storm (`--only storm`, or `--storm`).
    storm: storm::Storm,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let backend = it
        .next()
        .ok_or("usage: bench <bridge-backend> [--connections N] [--subscribers S] [--rates a,b,c] [--step-secs T]")?;
    let mut a = Args {
        backend,
        connections: 5000,
        subscribers: 500,
        rates: vec![200, 500, 1000, 1500, 2000, 3000, 4000, 6000],
        step: Duration::from_secs(3),
        nats: false,
        only: vec!["idle".into(), "fanout".into(), "agents".into()],
        messages: 100_000,
        soak_minutes: 10.0,
        // 19,900 in all: this machine allows 20,000 open files per process, and both the
        // backend and this load generator hold one per connection.
        soak_subscribers: 9_950,
        soak_agents: 9_950,
        soak_deliveries: 50_000,
        soak_messages: 500,
        storm: storm::Storm { clients: 2_000, handshakes_per_sec: 300, events_per_sec: 100 },
    };
    while let Some(flag) = it.next() {
        if flag == "--storm" {
            a.only = vec!["storm".into()];
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => a.connections = v.parse().map_err(|e| format!("--connections: {e}"))?,
            "--subscribers" => a.subscribers = v.parse().map_err(|e| format!("--subscribers: {e}"))?,
            "--rates" => {
                a.rates = v
                    .split(',')
                    .map(|r| r.trim().parse().map_err(|e| format!("--rates: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--step-secs" => a.step = Duration::from_secs_f64(v.parse().map_err(|e| format!("--step-secs: {e}"))?),
            "--only" => a.only = v.split(',').map(|s| s.trim().to_owned()).collect(),
            "--messages" => a.messages = v.parse().map_err(|e| format!("--messages: {e}"))?,
            "--soak-minutes" => a.soak_minutes = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--soak-subscribers" => a.soak_subscribers = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--soak-agents" => a.soak_agents = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--soak-deliveries" => a.soak_deliveries = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--soak-messages" => a.soak_messages = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--storm-clients" => a.storm.clients = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--storm-handshakes" => a.storm.handshakes_per_sec = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--storm-events" => a.storm.events_per_sec = v.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--store" => match v.as_str() {
                "memory" => a.nats = false,
                "nats" => a.nats = true,
                other => return Err(format!("--store {other}: use memory or nats")),
            },
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// The backend under test, as a child process.
struct Backend {
    child: tokio::process::Child,
    addr: String,
    pid: u32,
}

impl Backend {
    async fn start(bin: &str, extra: &[&str]) -> Result<Backend, String> {
        Self::start_with(bin, extra, &[]).await
    }

    /// Starts `bin` with `extra` flags and `env` variables on top of the bench's own.
    async fn start_with(bin: &str, extra: &[&str], env: &[(&str, String)]) -> Result<Backend, String> {
        let mut child = tokio::process::Command::new(bin)
            .args(["--port", "0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            // Benchmark traffic is far above the per-connection defaults meant for browsers.
            .env("BRIDGE_LIMITS__RATE_PER_SEC", "10000000")
            .env("BRIDGE_LIMITS__RATE_BURST", "10000000")
            .env("BRIDGE_LIMITS__MAX_CONNECTIONS", "20000")
            .env("BRIDGE_LIMITS__HANDSHAKES_PER_SEC", "1000000")
            .env("BRIDGE_LIMITS__HANDSHAKE_BURST", "1000000")
            .env("BRIDGE_HEARTBEAT__INTERVAL_MS", "600000")
            .env("BRIDGE_HEARTBEAT__TIMEOUT_MS", "1200000")
            .env("BRIDGE_EVOLUTION__HISTORY_EVENTS", "100000")
            .envs(
                std::env::vars()
                    .filter(|(k, _)| k.starts_with("BENCH_BRIDGE_"))
                    .map(|(k, v)| (k["BENCH_".len()..].to_owned(), v)),
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let pid = child.id().ok_or("no pid")?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let addr = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("bridge-backend listening on http://") {
                    return Some(url.trim_end_matches('/').to_owned());
                }
            }
            None
        })
        .await
        .map_err(|_| "the backend did not start within 15 s")?
        .ok_or("the backend exited before listening")?;
        Ok(Backend { child, addr, pid })
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU seconds used so far (user + system).
    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.pid)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn connect(addr: &str, client: &str) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/evolution"), None, true)
        .await
        .map_err(|e| e.to_string())?;
    let hello = format!(r#"{{"type":"hello","protocol":1,"client":"{client}"}}"#);
    ws.send(Message::text(hello)).await.map_err(|e| e.to_string())?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => Ok(ws),
        other => Err(format!("expected welcome, got {other:?}")),
    }
}

async fn idle_memory(args: &Args) -> Result<(), String> {
    println!("\n(a) RSS per idle connection: {} connections to /evolution (hello, then silence)", args.connections);
    let backend = Backend::start(&args.backend, &[]).await?;
    let mut warm = Vec::new();
    for i in 0..50 {
        warm.push(connect(&backend.addr, &format!("warm-{i}")).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = backend.rss_kib();
    let mut conns = Vec::with_capacity(args.connections);
    let started = Instant::now();
    for chunk in 0..args.connections.div_ceil(100) {
        let addr = backend.addr.clone();
        let batch = (0..100.min(args.connections - chunk * 100))
            .map(|i| {
                let addr = addr.clone();
                tokio::spawn(async move { connect(&addr, &format!("idle-{chunk}-{i}")).await })
            })
            .collect::<Vec<_>>();
        for h in batch {
            conns.push(h.await.map_err(|e| e.to_string())??);
        }
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = backend.rss_kib();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / args.connections as f64;
    println!(
        "  connected {} in {:.1} s; server RSS {} KiB -> {} KiB",
        args.connections,
        took.as_secs_f64(),
        before,
        after
    );
    println!("  RESULT idle connection: {:.2} KiB per connection ({:.0} bytes)", per / 1024.0, per);
    drop(conns);
    drop(warm);
    backend.stop().await;
    Ok(())
}

/// Extracts the integer after `"t":` in an event frame (the publisher's send time, µs since start).
fn sent_at(frame: &str) -> Option<u64> {
    let i = frame.find("\"t\":")? + 4;
    let rest = &frame[i..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

struct Step {
    rate: u64,
    published: u64,
    delivered: u64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu: f64,
    closed: u64,
}

/// What a fan-out runs against.
enum Target<'a> {
    /// bridge-backend nodes: subscribers spread over them, the publisher on the first.
    Bridge(&'a [Backend]),
    /// nats-server's WebSocket listener (`addr`), the process `pid`.
    Nats { addr: String, pid: u32 },
}

impl Target<'_> {
    fn nodes(&self) -> usize {
        match self {
            Target::Bridge(b) => b.len(),
            Target::Nats { .. } => 1,
        }
    }

    fn cpu_secs(&self) -> f64 {
        match self {
            Target::Bridge(b) => b.iter().map(Backend::cpu_secs).sum(),
            Target::Nats { pid, .. } => cpu_secs_of(*pid),
        }
    }

    /// A subscriber, subscribed to "bench".
    async fn subscriber(&self, i: usize) -> Result<Ws, String> {
        match self {
            Target::Bridge(b) => {
                let mut ws = connect(&b[i % b.len()].addr, &format!("sub-{i}")).await?;
                let sub = r#"{"type":"subscribe","id":1,"topics":["bench"]}"#;
                ws.send(Message::text(sub)).await.map_err(|e| e.to_string())?;
                Ok(ws)
            }
            Target::Nats { addr, .. } => nats_ws::connect(addr, &["SUB bench 1"]).await,
        }
    }

    async fn publisher(&self) -> Result<Ws, String> {
        match self {
            Target::Bridge(b) => connect(&b[0].addr, "publisher").await,
            Target::Nats { addr, .. } => nats_ws::connect(addr, &[]).await,
        }
    }

    /// The message that publishes `data` with id `id`.
    fn publish(&self, id: u64, data: &str) -> Message {
        match self {
            Target::Bridge(_) => {
                Message::text(format!(r#"{{"type":"publish","id":{id},"topic":"bench","data":{data}}}"#))
            }
            Target::Nats { .. } => nats_ws::publish("bench", data),
        }
    }
}

/// CPU seconds a process used so far (user + system).
fn cpu_secs_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Every `"t":` timestamp in a frame (a NATS frame may carry several messages).
fn sent_times(frame: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let text = std::str::from_utf8(frame).unwrap_or("");
    text.match_indices("\"t\":").filter_map(move |(i, _)| sent_at(&text[i..]))
}

/// The fan-out at rising rates against `target`; returns each rate's step and whether it met the bar.
async fn fanout(args: &Args, label: &str, target: &Target<'_>) -> Result<Vec<(Step, bool)>, String> {
    println!(
        "\n  {label}: 1 publisher -> {} subscribers over {} node(s), ~100-byte event data, {:.0} s per rate",
        args.subscribers,
        target.nodes(),
        args.step.as_secs_f64()
    );
    let origin = Instant::now();
    let recording = Arc::new(AtomicBool::new(false));
    // Per-subscriber counters: no cache line is shared between subscriber tasks.
    let stats: Vec<Arc<SubStats>> = (0..args.subscribers).map(|_| Arc::new(SubStats::default())).collect();
    let mut subs = Vec::new();
    for (i, st) in stats.iter().enumerate() {
        let mut ws = target.subscriber(i).await?;
        let (st, recording) = (Arc::clone(st), Arc::clone(&recording));
        subs.push(tokio::spawn(async move {
            while let Some(msg) = ws.next().await {
                let data = match msg {
                    Ok(Message::Text(t)) => t.as_bytes().to_vec(),
                    Ok(Message::Binary(b)) => b.to_vec(),
                    Ok(Message::Close(_)) | Err(_) => {
                        st.closed.store(true, Ordering::Relaxed);
                        break;
                    }
                    _ => continue,
                };
                if nats_ws::is_ping(&data) {
                    let _ = ws.send(nats_ws::pong()).await;
                }
                let now = origin.elapsed().as_micros() as u64;
                for at in sent_times(&data) {
                    st.count.fetch_add(1, Ordering::Relaxed);
                    if recording.load(Ordering::Relaxed) {
                        st.hist.lock().unwrap_or_else(|e| e.into_inner()).record(now.saturating_sub(at));
                    }
                }
            }
        }));
    }
    let received = || stats.iter().map(|s| s.count.load(Ordering::Relaxed)).sum::<u64>();
    let closed = || stats.iter().filter(|s| s.closed.load(Ordering::Relaxed)).count() as u64;
    // Wait for every subscribe ack.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let publisher = target.publisher().await?;
    let (mut tx, mut rx) = publisher.split();
    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let pad = "x".repeat(64);
    let mut id = 0u64;
    let mut results = Vec::new();
    for &rate in &args.rates {
        let base = received();
        for st in &stats {
            *st.hist.lock().unwrap_or_else(|e| e.into_inner()) = Histogram::default();
        }
        let cpu0 = target.cpu_secs();
        recording.store(true, Ordering::Relaxed);
        let start = Instant::now();
        let mut published = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while start.elapsed() < args.step {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while published < due {
                id += 1;
                published += 1;
                let t = origin.elapsed().as_micros();
                let data = format!(r#"{{"t":{t},"pad":"{pad}"}}"#);
                tx.feed(target.publish(id, &data)).await.map_err(|e| e.to_string())?;
            }
            tx.flush().await.map_err(|e| e.to_string())?;
        }
        let expected = published * args.subscribers as u64;
        // Drain: wait until everything arrived or 2 s passed.
        let drain = Instant::now();
        while received() - base < expected && drain.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        recording.store(false, Ordering::Relaxed);
        let cpu = (target.cpu_secs() - cpu0) / start.elapsed().as_secs_f64() * 100.0;
        let mut h = Histogram::default();
        for st in &stats {
            h.merge(&st.hist.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let step = Step {
            rate,
            published,
            delivered: received() - base,
            p50_ms: h.quantile(0.5) as f64 / 1000.0,
            p99_ms: h.quantile(0.99) as f64 / 1000.0,
            server_cpu: cpu,
            closed: closed(),
        };
        let share = step.delivered as f64 / expected.max(1) as f64 * 100.0;
        let ok = share >= 99.9 && step.p99_ms < 100.0 && step.closed == 0;
        println!(
            "  {:>6} ev/s ({:>6} published) = {:>9} deliveries/s target: delivered {:>7.3} %  p50 {:>7.2} ms  p99 {:>8.2} ms  server CPU {:>4.0} %  closed {}  {}",
            rate,
            step.published,
            rate * args.subscribers as u64,
            share,
            step.p50_ms,
            step.p99_ms,
            step.server_cpu,
            step.closed,
            if ok { "ok" } else { "FAIL" }
        );
        let failed = !ok;
        results.push((step, ok));
        if failed && results.iter().filter(|(_, ok)| !ok).count() >= 2 {
            break;
        }
        if step_closed(&results) {
            break;
        }
    }
    for s in subs {
        s.abort();
    }
    Ok(results)
}

/// A free loopback port.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// A nats-server on free loopback ports: JetStream for the cluster, and a WebSocket
/// listener for the side-by-side fan-out. Returns it, its client URL and its WebSocket address.
async fn nats_server() -> Result<(tokio::process::Child, String, String, std::path::PathBuf), String> {
    let bin = std::env::var("BRIDGE_NATS_SERVER")
        .map_err(|_| "the NATS runs need BRIDGE_NATS_SERVER (cargo xtask bench sets it)")?;
    let (port, ws_port) = (free_port()?, free_port()?);
    let dir = std::env::temp_dir().join(format!("bridge-bench-nats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("nats.conf");
    let text = format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\nwebsocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true }}\n",
        dir.join("js").display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", ws_port)).await.is_err() {
        if Instant::now() > deadline {
            return Err("nats-server did not listen within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, format!("nats://127.0.0.1:{port}"), format!("127.0.0.1:{ws_port}"), dir))
}

/// The fan-out on one node (memory) and on nats-server's WebSocket listener, then, with
/// `--store nats`, on three nodes on NATS; all side by side.
async fn fanouts(args: &Args) -> Result<(), String> {
    println!("\n(b) fan-out");
    let single = Backend::start(&args.backend, &[]).await?;
    let memory =
        fanout(args, "bridge-backend, one node, store = memory", &Target::Bridge(std::slice::from_ref(&single)))
            .await?;
    single.stop().await;
    report_best("bridge-backend, memory", &memory, args.subscribers);
    let (nats, url, ws_addr, dir) = nats_server().await?;
    let pid = nats.id().unwrap_or(0);
    let peer =
        fanout(args, "nats-server WebSocket listener (NATS protocol)", &Target::Nats { addr: ws_addr, pid }).await?;
    report_best("nats-server websocket", &peer, args.subscribers);
    let mut columns = vec![("bridge-backend (memory)", memory), ("nats-server websocket", peer)];
    if args.nats {
        let mut nodes = Vec::new();
        for i in 0..3 {
            let extra = ["--store", "nats", "--nats-url", &url, "--node-id", &format!("bench-{i}")];
            nodes.push(Backend::start(&args.backend, &extra).await?);
        }
        let cluster = fanout(args, "bridge-backend, three nodes, store = nats", &Target::Bridge(&nodes)).await?;
        for n in nodes {
            n.stop().await;
        }
        report_best("bridge-backend, three nodes, nats", &cluster, args.subscribers);
        columns.push(("bridge-backend (3 nodes, nats)", cluster));
    }
    drop(nats);
    let _ = std::fs::remove_dir_all(dir);
    println!("\n  side by side (same run, same load generator; delivered %, p50 and p99 in ms):");
    let mut head = format!("  {:>7}", "ev/s");
    for (name, _) in &columns {
        head.push_str(&format!(" | {name:>31}"));
    }
    println!("{head}");
    for rate in &args.rates {
        let mut line = format!("  {rate:>7}");
        for (_, results) in &columns {
            let cell = match results.iter().find(|(s, _)| s.rate == *rate) {
                Some((s, _)) => format!(
                    "{:>6.2} % {:>7.1} {:>7.1}",
                    s.delivered as f64 / (s.published * args.subscribers as u64).max(1) as f64 * 100.0,
                    s.p50_ms,
                    s.p99_ms
                ),
                None => "(not run)".into(),
            };
            line.push_str(&format!(" | {cell:>31}"));
        }
        println!("{line}");
    }
    Ok(())
}

fn report_best(label: &str, results: &[(Step, bool)], subscribers: usize) {
    match results.iter().filter(|(_, ok)| *ok).map(|(s, _)| s.rate).max() {
        Some(r) => println!(
            "  RESULT fan-out ({label}): highest rate with >= 99.9 % delivered and p99 < 100 ms: {r} events/s = {} deliveries/s",
            r * subscribers as u64
        ),
        None => println!("  RESULT fan-out ({label}): no rate met >= 99.9 % delivered with p99 < 100 ms"),
    }
}

fn step_closed(results: &[(Step, bool)]) -> bool {
    results.last().is_some_and(|(s, _)| s.closed > 0)
}

#[derive(Default)]
struct SubStats {
    count: AtomicU64,
    closed: AtomicBool,
    hist: std::sync::Mutex<Histogram>,
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let result = rt.block_on(async {
        let runs = |part: &str| args.only.iter().any(|o| o == part);
        if runs("idle") {
            idle_memory(&args).await?;
        }
        if runs("agents") {
            agents::run(&args.backend, args.messages, 256).await?;
        }
        if runs("fanout") {
            fanouts(&args).await?;
        }
        if runs("storm") {
            let (nats, url, _, dir) = nats_server().await?;
            let result = storm::run(&args.backend, &url, &args.storm).await;
            drop(nats);
            let _ = std::fs::remove_dir_all(dir);
            result?;
        }
        if runs("soak") {
            let csv = std::path::Path::new(&args.backend)
                .parent()
                .and_then(|release| release.parent())
                .map_or_else(|| "soak.csv".into(), |target| target.join("soak.csv"));
            let load = soak::Load {
                minutes: args.soak_minutes,
                subscribers: args.soak_subscribers,
                agents: args.soak_agents,
                deliveries_per_sec: args.soak_deliveries,
                agent_msgs_per_sec: args.soak_messages,
                csv,
            };
            soak::run(&args.backend, load).await?;
        }
        Ok::<(), String>(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
