//! `GET /evolution` and `GET /agents`: the WebSocket upgrades. Refused before
//! the upgrade (as JSON, like every HTTP error) for a foreign origin, a demo
//! fault, shutdown or a full node; then the connection belongs to the transport.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::{self, Service};

/// `GET /evolution` (WebSocket).
pub(crate) async fn evolution(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let service = Arc::clone(&state.inner.evolution);
    upgrade(&state, service, &headers, ws)
}

/// `GET /agents` (WebSocket).
pub(crate) async fn agents(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let service = Arc::clone(&state.inner.agents);
    upgrade(&state, service, &headers, ws)
}

fn upgrade<S: Service>(state: &AppState, service: Arc<S>, headers: &HeaderMap, ws: WebSocketUpgrade) -> Response {
    let node = &state.inner;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !node.gate.origin_allowed(origin) {
        node.metrics.rejected("origin");
        let message = format!(
            "origin {} is not allowed to connect; add it to auth.allowed_origins",
            origin.unwrap_or("(unreadable)")
        );
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response();
    }
    if node.config.demo
        && let Some(status) = node.faults.refuse_upgrade(S::SOCKET)
    {
        node.metrics.rejected("demo_fault");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return ApiError::new(code, "demo_fault", format!("demo fault on {}", S::SOCKET)).into_response();
    }
    if node.shutdown.is_triggered() {
        node.metrics.rejected("shutting_down");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
            .retry_after(5)
            .into_response();
    }
    let transport = node.transport.clone();
    let Some(slot) = transport.connections().acquire(S::SOCKET) else {
        node.metrics.rejected("max_connections");
        let max = transport.connections().max();
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!("the server holds its maximum of {max} connections; retry later"),
        )
        .retry_after(5)
        .into_response();
    };
    let limits = transport.limits();
    ws.read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(limits.write_buffer_bytes.max(limits.hard_frame_bytes) * 4)
        .max_message_size(limits.hard_frame_bytes)
        .max_frame_size(limits.hard_frame_bytes)
        .on_upgrade(move |socket| {
            // Split before the connection's future starts, so it does not keep the socket's own slot.
            let (sink, stream) = socket.split();
            ws::serve(sink, stream, service, transport, slot)
        })
}
