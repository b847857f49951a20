//! The backend every bridge and daemon talks to.
//!
//! # Layout
//!
//! The modules form layers; each uses only those below it.
//!
//! 1. Leaves, used by everyone: [`config`], [`input`] (the HTTP bodies' checks), `error` (the HTTP error), `clock`,
//!    `auth`, `metrics`, `wire` (encoding frames), `mailbox` (what state needs from
//!    a connection), `activity`, `dedup`, `shutdown`, `process`, `sync`.
//! 2. `store`: every domain's state behind one trait each; the embedded
//!    `memory` store and the `nats` store (JetStream) implement them.
//! 3. `ws`: the WebSocket transport, a connection engine blind to what frames mean.
//! 4. Domains: `evolution` and `agents` (the two sockets' services), `reports`,
//!    `llm` (the proxy), `demo` (the fault switch).
//! 5. `state` composes a node; `http` holds every route; this file serves them.
//!
//! [`app`] builds the router; [`run`] serves it on a listener the caller bound,
//! until the caller's shutdown future completes. `main` and the tests share both.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

mod activity;
mod agents;
mod auth;
mod clock;
pub mod config;
mod dedup;
mod demo;
mod error;
mod evolution;
mod http;
pub mod input;
mod llm;
mod mailbox;
mod metrics;
mod process;
mod reports;
mod shutdown;
mod state;
mod store;
mod sync;
mod wire;
mod ws;

pub use config::Config;
pub use state::AppState;

/// The router: every route of the backend.
pub fn app(state: AppState) -> Router {
    http::routes(state)
}

/// Opens the configured store, then [`serve`]s. An error opening the store
/// (NATS unreachable, a stream with other settings) is returned as it is.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let state = AppState::open(config, local).await.map_err(std::io::Error::other)?;
    serve(listener, state, shutdown).await
}

/// Serves [`app`] on `listener` until `shutdown` completes (or the idle timeout
/// passes), then closes every socket with "going away" and waits up to the
/// grace period for them to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let signal = state.inner.shutdown.clone();
    state.announce_forever();
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
        // TCP_NODELAY: the writers already batch frames and flush once per batch, so
        // Nagle's algorithm would only hold small answers back (up to 40 ms with delayed acks).
        axum::serve(
            listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            }),
            app(state.clone()),
        )
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
