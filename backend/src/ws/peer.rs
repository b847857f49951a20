//! A live connection as the rest of the server sees it: an identity and a
//! bounded outbound queue. Domains and stores reach it as a [`Mailbox`].

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ErrorFrame, ServerFrame, close};

use super::queue::{Queue, Refused};
use crate::auth::Grant;
use crate::mailbox::{Mailbox, PushError};
use crate::wire::encode;

/// What the writer is asked to do, in order. Kept small (a service's rare
/// commands are boxed): a queue slot is this size.
#[derive(Debug)]
pub(crate) enum Outbound<C> {
    /// Write this frame.
    Frame(Utf8Bytes),
    /// Hand this to the service's writer-side feed (evolution: subscription changes).
    Command(Box<C>),
}

/// A close "code" meaning: cut the connection without a close frame (the demo's drop).
pub(crate) const ABORT: u16 = 0;

/// A live connection of a socket whose service takes commands of type `C`.
#[derive(Debug)]
pub(crate) struct Peer<C> {
    /// Unique for the node's lifetime.
    pub(crate) id: u64,
    /// The `client` from hello.
    pub(crate) client: String,
    /// Token grant.
    pub(crate) grant: Grant,
    /// What the writer is to write, and whether to close.
    pub(crate) queue: Queue<Outbound<C>>,
    /// Frames queued to this peer, for metrics.
    pub(crate) queued: AtomicU64,
}

impl<C: Send + std::fmt::Debug> Peer<C> {
    /// A connection whose queue holds at most `capacity` items.
    pub(crate) fn new(id: u64, client: String, grant: Grant, capacity: usize) -> Self {
        Self { id, client, grant, queue: Queue::new(capacity), queued: AtomicU64::new(0) }
    }

    /// Queues an instruction for the writer, waiting for room: used by the
    /// connection's own reader, so a client that does not read its answers is
    /// slowed down rather than buffered without bound.
    pub(crate) async fn send(&self, item: Outbound<C>) -> Result<(), PushError> {
        self.queue.push(item).await.map_err(|_| PushError::Closed)
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
        match self.queue.try_push(Outbound::Frame(frame)) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(Refused::Full) => {
                self.close(close::SLOW_CONSUMER, "slow consumer: outbound queue full; reconnect and resume");
                Err(PushError::Full)
            }
            Err(Refused::Closed) => Err(PushError::Closed),
        }
    }

    fn close(&self, code: u16, reason: &str) {
        self.queue.close(code, reason);
    }

    fn abort(&self, reason: &str) {
        self.close(ABORT, reason);
    }

    fn is_closing(&self) -> bool {
        self.queue.is_closing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_stays_small() {
        // A command is boxed, so its type does not matter.
        let size = std::mem::size_of::<Outbound<[u8; 1024]>>();
        assert!(size <= 40, "{size} bytes");
    }
}
