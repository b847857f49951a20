//! `POST /api/evolution/publish`: publish without a socket. Body
//! `{"topic", "data"}`; an `Idempotency-Key` header makes retries safe
//! (same key, same event); answers `{"epoch", "seq", "duplicate"}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use bridge_core::protocol::{Id, rules};
use serde_json::{Value, json};

use super::authorize;
use crate::config::Role;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let grant = authorize(&state, &headers, Role::Publish)?;
    let body = super::body_within(body, 256 * 1024)?;
    let body = crate::input::publish_body(&body).map_err(ApiError::bad_request)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => {
            let k = v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            if k.is_empty() || k.len() > rules::MAX_ID_BYTES {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {} bytes",
                    rules::MAX_ID_BYTES
                )));
            }
            Some(Id::Str(k.to_owned()))
        }
        // Without a key every POST is a new event.
        None => None,
    };
    let publisher = format!("http:{}", grant.name);
    let published = state.inner.evolution.publish(&publisher, key, &body.topic, &body.data).await.map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("the event was not published: {e}"))
            .retry_after(1)
    })?;
    Ok(Json(json!({
        "epoch": published.position.epoch,
        "seq": published.position.seq,
        "duplicate": published.duplicate,
    })))
}
