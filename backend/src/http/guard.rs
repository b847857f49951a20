//! The guard every HTTP request passes before its handler. Every request must
//! be addressed to one of our names (`Host`; 403 `forbidden_host`), which stops
//! DNS rebinding: a site that points its own name at our address can otherwise
//! read our GET answers as its own. A state-changing request must also come
//! from an allowed browser `Origin` (403 `forbidden_origin`), and its body must
//! be `application/json` (415 `unsupported_media_type`).
//!
//! Why both: a `POST` with `Content-Type: text/plain` (or a typeless `Blob`) is a
//! "simple" request, which a browser sends from any site without a CORS preflight,
//! so CORS alone does not stop it. The origin check refuses foreign pages; the
//! media-type check refuses every simple request, whatever its origin claims.
//! Requests without `Origin` (daemons, curl) pass the first check as before. The
//! guard wraps the whole router, so a route added later is covered without anyone
//! remembering to.

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::state::AppState;

/// Methods that only read: everything else changes state.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether the request carries a body (an empty one, or none, is not checked).
fn has_body(req: &Request) -> bool {
    !HttpBody::is_end_stream(req.body())
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The middleware (see the module docs).
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("(unreadable)"));
    if !state.inner.gate.host_allowed(host) {
        state.inner.metrics.http_rejected("host");
        let message = format!(
            "requests to {} are refused: not a name of this server; add it to auth.allowed_hosts",
            host.unwrap_or("(none)")
        );
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_host", message).into_response();
    }
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().ok());
    if let Some(origin) = origin
        && !state.inner.gate.origin_allowed(Some(origin.unwrap_or("")))
    {
        state.inner.metrics.http_rejected("origin");
        let message = format!(
            "{} {} from origin {} is refused; add the origin to auth.allowed_origins",
            req.method(),
            req.uri().path(),
            origin.unwrap_or("(unreadable)")
        );
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response();
    }
    if has_body(&req) {
        let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(unreadable)"));
        if !is_json(content_type) {
            state.inner.metrics.http_rejected("media_type");
            let message = format!(
                "{} {} takes a JSON body: send Content-Type: application/json (got {})",
                req.method(),
                req.uri().path(),
                content_type.unwrap_or("no Content-Type")
            );
            return ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }
}
