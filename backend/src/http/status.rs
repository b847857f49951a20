//! `GET /status`: what an operator wants at a glance.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::sync::lock;

/// The status document (also used by the dashboard stream).
pub(crate) async fn snapshot(state: &AppState) -> Value {
    let node = &state.inner;
    let evolution = node.evolution.status();
    let agents = node.agents.counts();
    let (bridges, stale) = match node.reports.list().await {
        Ok(list) => (json!(list.len()), json!(list.iter().filter(|b| b.stale).count())),
        Err(_) => (Value::Null, Value::Null),
    };
    let store = node.store.status();
    let (published, frames_in, frames_out, errors) = node.metrics.totals();
    let cpu = {
        let mut meter = lock(&node.cpu);
        (meter.sample(), meter.total().as_secs_f64())
    };
    json!({
        "version": bridge_core::VERSION,
        "node": { "id": node.node_id, "store": store.kind },
        "cluster": { "nodes": node.members.list() },
        "store": {
            "kind": store.kind,
            "ready": store.problem.is_none(),
            "problem": store.problem,
            "details": store.details,
        },
        "uptimeMs": state.uptime().as_millis() as u64,
        "rssBytes": crate::process::rss_bytes(),
        "cpuPercent": cpu.0,
        "cpuSeconds": cpu.1,
        "idleMs": state.idle_for().as_millis() as u64,
        "connections": {
            "evolution": node.metrics.open_connections("evolution"),
            "agents": node.metrics.open_connections("agents"),
            "total": node.transport.connections().open(),
            "max": node.transport.connections().max(),
        },
        "evolution": {
            "epoch": &*evolution.epoch,
            "head": evolution.head,
            "historyEvents": evolution.history_events,
            "historyBytes": evolution.history_bytes,
            "pendingRequests": evolution.pending_requests,
            "handlers": evolution.handlers.into_iter().map(|(a, n)| (a, json!(n))).collect::<serde_json::Map<String, Value>>(),
        },
        "auth": { "tokens": node.gate.tokens_required() },
        "llm": { "upstream": node.llm.config().upstream, "breaker": node.llm.breaker_state() },
        "demo": state.config().demo,
        "agents": { "online": agents.online, "known": agents.known, "queuedMessages": agents.queued },
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
    Json(snapshot(&state).await)
}
