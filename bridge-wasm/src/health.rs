//! Health polling and reporting.
//!
//! Every `healthIntervalMs` (10 s) the bridge checks the backend's `/readyz`,
//! both sockets, WebMCP (when tools were registered) and the LLM endpoint
//! (when one was configured); changes, and only changes, become `health`
//! events. The reporter sends the whole state to `PUT /api/bridges/{id}/report`
//! at least every `reportIntervalMs`, and soon after anything changes, under
//! its own policy and breaker (`reportState`); reports are idempotent by
//! (instance, seq).

use std::time::Duration;

use bridge_core::health::{CheckResult, components};
use bridge_core::report::SocketState;
use bridge_core::retry::Failure;
use bridge_core::retry::driver::{Either, race};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use crate::bridge::{Bridge, REPORT_TRANSITIONS};
use crate::platform;
use crate::resilience::{self, Attempt};
use crate::socket::Socket;

/// The name of the reporter's policy, breaker and metrics.
pub(crate) const REPORT_TOOL: &str = "reportState";
/// A probe that takes longer than this fails.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Changes arriving together are reported together.
const REPORT_COALESCE: Duration = Duration::from_millis(100);

/// A plain GET with a timeout: probes bypass breakers and retries (they measure, they do not protect).
async fn probe(url: &str) -> Result<(Response, f64), String> {
    let window = web_sys::window().ok_or("no window")?;
    let controller = web_sys::AbortController::new().map_err(|e| crate::js::message_of(&e))?;
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    init.set_cache(web_sys::RequestCache::NoStore);
    let started = platform::now_f64();
    let fetch = JsFuture::from(window.fetch_with_str_and_init(url, &init));
    match race(fetch, platform::sleep(PROBE_TIMEOUT)).await {
        Either::Left(Ok(r)) => {
            let r: Response = r.dyn_into().map_err(|_| "not a Response")?;
            Ok((r, platform::now_f64() - started))
        }
        Either::Left(Err(e)) => Err(crate::js::message_of(&e)),
        Either::Right(()) => {
            controller.abort();
            Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis()))
        }
    }
}

async fn check_backend(bridge: &Bridge) -> (CheckResult, Option<f64>) {
    match probe(&format!("{}/readyz", bridge.backends.url())).await {
        Ok((r, ms)) => {
            let body = match r.json() {
                Ok(p) => JsFuture::from(p).await.ok(),
                Err(_) => None,
            };
            let status = body.as_ref().and_then(|b| crate::js::get(b, "status")).and_then(|s| s.as_string());
            let result = match (r.status(), status.as_deref()) {
                (200, Some("pass")) => CheckResult::Pass,
                (200, _) => CheckResult::Warn(format!(
                    "readyz: {}",
                    body.as_ref().map_or_else(String::new, |b| crate::js::to_json(b).unwrap_or_default())
                )),
                (code, _) => CheckResult::Fail(format!("readyz answered HTTP {code}")),
            };
            (result, Some(ms))
        }
        Err(e) => (CheckResult::Fail(format!("backend unreachable: {e}")), None),
    }
}

/// A socket's check; `None` while it makes its first connection without a failure yet
/// (it is not known to be anything yet: no spurious "degraded" at every page load).
fn check_socket(socket: &Socket) -> Option<CheckResult> {
    let snap = socket.snapshot();
    Some(match snap.state {
        SocketState::Open => CheckResult::Pass,
        SocketState::Connecting if snap.last_error.is_none() => return None,
        SocketState::Stopped => CheckResult::Fail("stopped".into()),
        state => CheckResult::Fail(format!(
            "{}: {}",
            if state == SocketState::Connecting { "connecting" } else { "reconnecting" },
            snap.last_error.unwrap_or_else(|| "not connected yet".into())
        )),
    })
}

async fn check_llm(bridge: &Bridge) -> (CheckResult, Option<f64>) {
    // The backend proxy reports its upstream; a direct endpoint is probed as is.
    let endpoint = bridge.backends.follow(bridge.config.llm_endpoint.as_deref().unwrap_or_default());
    let node = bridge.backends.url();
    let url = if endpoint == format!("{node}/api/llm/chat/completions") {
        format!("{node}/api/llm/health")
    } else {
        endpoint
    };
    match probe(&url).await {
        Ok((r, ms)) if r.status() < 500 => (CheckResult::Pass, Some(ms)),
        Ok((r, ms)) => (CheckResult::Fail(format!("LLM endpoint answered HTTP {}", r.status())), Some(ms)),
        Err(e) => (CheckResult::Fail(format!("LLM endpoint unreachable: {e}")), None),
    }
}

/// Records one check; emits `health` when something changed.
fn record(bridge: &Bridge, component: &str, result: CheckResult, latency: Option<f64>) {
    let change = bridge.health.borrow_mut().record(component, result, latency, platform::now());
    if let Ok(Some(change)) = change {
        bridge.changed.notify();
        if let Ok(detail) = crate::js::to_js(&change) {
            bridge.events.emit("health", &detail);
        }
    }
}

