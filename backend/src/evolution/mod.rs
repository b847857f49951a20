//! The evolution socket: an event stream daemons publish to and pages
//! subscribe to (with resume), plus request/response to handler daemons.
//!
//! - [`history`]: the bounded event log subscribers read from.
//! - [`hub`]: epoch, publish with dedup, the head signal.
//! - [`requests`]: routing requests to handlers and answers back.
//! - [`feed`]: a connection's subscriptions and cursor (owned by its writer).

use std::sync::Arc;

use bridge_core::protocol::{Ack, ClientFrame, ErrorCode, FrameError, ServerFrame};

use crate::AppState;
use crate::config::Role;
use crate::sync::lock;
use crate::ws::{Outbound, Peer, Subscription};

pub(crate) mod feed;
pub(crate) mod history;
mod hub;
mod requests;

pub(crate) use hub::{EvolutionHub, unix_ms};
pub(crate) use requests::Routed;

/// Handles one frame from an evolution connection.
pub(crate) async fn handle(frame: ClientFrame, peer: &Arc<Peer>, state: &AppState) -> Result<(), FrameError> {
    let hub = &state.inner.evolution;
    let needs = |role: Role| if peer.grant.allows(role) { Ok(()) } else { Err(crate::ws::forbidden(&frame, role)) };
    match &frame {
        ClientFrame::Subscribe(_) | ClientFrame::Unsubscribe(_) => needs(Role::Subscribe)?,
        ClientFrame::Publish(_) | ClientFrame::Request(_) => needs(Role::Publish)?,
        ClientFrame::Handle(_) | ClientFrame::Response(_) => needs(Role::Handle)?,
        _ => {}
    }
    let kind = frame.kind();
    match frame {
        ClientFrame::Subscribe(s) => {
            let _ = peer
                .send(Outbound::Subscribe(Box::new(Subscription { id: s.id, patterns: s.topics, since: s.since })))
                .await;
        }
        ClientFrame::Unsubscribe(u) => {
            let _ = peer
                .send(Outbound::Unsubscribe(Box::new(Subscription { id: u.id, patterns: u.topics, since: None })))
                .await;
        }
        ClientFrame::Publish(p) => {
            let published = hub.publish(&peer.identity(), &p.id, &p.topic, &p.data);
            state.inner.metrics.published(published.duplicate);
            if state.config().demo && state.inner.faults.cut_after_accept("evolution") {
                peer.close(crate::ws::ABORT, "demo: accepted, then cut before the ack");
                return Ok(());
            }
            let ack = Ack { position: Some(published.position), duplicate: published.duplicate, ..Ack::new(p.id) };
            let _ = peer.send_frame(&ServerFrame::Ack(ack)).await;
        }
        ClientFrame::Handle(h) => {
            {
                let mut routes = lock(&hub.routes);
                if routes.actions_of(peer.id) + h.actions.len() > hub.config.max_actions {
                    return Err(FrameError {
                        code: ErrorCode::LimitExceeded,
                        message: format!("a connection may handle at most {} actions", hub.config.max_actions),
                        id: Some(h.id),
                    });
                }
                routes.handle(peer, &h.actions);
            }
            let _ = peer.send_frame(&ServerFrame::Ack(Ack::new(h.id))).await;
        }
        ClientFrame::Request(r) => {
            let routed = lock(&hub.routes).request(peer, &r)?;
            if let Routed::Sent { server_id, timeout } = routed {
                let state2 = state.clone();
                let timer = tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    lock(&state2.inner.evolution.routes).expire(server_id);
                });
                lock(&hub.routes).set_timer(server_id, timer.abort_handle());
            }
        }
        ClientFrame::Response(r) => lock(&hub.routes).respond(peer, r)?,
        other => {
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: format!("\"{kind}\" is not a frame of the evolution socket"),
                id: crate::ws::frame_id(&other),
            });
        }
    }
    Ok(())
}

/// The connection `peer_id` closed.
pub(crate) fn disconnect(state: &AppState, peer_id: u64) {
    lock(&state.inner.evolution.routes).disconnect(peer_id);
}
