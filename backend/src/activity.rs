//! When the node last did something (an HTTP request, a connection opening or
//! closing, an open dashboard), for the idle timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The node's start and its last activity.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last activity.
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self { started: Instant::now(), last: AtomicU64::new(0) }
    }

    /// Time since the node started.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records activity now.
    pub(crate) fn touch(&self) {
        self.last.store(self.uptime().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last activity.
    pub(crate) fn since_last(&self) -> Duration {
        self.uptime().saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}
