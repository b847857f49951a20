//! WebSocket plumbing shared by both sockets: the upgrade (origin check,
//! connection limit, buffer sizes), the per-connection reader and writer,
//! and the [`Peer`] handle the hubs use to reach a connection.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bridge_core::protocol::{ClientFrame, ErrorCode, FrameError};

use crate::AppState;
use crate::config::Role;
use crate::http::ApiError;

mod bucket;
mod connection;
mod peer;
mod writer;

pub(crate) use connection::frame_id;
pub(crate) use peer::{ABORT, Outbound, Peer, SocketKind, Subscription, encode};

/// `GET /evolution` (WebSocket).
pub(crate) async fn evolution(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, SocketKind::Evolution, &headers, ws)
}

/// `GET /agents` (WebSocket).
pub(crate) async fn agents(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    upgrade(state, SocketKind::Agents, &headers, ws)
}

/// A counted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    state: AppState,
    kind: SocketKind,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.state.inner.connections.fetch_sub(1, Ordering::AcqRel);
        self.state.inner.metrics.connection_closed(self.kind.as_str());
        self.state.touch();
    }
}

/// Takes a connection slot, unless the server is full.
fn acquire(state: &AppState, kind: SocketKind) -> Option<ConnectionSlot> {
    let max = state.config().limits.max_connections;
    let counter: &AtomicUsize = &state.inner.connections;
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
    state.inner.metrics.connection_opened(kind.as_str());
    state.touch();
    Some(ConnectionSlot { state: state.clone(), kind })
}

fn upgrade(state: AppState, kind: SocketKind, headers: &HeaderMap, ws: WebSocketUpgrade) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !state.inner.gate.origin_allowed(origin) {
        state.inner.metrics.rejected("origin");
        let message = format!(
            "origin {} is not allowed to connect; add it to auth.allowed_origins",
            origin.unwrap_or("(unreadable)")
        );
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response();
    }
    if state.config().demo
        && let Some(status) = state.inner.faults.refuse_upgrade(kind.as_str())
    {
        state.inner.metrics.rejected("demo_fault");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return ApiError::new(code, "demo_fault", format!("demo fault on {}", kind.as_str())).into_response();
    }
    if state.inner.shutdown.is_triggered() {
        state.inner.metrics.rejected("shutting_down");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
            .retry_after(5)
            .into_response();
    }
    let Some(slot) = acquire(&state, kind) else {
        state.inner.metrics.rejected("max_connections");
        let max = state.config().limits.max_connections;
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!("the server holds its maximum of {max} connections; retry later"),
        )
        .retry_after(5)
        .into_response();
    };
    let limits = &state.config().limits;
    ws.read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(limits.write_buffer_bytes.max(limits.hard_frame_bytes) * 4)
        .max_message_size(limits.hard_frame_bytes)
        .max_frame_size(limits.hard_frame_bytes)
        .on_upgrade(move |socket| connection::serve(socket, state, kind, slot))
}

/// The `forbidden` error for a frame whose token lacks `role`.
pub(crate) fn forbidden(frame: &ClientFrame, role: Role) -> FrameError {
    FrameError {
        code: ErrorCode::Forbidden,
        message: format!("\"{}\" needs a token with the \"{}\" role", frame.kind(), role.as_str()),
        id: frame_id(frame),
    }
}
