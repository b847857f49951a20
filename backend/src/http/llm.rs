//! The LLM proxy's routes: `POST /api/llm/chat/completions` (OpenAI-compatible)
//! and `GET /api/llm/health`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bridge_core::retry::{Failure, RetryError};
use serde_json::json;

use super::{authorize, body_within};
use crate::config::Role;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/llm/chat/completions`.
pub(crate) async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = authorize(&state, &headers, Role::Llm) {
        return e.into_response();
    }
    let proxy = &state.inner.llm;
    let body = match body_within(body, proxy.config().max_body_bytes) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_err() {
        return ApiError::bad_request("the body must be a JSON object (an OpenAI chat completions request)")
            .into_response();
    }
    match proxy.complete(body).await {
        Ok(up) => {
            let mut resp = (up.status, up.body).into_response();
            if let Some(ct) = up.content_type {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp
        }
        Err(e) => unavailable(&e),
    }
}

fn unavailable(e: &RetryError<Failure>) -> Response {
    let (status, code, retry_after) = match e {
        RetryError::CircuitOpen { retry_in, .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable", retry_in.map_or(5, |d| d.as_secs().max(1)))
        }
        RetryError::DeadlineExceeded { .. } => (StatusCode::GATEWAY_TIMEOUT, "llm_timeout", 5),
        RetryError::Exhausted { last: Failure::Timeout { .. }, .. } => (StatusCode::GATEWAY_TIMEOUT, "llm_timeout", 5),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "llm_unavailable", 5),
    };
    let message = format!("the LLM upstream is not available: {}", e.clone().map_err(|f| f.describe()));
    ApiError::new(status, code, message).retry_after(retry_after).into_response()
}

/// `GET /api/llm/health`: whether the upstream answers (health+json; 503 when not).
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let proxy = &state.inner.llm;
    let (pass, output) = proxy.probe().await;
    let status = if pass { "pass" } else { "fail" };
    let code = if pass { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": status, "output": output, "upstream": proxy.config().upstream, "breaker": proxy.breaker_state()});
    (code, [(header::CONTENT_TYPE, "application/health+json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}
