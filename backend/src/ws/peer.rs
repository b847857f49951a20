//! A live connection as the rest of the server sees it: an identity and a
//! bounded outbound queue. Domains and stores reach it as a [`Mailbox`].

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ErrorFrame, ServerFrame, close};
use tokio::sync::{mpsc, watch};

use crate::auth::Grant;
use crate::mailbox::{Mailbox, PushError};
use crate::wire::encode;

/// What the writer is asked to do, in order.
///
/// Kept small (a service's rare commands are boxed): every connection's queue
/// allocates its first block of 32 slots up front, so this size is paid by idle
/// connections too.
#[derive(Debug)]
pub(crate) enum Outbound<C> {
    /// Write this frame.
    Frame(Utf8Bytes),
    /// Hand this to the service's writer-side feed (evolution: subscription changes).
    Command(Box<C>),
}

/// A close "code" meaning: cut the connection without a close frame (the demo's drop).
pub(crate) const ABORT: u16 = 0;

/// Why and how a connection should close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// A live connection of a socket whose service takes commands of type `C`.
#[derive(Debug)]
pub(crate) struct Peer<C> {
    /// Unique for the node's lifetime.
    pub(crate) id: u64,
    /// The `client` from hello.
    pub(crate) client: String,
    /// Token grant.
    pub(crate) grant: Grant,
    outbox: mpsc::Sender<Outbound<C>>,
    close: watch::Sender<Option<CloseRequest>>,
    /// Frames queued to this peer, for metrics.
    pub(crate) queued: AtomicU64,
}

impl<C: Send + std::fmt::Debug> Peer<C> {
    pub(crate) fn new(
        id: u64,
        client: String,
        grant: Grant,
        outbox: mpsc::Sender<Outbound<C>>,
    ) -> (Self, watch::Receiver<Option<CloseRequest>>) {
        let (close, close_rx) = watch::channel(None);
        (Self { id, client, grant, outbox, close, queued: AtomicU64::new(0) }, close_rx)
    }

    /// Queues an instruction for the writer, waiting for room: used by the
    /// connection's own reader, so a client that does not read its answers is
    /// slowed down rather than buffered without bound.
    pub(crate) async fn send(&self, item: Outbound<C>) -> Result<(), PushError> {
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
}

impl<C: Send + std::fmt::Debug> Mailbox for Peer<C> {
    fn id(&self) -> u64 {
        self.id
    }

    fn identity(&self) -> String {
        format!("{}/{}", self.grant.name, self.client)
    }

    fn push(&self, frame: Utf8Bytes) -> Result<(), PushError> {
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

    fn close(&self, code: u16, reason: &str) {
        self.close.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(CloseRequest { code, reason: reason.to_owned() });
            true
        });
    }

    fn abort(&self, reason: &str) {
        self.close(ABORT, reason);
    }

    fn is_closing(&self) -> bool {
        self.close.borrow().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_stays_small() {
        // Every connection's queue allocates 32 slots up front, idle or not
        // (`cargo xtask bench` measures the whole idle connection).
        // A command is boxed, so its type does not matter.
        let size = std::mem::size_of::<Outbound<[u8; 1024]>>();
        assert!(size <= 40, "{size} bytes");
    }
}
