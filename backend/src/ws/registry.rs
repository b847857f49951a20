//! The node's connections: a bounded number of slots, ids, and every live
//! connection (for status and for the demo's drop).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::activity::Activity;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::sync::lock;

/// Live connections by id, with their socket's name.
type Live = HashMap<u64, (&'static str, Arc<dyn Mailbox>)>;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Connections {
    max: usize,
    open: AtomicUsize,
    next_id: AtomicU64,
    live: Mutex<Live>,
    metrics: Arc<Metrics>,
    activity: Arc<Activity>,
}

/// A counted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    connections: Arc<Connections>,
    socket: &'static str,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::AcqRel);
        self.connections.metrics.connection_closed(self.socket);
        self.connections.activity.touch();
    }
}

impl Connections {
    pub(crate) fn new(max: usize, metrics: Arc<Metrics>, activity: Arc<Activity>) -> Self {
        Self {
            max,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            live: Mutex::new(HashMap::new()),
            metrics,
            activity,
        }
    }

    /// Takes a slot on `socket`, unless the node holds its maximum.
    pub(crate) fn acquire(self: &Arc<Self>, socket: &'static str) -> Option<Slot> {
        let max = self.max;
        self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        self.metrics.connection_opened(socket);
        self.activity.touch();
        Some(Slot { connections: Arc::clone(self), socket })
    }

    /// Connections holding a slot (handshakes included).
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The most connections at once.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A new id, unique for the node's lifetime.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert(&self, socket: &'static str, conn: Arc<dyn Mailbox>) {
        lock(&self.live).insert(conn.id(), (socket, conn));
    }

    pub(crate) fn remove(&self, id: u64) {
        lock(&self.live).remove(&id);
    }

    /// Cuts every connection of `socket` without a close frame; returns how many.
    pub(crate) fn abort_all(&self, socket: &str, reason: &str) -> usize {
        let live = lock(&self.live);
        let mut n = 0;
        for (_, conn) in live.values().filter(|(s, _)| *s == socket) {
            conn.abort(reason);
            n += 1;
        }
        n
    }

    /// A live connection, any (for tests).
    #[cfg(test)]
    pub(super) fn any(&self) -> Option<Arc<dyn Mailbox>> {
        lock(&self.live).values().next().map(|(_, c)| Arc::clone(c))
    }
}
