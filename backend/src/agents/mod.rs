//! The agents socket: agent-to-agent messages with acks, offline queues and
//! redelivery. Frames are handled here; state lives in [`Directory`].

use std::sync::Arc;

use bridge_core::protocol::{Ack, Agents, ClientFrame, ErrorCode, FrameError, ServerFrame};

use crate::AppState;
use crate::config::Role;
use crate::sync::lock;
use crate::ws::Peer;

mod directory;

pub(crate) use directory::Directory;

/// Handles one frame from an agents connection.
pub(crate) async fn handle(frame: ClientFrame, peer: &Arc<Peer>, state: &AppState) -> Result<(), FrameError> {
    let kind = frame.kind();
    if !peer.grant.allows(Role::Agent) {
        return Err(crate::ws::forbidden(&frame, Role::Agent));
    }
    let dir = &state.inner.agents;
    let reply = match frame {
        ClientFrame::Register(reg) => {
            // Ack and queued messages are pushed under the lock, so nothing sent
            // meanwhile can overtake them.
            let mut dir = lock(dir);
            let queued = dir.register(peer, &reg)?;
            let _ = peer.push_frame(&ServerFrame::Ack(Ack { queued: Some(queued.unwrap_or(0)), ..Ack::new(reg.id) }));
            if queued.is_some() {
                dir.deliver_queued(&reg.agent);
            }
            return Ok(());
        }
        ClientFrame::Send(msg) => {
            let id = msg.id.clone();
            let (status, duplicate) = lock(dir).send(peer, msg)?;
            if state.config().demo && state.inner.faults.cut_after_accept("agents") {
                peer.close(crate::ws::ABORT, "demo: accepted, then cut before the ack");
                return Ok(());
            }
            ServerFrame::Ack(Ack { status: Some(status), duplicate, ..Ack::new(id) })
        }
        ClientFrame::Ack(ack) => {
            lock(dir).ack(peer, &ack.id, &ack.from)?;
            return Ok(());
        }
        ClientFrame::Broadcast(b) => {
            let n = lock(dir).broadcast(peer, &b.id, &b.message_type, &b.content)?;
            ServerFrame::Ack(Ack { recipients: Some(n), ..Ack::new(b.id) })
        }
        ClientFrame::Discover(d) => {
            let agents = lock(dir).discover(d.capability.as_deref());
            ServerFrame::Agents(Agents { id: d.id, agents })
        }
        other => {
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: format!("\"{kind}\" is not a frame of the agents socket"),
                id: crate::ws::frame_id(&other),
            });
        }
    };
    let _ = peer.send_frame(&reply).await;
    Ok(())
}

/// The connection `peer_id` closed.
pub(crate) fn disconnect(state: &AppState, peer_id: u64) {
    lock(&state.inner.agents).disconnect(peer_id);
}