/// Checks everything once.
pub(crate) async fn check_all(bridge: &Bridge) {
    // Offline, the probes would only fail: say why instead. Degraded, not unhealthy: the
    // backend is not known to be down, and the sockets say for themselves whether they work.
    let online = crate::lifecycle::online();
    let (backend, ms) =
        if online { check_backend(bridge).await } else { (CheckResult::Warn(crate::lifecycle::OFFLINE.into()), None) };
    record(bridge, components::BACKEND, backend, ms);
    for (name, socket) in
        [(components::EVOLUTION_SOCKET, &bridge.evolution), (components::AGENT_SOCKET, &bridge.agents)]
    {
        if let Some(result) = socket.as_ref().and_then(|s| check_socket(s)) {
            record(bridge, name, result, None);
        }
    }
    if bridge.webmcp.borrow().requested() {
        let result = if crate::model_context::model_context().is_some() {
            CheckResult::Pass
        } else {
            CheckResult::Warn(
                "no model context: neither document.modelContext nor navigator.modelContext exists \
                 (load a WebMCP polyfill such as @mcp-b/webmcp-polyfill before registering tools)"
                    .into(),
            )
        };
        record(bridge, components::WEBMCP, result, None);
    }
    if bridge.config.llm_endpoint.is_some() && online {
        let (llm, ms) = check_llm(bridge).await;
        record(bridge, components::LLM, llm, ms);
    }
}

/// Polls health every interval until the bridge stops.
pub(crate) async fn poll(bridge: Bridge) {
    let every = Duration::from_millis(bridge.config.health_interval_ms);
    loop {
        check_all(&bridge).await;
        // Back online, resumed or restored: check now.
        crate::lifecycle::pause(every, &bridge.health_page).await;
    }
}

/// Sends a report now; with `until_offline`, gives up when the browser goes offline.
pub(crate) async fn send_report(bridge: &Bridge, until_offline: bool) -> Result<(), String> {
    bridge.report_seq.set(bridge.report_seq.get() + 1);
    let report = bridge.report(REPORT_TRANSITIONS);
    let body = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    let token = bridge.config.token.clone();
    let mut attempt = |_| -> resilience::Attempting<'_, ()> {
        // To the node current at each attempt: the report follows a failover.
        let url = format!("{}/api/bridges/{}/report", bridge.backends.url(), bridge.config.bridge_id);
        let (body, token) = (body.clone(), token.clone());
        Box::pin(async move {
            let init = web_sys::RequestInit::new();
            init.set_method("PUT");
            init.set_body(&JsValue::from_str(&body));
            let headers = web_sys::Headers::new()
                .map_err(|e| Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e))?;
            let _ = headers.set("content-type", "application/json");
            if let Some(t) = &token {
                let _ = headers.set("authorization", &format!("Bearer {t}"));
            }
            init.set_headers(&headers);
            let window =
                web_sys::window().ok_or_else(|| Attempt::new(Failure::Validation { message: "no window".into() }))?;
            let r = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
                .await
                .map_err(|e| Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e))?;
            let r: Response = r.unchecked_into();
            if r.ok() {
                Ok(())
            } else {
                let retry_after = r.headers().get("retry-after").ok().flatten();
                Err(Attempt::new(Failure::http(r.status(), retry_after.as_deref(), platform::unix_ms())))
            }
        })
    };
    let cancel: resilience::Cancel<'_> = if until_offline {
        Box::pin(crate::lifecycle::until_offline(&bridge.report_page))
    } else {
        resilience::never()
    };
    let (result, _) = resilience::run(&bridge.resilience, REPORT_TOOL, REPORT_TOOL, None, cancel, &mut attempt).await;
    match result {
        Ok(()) => {
            bridge.reports_sent.set(bridge.reports_sent.get() + 1);
            Ok(())
        }
        Err(e) => Err(resilience::describe(&e)),
    }
}

/// Reports at every interval and soon after every change, until the bridge stops (a
/// leading tab also tells the others its state then, even with `report: false`).
pub(crate) async fn report(bridge: Bridge) {
    let every = Duration::from_millis(bridge.config.report_interval_ms);
    loop {
        // Offline, reports wait (the dashboard sees this bridge go stale, which is the truth).
        crate::lifecycle::until_online(&bridge.report_page).await;
        // Tabs sharing a connection: the leader reports for them all, and tells them how it is.
        if bridge.share.is_leader() {
            bridge.announce().await;
        }
        if bridge.config.report
            && !bridge.share.is_follower()
            && let Err(e) = send_report(&bridge, true).await
        {
            crate::js::warn("sending the state report failed", &JsValue::from(e));
        }
        if let Either::Left(()) = race(bridge.changed.notified(), platform::sleep(every)).await {
            platform::sleep(REPORT_COALESCE).await;
        }
    }
}
