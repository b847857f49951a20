//! The backend every bridge and daemon talks to.
//!
//! # Layout
//!
//! - [`config`]: every setting, layered defaults < file < env < flags.
//! - [`http`]: the HTTP routes (health, static files).
//! - [`app`] builds the router; [`run`] serves it on a listener the caller
//!   bound, until the caller's shutdown future completes. `main` and the
//!   tests share both.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub mod config;
pub mod http;

pub use config::Config;

/// Shared state of one running server.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    started: std::time::Instant,
}

impl AppState {
    /// State for a server with `config`.
    pub fn new(config: Config) -> Self {
        Self { inner: Arc::new(Inner { config, started: std::time::Instant::now() }) }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Time since the server started.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }
}

/// The router: every route of the backend.
pub fn app(state: AppState) -> Router {
    http::routes(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(config);
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
