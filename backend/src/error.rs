//! The HTTP error: a status, a stable code and a message, as JSON
//! `{"code", "message", "retryable"}`. The one mapping from errors to HTTP
//! responses; it never carries internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Milliseconds: the body says them exactly, `Retry-After` rounds up to seconds.
    retry_after_ms: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_ms: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// Adds `Retry-After: secs`.
    pub(crate) fn retry_after(self, secs: u64) -> Self {
        self.retry_after_ms(secs * 1000)
    }

    /// Adds `retry_after_ms` to the body and `Retry-After` (whole seconds, rounded up, at least 1).
    pub(crate) fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retryable = self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS;
        let mut body = json!({"code": self.code, "message": self.message, "retryable": retryable});
        if let Some(ms) = self.retry_after_ms {
            body["retry_after_ms"] = json!(ms);
        }
        let mut resp = (self.status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
        if let Some(ms) = self.retry_after_ms
            && let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
