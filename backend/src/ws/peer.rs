//! A live connection as the rest of the server sees it: an identity and a
//! bounded outbound queue. Hubs hold `Arc<Peer>`s to reach connections.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ErrorFrame, Id, Position, ServerFrame, close};
use tokio::sync::{mpsc, watch};

use crate::auth::Grant;

/// Which socket a connection is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SocketKind {
    Evolution,
    Agents,
}

impl SocketKind {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            SocketKind::Evolution => "evolution",
            SocketKind::Agents => "agents",
        }
    }
}

/// What the writer is asked to do, in order.
///
/// Kept small (the rare subscription changes are boxed): every connection's queue
/// allocates its first block of 32 slots up front, so this size is paid by idle
/// connections too.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this frame.
    Frame(Utf8Bytes),
    /// Evolution: add subscription patterns (the writer owns the event cursor).
    Subscribe(Box<Subscription>),
    /// Evolution: remove subscription patterns.
    Unsubscribe(Box<Subscription>),
}

/// A subscription change for the writer: the request's id, its patterns and, for
/// a subscribe, where to resume from.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) id: Id,
    pub(crate) patterns: Vec<String>,
    pub(crate) since: Option<Position>,
}

/// A close "code" meaning: cut the connection without a close frame (the demo's drop).
pub(crate) const ABORT: u16 = 0;

/// Why and how a connection should close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// A pushed frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue was full: the connection is being closed as a slow consumer.
    Full,
    /// The connection is gone.
    Closed,
}

/// A live connection.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Unique for the server's lifetime.
    pub(crate) id: u64,
    pub(crate) kind: SocketKind,
    /// The `client` from hello.
    pub(crate) client: String,
    /// Token grant.
    pub(crate) grant: Grant,
    outbox: mpsc::Sender<Outbound>,
    close: watch::Sender<Option<CloseRequest>>,
    /// Frames queued to this peer, for metrics.
    pub(crate) queued: AtomicU64,
}

impl Peer {
    pub(crate) fn new(
        id: u64,
        kind: SocketKind,
        client: String,
        grant: Grant,
        outbox: mpsc::Sender<Outbound>,
    ) -> (Self, watch::Receiver<Option<CloseRequest>>) {
        let (close, close_rx) = watch::channel(None);
        (Self { id, kind, client, grant, outbox, close, queued: AtomicU64::new(0) }, close_rx)
    }

    /// Who this is for idempotency keys and agent takeover: token name and client name.
    pub(crate) fn identity(&self) -> String {
        format!("{}/{}", self.grant.name, self.client)
    }

    /// Queues a frame without waiting. A full queue closes the connection as a
    /// slow consumer (it will reconnect and resume): memory stays bounded.
    pub(crate) fn push(&self, frame: Utf8Bytes) -> Result<(), PushError> {
        match self.outbox.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(close::SLOW_CONSUMER, "slow consumer: outbound queue full; reconnect and resume");
                Err(PushError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Closed),
        }
    }

    /// Queues a server frame (see [`Peer::push`]).
    pub(crate) fn push_frame(&self, frame: &ServerFrame) -> Result<(), PushError> {
        self.push(encode(frame))
    }

    /// Queues an instruction for the writer, waiting for room: used by the
    /// connection's own reader, so a client that does not read its answers is
    /// slowed down rather than buffered without bound.
    pub(crate) async fn send(&self, item: Outbound) -> Result<(), PushError> {
        self.outbox.send(item).await.map_err(|_| PushError::Closed)
    }

    /// Queues a server frame, waiting for room.
    pub(crate) async fn send_frame(&self, frame: &ServerFrame) -> Result<(), PushError> {
        self.send(Outbound::Frame(encode(frame))).await
    }

    /// Queues an error frame, waiting for room.
    pub(crate) async fn send_error(&self, error: ErrorFrame) -> Result<(), PushError> {
        self.send_frame(&ServerFrame::Error(error)).await
    }

    /// Asks the connection to close with `code` (the first request wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.close.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(CloseRequest { code, reason: reason.to_owned() });
            true
        });
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.close.borrow().is_some()
    }
}

/// Serializes a frame for the wire.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_stays_small() {
        // Every connection's queue allocates 32 slots up front, idle or not
        // (`cargo xtask bench` measures the whole idle connection).
        assert!(std::mem::size_of::<Outbound>() <= 40, "{} bytes", std::mem::size_of::<Outbound>());
    }
}
