//! A bound on HTTP work in progress: at most `limits.max_http_requests`
//! requests are handled at once, node-wide. One more is answered at once with
//! 503 `overloaded` and `Retry-After: 1` instead of queueing, so a flood of
//! requests cannot pile up memory or starve the sockets.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The middleware. The permit is held until the response's head is ready; a
/// streamed body (the dashboard's) does not hold it.
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(_permit) = Arc::clone(&state.inner.http_permits).try_acquire_owned() else {
        state.inner.metrics.http_rejected("overloaded");
        let max = state.config().limits.max_http_requests;
        let message = format!("the server is handling its maximum of {max} requests; retry in a second");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message).retry_after(1).into_response();
    };
    next.run(req).await
}
