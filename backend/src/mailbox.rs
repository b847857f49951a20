//! What the server's state needs from a live connection, without knowing the
//! transport: who it is, a bounded queue to push frames into, and a way to
//! close it. The WebSocket transport's `Peer` implements it; stores and
//! domains hold `Arc<dyn Mailbox>` to reach connections.

use std::fmt::Debug;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::ServerFrame;

/// A pushed frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue was full: the connection is being closed as a slow consumer.
    Full,
    /// The connection is gone.
    Closed,
}

/// A live connection (see the module docs).
pub(crate) trait Mailbox: Send + Sync + Debug {
    /// Unique among this node's connections for the node's lifetime.
    fn id(&self) -> u64;
    /// Who this is for idempotency keys and agent takeover: token name and client name.
    fn identity(&self) -> String;
    /// Queues a frame without waiting; a full queue closes the connection as a
    /// slow consumer (it reconnects and resumes), so memory stays bounded.
    fn push(&self, frame: Utf8Bytes) -> Result<(), PushError>;
    /// Asks the connection to close with `code` (the first request wins).
    fn close(&self, code: u16, reason: &str);
    /// Cuts the connection without a close frame (the demo's drop).
    fn abort(&self, reason: &str);
    /// A close was asked for.
    fn is_closing(&self) -> bool;

    /// Queues a server frame (see [`Mailbox::push`]).
    fn push_frame(&self, frame: &ServerFrame) -> Result<(), PushError> {
        self.push(crate::wire::encode(frame))
    }
}
