//! Liveness and readiness in the `application/health+json` format
//! (draft-inadarei-api-health-check): `status` is `pass`, `warn` or `fail`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;

const HEALTH_JSON: &str = "application/health+json";

/// `GET /livez`: the process is up and serving.
pub(crate) async fn livez(State(state): State<AppState>) -> impl IntoResponse {
    let body = json!({
        "status": "pass",
        "version": bridge_core::VERSION,
        "serviceId": "bridge-backend",
        "uptimeMs": u64::try_from(state.uptime().as_millis()).unwrap_or(u64::MAX),
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, HEALTH_JSON), (header::CACHE_CONTROL, "no-store")], body.to_string())
}
