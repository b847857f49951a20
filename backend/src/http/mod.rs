//! HTTP routes.

use axum::Router;
use axum::routing::get;

use crate::AppState;

mod health;
mod static_files;

/// Every HTTP route.
pub(crate) fn routes(state: AppState) -> Router {
    let www = state.config().www_dir.clone();
    Router::new().route("/livez", get(health::livez)).with_state(state).fallback_service(static_files::service(&www))
}
