//! `GET /status`: what an operator wants at a glance.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::sync::lock;

/// The status document (also used by the dashboard stream).
pub(crate) fn snapshot(state: &AppState) -> Value {
    let inner = &state.inner;
    let hub = &inner.evolution;
    let (history_events, history_bytes) = hub.history_size();
    let (pending, handlers) = {
        let routes = lock(&hub.routes);
        (routes.pending_count(), routes.handler_counts())
    };
    let (online, known, queued) = lock(&inner.agents).counts();
    let (bridges, stale) = lock(&inner.reports).counts();
    let (published, frames_in, frames_out, errors) = inner.metrics.totals();
    let cpu = {
        let mut meter = lock(&inner.cpu);
        (meter.sample(), meter.total().as_secs_f64())
    };
    json!({
        "version": bridge_core::VERSION,
        "uptimeMs": state.uptime().as_millis() as u64,
        "rssBytes": crate::process::rss_bytes(),
        "cpuPercent": cpu.0,
        "cpuSeconds": cpu.1,
        "idleMs": state.idle_for().as_millis() as u64,
        "connections": {
            "evolution": inner.metrics.open_connections("evolution"),
            "agents": inner.metrics.open_connections("agents"),
            "total": inner.connections.load(Ordering::Relaxed),
            "max": state.config().limits.max_connections,
        },
        "evolution": {
            "epoch": hub.epoch(),
            "head": hub.head(),
            "historyEvents": history_events,
            "historyBytes": history_bytes,
            "pendingRequests": pending,
            "handlers": handlers.into_iter().map(|(a, n)| (a, json!(n))).collect::<serde_json::Map<String, Value>>(),
        },
        "auth": { "tokens": inner.gate.tokens_required() },
        "llm": { "upstream": state.config().llm.upstream, "breaker": inner.llm.breaker_state() },
        "demo": state.config().demo,
        "agents": { "online": online, "known": known, "queuedMessages": queued },
        "bridges": { "known": bridges, "stale": stale },
        "counters": {
            "eventsPublished": published,
            "framesReceived": frames_in,
            "framesSent": frames_out,
            "errors": errors,
        },
    })
}

pub(crate) async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(snapshot(&state))
}
