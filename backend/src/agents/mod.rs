//! The agents socket: agent-to-agent messages with acks, offline queues and
//! redelivery. Frames are handled here; the directory, queues and send
//! deduplication live in the store ([`AgentStore`]).

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{Ack, Agents as AgentList, ClientFrame, ErrorCode, FrameError, ServerFrame};

use crate::auth::forbidden;
use crate::config::Role;
use crate::demo::Faults;
use crate::mailbox::Mailbox;
use crate::store::agents::{AgentCounts, AgentStore};
use crate::ws::{NoFeed, Peer, Service};

/// The agents domain of one node (see the module docs).
#[derive(Debug)]
pub(crate) struct Agents {
    store: Arc<dyn AgentStore>,
    /// The demo fault switch, in demo mode only.
    faults: Option<Arc<Faults>>,
}

impl Agents {
    pub(crate) fn new(store: Arc<dyn AgentStore>, faults: Option<Arc<Faults>>) -> Self {
        Self { store, faults }
    }

    pub(crate) fn counts(&self) -> AgentCounts {
        self.store.counts()
    }
}

/// The agents socket has no commands for its (absent) feed.
#[derive(Debug)]
pub(crate) enum NoCommand {}

impl Service for Agents {
    type Feed = NoFeed;
    type Command = NoCommand;
    const SOCKET: &'static str = "agents";

    fn open(&self) -> NoFeed {
        NoFeed
    }

    async fn handle(&self, frame: ClientFrame, peer: &Arc<Peer<NoCommand>>) -> Result<(), FrameError> {
        let kind = frame.kind();
        if !peer.grant.allows(Role::Agent) {
            return Err(forbidden(&frame, Role::Agent));
        }
        let conn: Arc<dyn Mailbox> = Arc::clone(peer) as Arc<dyn Mailbox>;
        let reply = match frame {
            ClientFrame::Register(reg) => return self.store.register(&conn, &reg).await,
            ClientFrame::Send(msg) => {
                let id = msg.id.clone();
                let (status, duplicate) = self.store.send(&conn, msg).await?;
                if self.faults.as_ref().is_some_and(|f| f.cut_after_accept("agents")) {
                    conn.abort("demo: accepted, then cut before the ack");
                    return Ok(());
                }
                ServerFrame::Ack(Ack { status: Some(status), duplicate, ..Ack::new(id) })
            }
            ClientFrame::Ack(ack) => return self.store.ack(&conn, &ack.id, &ack.from).await,
            ClientFrame::Broadcast(b) => {
                let n = self.store.broadcast(&conn, &b.id, &b.message_type, &b.content).await?;
                ServerFrame::Ack(Ack { recipients: Some(n), ..Ack::new(b.id) })
            }
            ClientFrame::Discover(d) => {
                let agents = self.store.discover(d.capability.as_deref()).await?;
                ServerFrame::Agents(AgentList { id: d.id, agents })
            }
            other => {
                return Err(FrameError {
                    code: ErrorCode::UnknownType,
                    message: format!("\"{kind}\" is not a frame of the agents socket"),
                    id: other.id().cloned(),
                });
            }
        };
        let _ = peer.send_frame(&reply).await;
        Ok(())
    }

    fn command(&self, _: &mut NoFeed, command: NoCommand) -> Vec<Utf8Bytes> {
        match command {}
    }

    fn closed(&self, peer: &Arc<Peer<NoCommand>>) {
        self.store.disconnect(peer.id);
    }
}
