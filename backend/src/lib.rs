//! The backend every bridge and daemon talks to.
//!
//! # Layout
//!
//! - [`config`]: every setting, layered defaults < file < env < flags.
//! - `ws`: WebSocket plumbing shared by both sockets (upgrade, reader,
//!   writer with a bounded queue, heartbeats, limits).
//! - `evolution`: the event log, publish, subscriptions with resume, and
//!   request routing to handlers.
//! - `agents`: agent names, messages with acks, offline queues, presence.
//! - `reports`: the latest report of every bridge.
//! - `http`: health, status, metrics, reports and publish over HTTP, static files.
//! - `auth`, `metrics`, `process`, `shutdown`, `dedup`, `sync`: supporting pieces.
//!
//! [`app`] builds the router; [`run`] serves it on a listener the caller bound,
//! until the caller's shutdown future completes. `main` and the tests share both.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;

mod agents;
mod auth;
pub mod config;
mod dashboard;
mod dedup;
mod demo;
mod evolution;
mod http;
mod llm;
mod metrics;
mod process;
mod reports;
mod shutdown;
mod sync;
mod ws;

pub use config::Config;

/// Shared state of one running server.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    started: Instant,
    gate: auth::Gate,
    evolution: Arc<evolution::EvolutionHub>,
    agents: Mutex<agents::Directory>,
    reports: Mutex<reports::ReportStore>,
    metrics: metrics::Metrics,
    shutdown: shutdown::Shutdown,
    connections: AtomicUsize,
    next_peer_id: AtomicU64,
    /// Milliseconds since `started` of the last HTTP request or connection change.
    last_activity: AtomicU64,
    cpu: Mutex<process::CpuMeter>,
    llm: llm::LlmProxy,
    faults: demo::Faults,
    /// Every live connection, by id (for the demo's drop and for status).
    live: Mutex<std::collections::HashMap<u64, Arc<ws::Peer>>>,
}

impl AppState {
    /// State for a server with `config` listening on `local` (its own origin is always allowed).
    pub fn new(config: Config, local: SocketAddr) -> Self {
        let inner = Inner {
            gate: auth::Gate::new(&config.auth, local),
            evolution: Arc::new(evolution::EvolutionHub::new(&config.evolution)),
            agents: Mutex::new(agents::Directory::new(&config.agents)),
            reports: Mutex::new(reports::ReportStore::new(&config.reports)),
            metrics: metrics::Metrics::new(),
            shutdown: shutdown::Shutdown::new(),
            connections: AtomicUsize::new(0),
            next_peer_id: AtomicU64::new(1),
            last_activity: AtomicU64::new(0),
            cpu: Mutex::new(process::CpuMeter::new()),
            llm: llm::LlmProxy::new(&config.llm),
            faults: demo::Faults::default(),
            live: Mutex::new(std::collections::HashMap::new()),
            started: Instant::now(),
            config,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Time since the server started.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Records activity (an HTTP request, a connection opening or closing).
    fn touch(&self) {
        self.inner.last_activity.store(self.uptime().as_millis() as u64, Ordering::Relaxed);
    }

    /// Cuts every connection of socket `target` (`evolution` or `agents`) without a close frame.
    fn drop_connections(&self, target: &str) -> usize {
        let live = sync::lock(&self.inner.live);
        let mut n = 0;
        for peer in live.values().filter(|p| p.kind.as_str() == target) {
            peer.close(ws::ABORT, "dropped by the demo fault switch");
            n += 1;
        }
        n
    }

    /// Time since the last activity, or zero while any connection is open.
    fn idle_for(&self) -> Duration {
        if self.inner.connections.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.inner.last_activity.load(Ordering::Relaxed));
        self.uptime().saturating_sub(last)
    }
}

/// The router: every route of the backend.
pub fn app(state: AppState) -> Router {
    http::routes(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes (or the idle timeout
/// passes), then closes every socket with "going away" and waits up to the
/// grace period for them to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let state = AppState::new(config, local);
    let signal = state.inner.shutdown.clone();
    let idle_limit = Duration::from_millis(state.config().idle_timeout_ms);
    let watcher = state.clone();
    let trigger = tokio::spawn(async move {
        let idle = async {
            if idle_limit.is_zero() {
                return std::future::pending().await;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if watcher.idle_for() >= idle_limit {
                    tracing::info!(idle_ms = idle_limit.as_millis() as u64, "idle timeout: shutting down");
                    return;
                }
            }
        };
        tokio::select! {
            () = shutdown => {},
            () = idle => {},
        }
        watcher.inner.shutdown.trigger();
    });
    let mut stop = signal.subscribe();
    let mut serve = tokio::spawn(
        axum::serve(listener, app(state.clone()))
            .with_graceful_shutdown(async move { shutdown::signalled(&mut stop).await })
            .into_future(),
    );
    let mut asked = signal.subscribe();
    let ended = tokio::select! {
        r = &mut serve => Some(r),
        () = shutdown::signalled(&mut asked) => None,
    };
    signal.trigger();
    trigger.abort();
    // One deadline for everything: HTTP requests still running (an LLM call, a demo
    // hang) and WebSocket connections saying goodbye.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(state.config().shutdown.grace_ms);
    let served = match ended {
        Some(r) => r,
        None => match tokio::time::timeout_at(deadline, &mut serve).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!("HTTP requests still running after the shutdown grace period; exiting anyway");
                serve.abort();
                Ok(Ok(()))
            }
        },
    };
    if !signal.drained(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        tracing::warn!("connections still open after the shutdown grace period; exiting anyway");
    }
    served.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
