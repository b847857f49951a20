//! The agent directory as the domains see it: names held by live connections,
//! offline queues of unacknowledged messages, and send deduplication.
//! Operations that deliver frames push them to the connections' mailboxes, in
//! the order the protocol promises (a register's ack before its queued messages).

use std::fmt::Debug;
use std::sync::Arc;

use bridge_core::protocol::{AgentInfo, DeliveryStatus, FrameError, Id, Json, Register, Send as SendFrame};
use futures_util::future::BoxFuture;

use crate::mailbox::Mailbox;

/// Agents online and known, and messages waiting, for status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AgentCounts {
    pub(crate) online: usize,
    pub(crate) known: usize,
    pub(crate) queued: usize,
}

/// Where the agent directory is kept.
pub(crate) trait AgentStore: Send + Sync + Debug {
    /// `register` on `conn`: takes the name, then pushes the ack (with the number of
    /// queued messages) and the queued messages, oldest first.
    fn register(&self, conn: &Arc<dyn Mailbox>, reg: &Register) -> BoxFuture<'static, Result<(), FrameError>>;
    /// `send` from the agent registered on `sender`: accepted once per (sender, id);
    /// returns how and whether it was a duplicate.
    fn send(
        &self,
        sender: &Arc<dyn Mailbox>,
        msg: SendFrame,
    ) -> BoxFuture<'static, Result<(DeliveryStatus, bool), FrameError>>;
    /// The recipient on `conn` acknowledges message (`from`, `id`).
    fn ack(&self, conn: &Arc<dyn Mailbox>, id: &Id, from: &str) -> BoxFuture<'static, Result<(), FrameError>>;
    /// `broadcast`: every other online agent gets it now; returns how many.
    fn broadcast(
        &self,
        sender: &Arc<dyn Mailbox>,
        id: &Id,
        message_type: &str,
        content: &Json,
    ) -> BoxFuture<'static, Result<u32, FrameError>>;
    /// `discover`: agents, optionally only those with `capability`, sorted by name.
    fn discover(&self, capability: Option<&str>) -> BoxFuture<'static, Result<Vec<AgentInfo>, FrameError>>;
    /// The connection `conn_id` closed.
    fn disconnect(&self, conn_id: u64);
    /// For status.
    fn counts(&self) -> AgentCounts;
}
