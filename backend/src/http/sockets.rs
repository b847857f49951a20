//! `GET /evolution` and `GET /agents`: the WebSocket upgrades. Refused before
//! the upgrade (as JSON, like every HTTP error) for a foreign origin, a demo
//! fault, shutdown, a node admitting no more handshakes this second (a
//! reconnect storm) or a full node; then the connection belongs to the transport.
//!
//! A plain GET (no upgrade) on the same path is a probe: it answers what an
//! upgrade would get now (426 `upgrade_required` when it would be admitted),
//! without taking a handshake or a slot. A browser cannot see why its
//! WebSocket failed to open; the bridge asks this to learn, and honours its
//! `Retry-After`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;
use crate::ws::{self, Service};

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// `GET /evolution` (WebSocket).
pub(crate) async fn evolution(State(state): State<AppState>, headers: HeaderMap, ws: Upgrade) -> Response {
    let service = Arc::clone(&state.inner.evolution);
    upgrade(&state, service, &headers, ws)
}

/// `GET /agents` (WebSocket).
pub(crate) async fn agents(State(state): State<AppState>, headers: HeaderMap, ws: Upgrade) -> Response {
    let service = Arc::clone(&state.inner.agents);
    upgrade(&state, service, &headers, ws)
}

/// Whether a check takes what it checks (an upgrade) or only looks (a probe).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Upgrade,
    Probe,
}

/// Why this node would refuse a connection to `socket` now, as the HTTP answer.
fn refusal(state: &AppState, socket: &'static str, headers: &HeaderMap, mode: Mode) -> Option<Response> {
    let node = &state.inner;
    let count = |reason| {
        if mode == Mode::Upgrade {
            node.metrics.rejected(reason);
        }
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !node.gate.origin_allowed(origin) {
        count("origin");
        let message = format!(
            "origin {} is not allowed to connect; add it to auth.allowed_origins",
            origin.unwrap_or("(unreadable)")
        );
        return Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response());
    }
    let faulty = || match mode {
        Mode::Upgrade => node.faults.refuse_upgrade(socket),
        Mode::Probe => node.faults.would_refuse_upgrade(socket),
    };
    if node.config.demo
        && let Some(status) = faulty()
    {
        count("demo_fault");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Some(ApiError::new(code, "demo_fault", format!("demo fault on {socket}")).into_response());
    }
    if node.shutdown.is_triggered() {
        count("shutting_down");
        return Some(
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
                .retry_after(5)
                .into_response(),
        );
    }
    let transport = &node.transport;
    let admitted = if mode == Mode::Upgrade { transport.admit() } else { transport.would_admit() };
    if let Err(wait) = admitted {
        count("handshake_rate");
        let per_sec = transport.limits().handshakes_per_sec;
        return Some(
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_handshakes",
                format!(
                    "this node admits {per_sec} new connections per second (limits.handshakes_per_sec); retry after retry_after_ms"
                ),
            )
            .retry_after_ms(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1))
            .into_response(),
        );
    }
    let connections = transport.connections();
    if mode == Mode::Probe && connections.open() >= connections.max() {
        return Some(too_many_connections(connections.max()));
    }
    None
}

fn too_many_connections(max: usize) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        format!("the server holds its maximum of {max} connections; retry later"),
    )
    .retry_after(5)
    .into_response()
}

fn upgrade<S: Service>(state: &AppState, service: Arc<S>, headers: &HeaderMap, ws: Upgrade) -> Response {
    let Ok(ws) = ws else {
        return refusal(state, S::SOCKET, headers, Mode::Probe).unwrap_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                format!("{} is a WebSocket endpoint; a connection would be admitted now", S::SOCKET),
            )
            .into_response()
        });
    };
    if let Some(refused) = refusal(state, S::SOCKET, headers, Mode::Upgrade) {
        return refused;
    }
    let transport = state.inner.transport.clone();
    let Some(slot) = transport.connections().acquire(S::SOCKET) else {
        state.inner.metrics.rejected("max_connections");
        return too_many_connections(transport.connections().max());
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
