//! Graceful shutdown: one signal every connection watches, and a count of
//! live connections to wait for (upgraded sockets outlive hyper's own
//! connection tracking, so the server tracks them itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// The shutdown signal and the live-connection count.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    signal: watch::Sender<bool>,
    live: Arc<(AtomicUsize, Notify)>,
}

/// Held by each live connection; dropping it counts the connection as finished.
#[derive(Debug)]
pub(crate) struct Tracked {
    live: Arc<(AtomicUsize, Notify)>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.live.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.live.1.notify_waiters();
        }
    }
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self { signal: watch::Sender::new(false), live: Arc::new((AtomicUsize::new(0), Notify::new())) }
    }

    /// Starts shutting down (idempotent).
    pub(crate) fn trigger(&self) {
        self.signal.send_replace(true);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        *self.signal.borrow()
    }

    /// A receiver whose `wait_for(|s| *s)` completes at shutdown.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.signal.subscribe()
    }

    /// Counts one more live connection until the guard drops.
    pub(crate) fn track(&self) -> Tracked {
        self.live.0.fetch_add(1, Ordering::AcqRel);
        Tracked { live: Arc::clone(&self.live) }
    }

    /// Waits until no tracked connection is left, or `grace` passes. True when all finished.
    pub(crate) async fn drained(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.live.1.notified();
                if self.live.0.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

/// Completes when `rx` sees the shutdown signal.
pub(crate) async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
