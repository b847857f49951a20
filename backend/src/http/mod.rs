//! Every HTTP route, and the middleware around them: the guard on
//! state-changing requests, activity tracking, CORS for allowed origins.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};

use crate::auth::{Grant, TokenError};
use crate::config::Role;
use crate::error::ApiError;
use crate::state::AppState;

mod dashboard;
mod demo;
mod guard;
mod health;
mod llm;
mod load;
mod metrics;
mod publish;
mod reports;
mod sockets;
mod static_files;
mod status;

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
        .route("/api/llm/chat/completions", post(llm::chat).layer(DefaultBodyLimit::max(llm_limit)))
        .route("/api/llm/health", get(llm::health));
    if state.config().demo {
        router = router
            .route("/api/demo/echo", get(demo::echo))
            .route("/api/demo/faults", get(demo::get).post(demo::set).delete(demo::clear));
    }
    let router = router
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/status", get(status::status))
        .route("/metrics", get(metrics::metrics))
        .route("/evolution", get(sockets::evolution))
        .route("/agents", get(sockets::agents))
        .route("/api/evolution/publish", post(publish::publish).layer(DefaultBodyLimit::max(256 * 1024)))
        .route("/api/bridges", get(reports::list))
        .route("/api/dashboard/stream", get(dashboard::stream))
        .route("/api/bridges/{id}/report", put(reports::put).layer(DefaultBodyLimit::max(report_limit)))
        .fallback_service(static_files::service(&www));
    let router = if state.config().demo {
        router.layer(axum::middleware::from_fn_with_state(state.clone(), demo::apply))
    } else {
        router
    };
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), load::limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), touch))
        .layer(cors(&state))
        .with_state(state)
}
