//! The demo fault switch's routes (see `crate::demo`): the middleware that
//! applies HTTP faults, `GET /api/demo/echo`, and `GET`/`POST`/`DELETE /api/demo/faults`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::demo::{Applied, Effect, FaultRequest};
use crate::error::ApiError;
use crate::state::AppState;

/// The fault target a path belongs to.
fn target_of(path: &str) -> Option<&'static str> {
    match path {
        "/api/demo/echo" => Some("echo"),
        "/readyz" => Some("readyz"),
        "/api/evolution/publish" => Some("publish"),
        p if p.starts_with("/api/bridges/") && p.ends_with("/report") => Some("reports"),
        p if p.starts_with("/api/llm/") => Some("llm"),
        _ => None,
    }
}

/// Middleware applying HTTP faults.
pub(crate) async fn apply(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(target) = target_of(req.uri().path()) else { return next.run(req).await };
    match state.inner.faults.take(target) {
        None => next.run(req).await,
        Some(Effect::Status(status, retry_after)) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = (
                code,
                Json(json!({"code": "demo_fault", "message": format!("demo fault on {target}"), "retryable": true})),
            )
                .into_response();
            if let Some(s) = retry_after
                && let Ok(v) = HeaderValue::from_str(&s.to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Some(Effect::Hang(until)) => {
            tokio::time::sleep_until(until).await;
            (
                StatusCode::GATEWAY_TIMEOUT,
                Json(json!({"code": "demo_fault", "message": "demo hang ended", "retryable": true})),
            )
                .into_response()
        }
    }
}

/// `GET /api/demo/echo`.
pub(crate) async fn echo(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"ok": true, "n": state.inner.faults.echo(), "at": crate::clock::unix_ms()}))
}

/// `POST /api/demo/faults`.
pub(crate) async fn set(
    State(state): State<AppState>,
    body: Result<Json<FaultRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let faults = &state.inner.faults;
    let applied = faults.set(&req).map_err(ApiError::bad_request)?;
    let connections = state.inner.transport.connections();
    match applied {
        Applied::Set => Ok(Json(json!({"active": faults.list()}))),
        Applied::DropConnections => {
            connections.abort_all(&req.target, "dropped by the demo fault switch");
            Ok(Json(json!({"active": faults.list()})))
        }
        Applied::DropOnly => {
            let n = connections.abort_all(&req.target, "dropped by the demo fault switch");
            Ok(Json(json!({"dropped": n, "active": faults.list()})))
        }
    }
}

/// `GET /api/demo/faults`.
pub(crate) async fn get(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"active": state.inner.faults.list()}))
}

/// `DELETE /api/demo/faults`.
pub(crate) async fn clear(State(state): State<AppState>) -> Json<Value> {
    state.inner.faults.clear();
    Json(json!({"active": []}))
}
