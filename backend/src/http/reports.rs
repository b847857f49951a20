//! Bridge reports: `PUT /api/bridges/{id}/report` (idempotent by the report's
//! instance and seq, size-limited, validated against the shared report type)
//! and `GET /api/bridges`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bridge_core::protocol::rules;
use bridge_core::report::BridgeReport;
use serde_json::{Value, json};

use super::{ApiError, authorize};
use crate::AppState;
use crate::config::Role;
use crate::sync::lock;

pub(crate) async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Report)?;
    let body = super::body_within(body, state.config().reports.max_report_bytes)?;
    rules::check_agent(&id).map_err(|m| ApiError::bad_request(m.replace("agent name", "bridge id")))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the report is not valid JSON: {e}")))?;
    let report: BridgeReport = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("the report does not match the report format: {e}")))?;
    if report.bridge_id != id {
        return Err(ApiError::bad_request(format!(
            "the report's bridgeId \"{}\" does not match the URL's \"{id}\"",
            report.bridge_id
        )));
    }
    if report.instance.is_empty() || report.instance.len() > rules::MAX_ID_BYTES {
        return Err(ApiError::bad_request(format!("instance must be 1 to {} bytes", rules::MAX_ID_BYTES)));
    }
    let accepted =
        lock(&state.inner.reports).put(&id, &report.instance, report.seq, value, crate::evolution::unix_ms());
    if accepted == crate::reports::Accepted::Stored {
        state.inner.metrics.report();
    }
    Ok(Json(json!({ "accepted": accepted, "seq": report.seq })))
}

pub(crate) async fn list(State(state): State<AppState>) -> Json<Value> {
    let bridges = lock(&state.inner.reports).list();
    Json(json!({
        "staleAfterMs": state.config().reports.stale_after_ms,
        "bridges": bridges,
    }))
}
