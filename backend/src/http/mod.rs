//! HTTP routes, and the one mapping from errors to JSON responses.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::AppState;
use crate::auth::{Grant, TokenError};
use crate::config::Role;

mod guard;
mod health;
mod metrics;
mod publish;
mod reports;
mod static_files;
mod status;

pub(crate) use status::snapshot as status_snapshot;

/// An HTTP error: a status, a stable code and a message, as JSON
/// `{"code", "message", "retryable"}`. Never carries internals.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// Adds `Retry-After: secs`.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retryable = self.status.is_server_error() || self.status == StatusCode::TOO_MANY_REQUESTS;
        let mut body = json!({"code": self.code, "message": self.message, "retryable": retryable});
        if let Some(s) = self.retry_after {
            body["retry_after_ms"] = json!(s * 1000);
        }
        let mut resp = (self.status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Checks `Authorization: Bearer <token>` for `role` (everything passes when tokens are off).
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap, role: Role) -> Result<Grant, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let grant = state.inner.gate.check_token(token).map_err(|why| {
        let message = match why {
            TokenError::Missing => "this server requires Authorization: Bearer <token>",
            TokenError::Wrong => "the token is not valid",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    })?;
    if grant.allows(role) {
        Ok(grant)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs a token with the \"{}\" role", role.as_str()),
        ))
    }
}

/// The request body, or a JSON `too_large` (413) / `bad_request` error.
pub(crate) fn body_within(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than {limit} bytes"))
        } else {
            ApiError::bad_request(format!("the body could not be read: {r}"))
        }
    })
}

async fn touch(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state.touch();
    next.run(req).await
}

/// CORS for pages on other allowed origins (a dev server on localhost:3000
/// importing a bridge that talks to this backend): the same allowlist as the sockets.
fn cors(state: &AppState) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let s = state.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            s.inner.gate.origin_allowed(origin.to_str().ok())
        }))
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
            axum::http::Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            axum::http::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Every route.
pub(crate) fn routes(state: AppState) -> Router {
    let www = state.config().www_dir.clone();
    let report_limit = state.config().reports.max_report_bytes;
    let llm_limit = state.config().llm.max_body_bytes;
    let mut router = Router::new()
        .route("/api/llm/chat/completions", post(crate::llm::chat).layer(DefaultBodyLimit::max(llm_limit)))
        .route("/api/llm/health", get(crate::llm::health));
    if state.config().demo {
        router = router
            .route("/api/demo/echo", get(crate::demo::echo))
            .route("/api/demo/faults", get(crate::demo::get).post(crate::demo::set).delete(crate::demo::clear));
    }
    let router = router
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/status", get(status::status))
        .route("/metrics", get(metrics::metrics))
        .route("/evolution", get(crate::ws::evolution))
        .route("/agents", get(crate::ws::agents))
        .route("/api/evolution/publish", post(publish::publish).layer(DefaultBodyLimit::max(256 * 1024)))
        .route("/api/bridges", get(reports::list))
        .route("/api/dashboard/stream", get(crate::dashboard::stream))
        .route("/api/bridges/{id}/report", put(reports::put).layer(DefaultBodyLimit::max(report_limit)))
        .fallback_service(static_files::service(&www));
    let router = if state.config().demo {
        router.layer(axum::middleware::from_fn_with_state(state.clone(), crate::demo::apply))
    } else {
        router
    };
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), touch))
        .layer(cors(&state))
        .with_state(state)
}
