//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let node = &state.inner;
    let store = node.store.status();
    node.metrics.node(&node.node_id, store.kind);
    node.metrics.store_up(store.problem.is_none());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], node.metrics.render())
}
