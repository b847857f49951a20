//! Bridge reports: `PUT /api/bridges/{id}/report` (idempotent by the report's
//! instance and seq, size-limited, validated against the shared report type)
//! and `GET /api/bridges`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::authorize;
use crate::config::Role;
use crate::error::ApiError;
use crate::reports::ReportError;
use crate::state::AppState;

pub(crate) async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Role::Report)?;
    let reports = &state.inner.reports;
    let body = super::body_within(body, reports.config().max_report_bytes)?;
    match reports.put(&id, &body).await {
        Ok((accepted, seq)) => Ok(Json(json!({ "accepted": accepted, "seq": seq }))),
        Err(ReportError::Invalid(why)) => Err(ApiError::bad_request(why)),
        Err(ReportError::Store(e)) => Err(unavailable(&e)),
    }
}

fn unavailable(e: &crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("reports cannot be reached: {e}"))
        .retry_after(1)
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let bridges = state.inner.reports.list().await.map_err(|e| unavailable(&e))?;
    Ok(Json(json!({
        "staleAfterMs": state.config().reports.stale_after_ms,
        "bridges": bridges,
    })))
}
