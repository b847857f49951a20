//! The WebSocket transport: one connection engine for both sockets, blind to
//! what their frames mean.
//!
//! A connection is a reader and a writer running in one task. The reader does
//! the `hello` handshake, then decodes and polices frames (size, rate, bad-frame
//! budget) and hands each to the socket's [`Service`]; the writer drains the
//! bounded outbound queue, sends heartbeats, honours close requests and, for a
//! service with a [`Feed`] (evolution's events), reads it at its own pace. The
//! engine is generic over the `Sink`/`Stream` of messages, so it is tested with
//! in-memory channels as well as through real sockets.
//!
//! - [`connection`]: the reader, and the task that runs both halves.
//! - [`handshake`]: `hello` → `welcome`, or a refusal with its close code.
//! - [`writer`]: the writer.
//! - [`peer`]: the connection as the rest of the server sees it.
//! - [`queue`]: its bounded outbound queue and close request, allocated only while used.
//! - [`registry`]: connection slots, ids, and the live connections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ClientFrame, FrameError};
use tokio::time::Instant;

use crate::auth::Gate;
use crate::config::{Heartbeat, Limits};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

mod admission;
mod bucket;
mod connection;
mod handshake;
mod peer;
mod queue;
mod registry;
#[cfg(test)]
mod tests;
mod writer;

pub(crate) use connection::serve;
pub(crate) use peer::{Outbound, Peer};
pub(crate) use registry::{Connections, Slot};

/// What a socket does with its frames: evolution and agents implement it.
pub(crate) trait Service: Send + Sync + 'static {
    /// What the writer keeps for this service, per connection.
    type Feed: Feed;
    /// Instructions from the reader to the feed, queued in order with the frames.
    type Command: Send + std::fmt::Debug + 'static;

    /// The socket's name (`evolution`, `agents`): metrics labels and session ids.
    const SOCKET: &'static str;

    /// A new connection's feed.
    fn open(&self) -> Self::Feed;

    /// Handles one decoded frame (never `hello` or `ping`: the engine answers those).
    /// An error is sent to the client as an `error` frame.
    fn handle<'a>(
        &'a self,
        frame: ClientFrame,
        peer: &'a Arc<Peer<Self::Command>>,
    ) -> impl Future<Output = Result<(), FrameError>> + Send + 'a;

    /// Applies a command in the writer; returns the frames to write now, in order.
    fn command(&self, feed: &mut Self::Feed, command: Self::Command) -> Vec<Utf8Bytes>;

    /// The connection closed.
    fn closed(&self, peer: &Arc<Peer<Self::Command>>);
}

/// Frames a connection reads at its own pace from somewhere shared (evolution:
/// the event log), instead of having them pushed into its queue.
pub(crate) trait Feed: Send {
    /// Something may be waiting to be written.
    fn is_active(&self) -> bool;
    /// Something is waiting to be written.
    fn pending(&self) -> bool;
    /// Completes when `pending` may have changed (called only while active).
    fn changed(&mut self) -> impl Future<Output = ()> + Send;
    /// Appends the next batch to `out`; returns when the oldest of them was
    /// created (for the latency metric). `Err(reason)`: the feed fell too far
    /// behind to continue, and the connection is closed as a slow consumer.
    fn next_batch(&mut self, out: &mut Vec<Utf8Bytes>) -> Result<Option<Instant>, String>;
}

/// A service without a feed.
#[derive(Debug, Default)]
pub(crate) struct NoFeed;

impl Feed for NoFeed {
    fn is_active(&self) -> bool {
        false
    }
    fn pending(&self) -> bool {
        false
    }
    async fn changed(&mut self) {
        std::future::pending::<()>().await;
    }
    fn next_batch(&mut self, _: &mut Vec<Utf8Bytes>) -> Result<Option<Instant>, String> {
        Ok(None)
    }
}

/// What every connection of a node shares: its settings, the token gate,
/// metrics, the shutdown signal and the connection registry. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Transport(Arc<Parts>);

#[derive(Debug)]
struct Parts {
    limits: Limits,
    heartbeat: Heartbeat,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    connections: Arc<Connections>,
    /// One clock for every writer: heartbeats and shutdown (one timer for the node,
    /// not one per connection: each idle connection waits on it for free).
    clock: tokio::sync::watch::Sender<Tick>,
    /// Handshakes admitted per second (`limits.handshakes_per_sec`), node-wide.
    handshakes: std::sync::Mutex<admission::Admission>,
}

/// What the node's clock says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tick {
    /// Heartbeat intervals so far: every writer pings (or gives up on a silent client) at each.
    pub(crate) beats: u64,
    /// The node is shutting down.
    pub(crate) shutdown: bool,
}

impl Transport {
    pub(crate) fn new(
        limits: Limits,
        heartbeat: Heartbeat,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        connections: Arc<Connections>,
    ) -> Self {
        let clock = tokio::sync::watch::Sender::new(Tick::default());
        let ticking = clock.clone();
        let (every, mut stop) = (Duration::from_millis(heartbeat.interval_ms), shutdown.subscribe());
        tokio::spawn(async move {
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        ticking.send_modify(|t| t.beats += 1);
                    }
                    () = crate::shutdown::signalled(&mut stop) => {
                        ticking.send_modify(|t| t.shutdown = true);
                        return;
                    }
                }
            }
        });
        let handshakes = std::sync::Mutex::new(admission::Admission::new(
            limits.handshakes_per_sec,
            limits.handshake_burst,
            Instant::now(),
        ));
        Self(Arc::new(Parts { limits, heartbeat, gate, metrics, shutdown, connections, clock, handshakes }))
    }

    /// Admits one handshake, or says when to come back (see `admission`).
    pub(crate) fn admit(&self) -> Result<(), Duration> {
        crate::sync::lock(&self.0.handshakes).admit(Instant::now())
    }

    /// Whether a handshake would be admitted now, without taking it.
    pub(crate) fn would_admit(&self) -> Result<(), Duration> {
        crate::sync::lock(&self.0.handshakes).would_admit(Instant::now())
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.0.limits
    }

    pub(crate) fn connections(&self) -> &Arc<Connections> {
        &self.0.connections
    }
}
