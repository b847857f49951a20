//! Liveness and readiness in the `application/health+json` format
//! (draft-inadarei-api-health-check): `status` is `pass`, `warn` or `fail`;
//! 200 for pass and warn, 503 for fail.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::AppState;

const HEALTH_JSON: &str = "application/health+json";

fn respond(body: Value) -> impl IntoResponse {
    let code = if body["status"] == "fail" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, [(header::CONTENT_TYPE, HEALTH_JSON), (header::CACHE_CONTROL, "no-store")], body.to_string())
}

/// `GET /livez`: the process is up and serving.
pub(crate) async fn livez(State(state): State<AppState>) -> impl IntoResponse {
    respond(json!({
        "status": "pass",
        "version": bridge_core::VERSION,
        "serviceId": "bridge-backend",
        "uptimeMs": state.uptime().as_millis() as u64,
    }))
}

/// `GET /readyz`: ready to take connections: not shutting down, below the
/// connection limit, the store reachable, and (a warning only) the wasm package is built.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let max = state.config().limits.max_connections;
    let open = state.inner.transport.connections().open();
    let utilization = open as f64 / max as f64;
    let conn_status = if utilization >= 1.0 {
        "fail"
    } else if utilization >= 0.9 {
        "warn"
    } else {
        "pass"
    };
    let shutting_down = state.inner.shutdown.is_triggered();
    let pkg = state.config().www_dir.join("pkg/bridge_wasm_bg.wasm");
    let pkg_ok = pkg.is_file();
    let store = state.inner.store.status();
    let store_status = if store.problem.is_some() { "fail" } else { "pass" };
    let mut checks = json!({
        "connections:utilization": [{
            "componentType": "system", "observedValue": utilization, "observedUnit": "ratio", "status": conn_status,
        }],
        "server:shutdown": [{ "status": if shutting_down { "fail" } else { "pass" } }],
        "store:reachable": [{ "componentType": "datastore", "componentId": store.kind, "status": store_status }],
        "wasm:package": [{ "status": if pkg_ok { "pass" } else { "warn" } }],
    });
    if let Some(problem) = &store.problem {
        checks["store:reachable"][0]["output"] = json!(problem);
    }
    if !pkg_ok {
        checks["wasm:package"][0]["output"] =
            json!(format!("{} is missing: the demo page cannot load the bridge (run cargo xtask run)", pkg.display()));
    }
    let statuses =
        [conn_status, if shutting_down { "fail" } else { "pass" }, store_status, if pkg_ok { "pass" } else { "warn" }];
    let status = if statuses.contains(&"fail") {
        "fail"
    } else if statuses.contains(&"warn") {
        "warn"
    } else {
        "pass"
    };
    respond(json!({
        "status": status,
        "version": bridge_core::VERSION,
        "serviceId": "bridge-backend",
        "nodeId": state.inner.node_id,
        "checks": checks,
    }))
}
