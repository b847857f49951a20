//! `bridge.call(tool, fn)`: any page function under a tool's policy and breaker.
//!
//! The success path runs in JS (`js/call.js`): a closed breaker admits without a
//! clock read, the first attempt is awaited with no timer, and only a sample of
//! calls is timed. Everything else is here: the full path when the breaker is not
//! closed, and the retries after a failed first attempt (which continue the same
//! run from attempt 2). The first attempt is not timed out — there is no timer on
//! the success path; retries are, by the policy.
//!
//! `fn` is called with `{attempt, timeoutMs}` and may return a value or a
//! promise. A thrown or rejected error is classified: an object with a
//! boolean `retryable` decides for itself; one with a numeric `status` is
//! treated as that HTTP status; `TimeoutError`s are timeouts; anything else
//! is retried as a transient failure.

use bridge_core::retry::Failure;
use bridge_core::retry::driver::AttemptInfo;
use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::resilience::{self, Attempt, Shared};

/// Classifies a value thrown by page code.
pub(crate) fn classify(e: &JsValue) -> Failure {
    let message = crate::js::message_of(e);
    if let Some(r) = crate::js::get(e, "retryable").and_then(|v| v.as_bool()) {
        return Failure::Other { message, retryable: r };
    }
    if let Some(status) = crate::js::get(e, "status").and_then(|v| v.as_f64()) {
        return Failure::Http { status: status as u16, retry_after_ms: None };
    }
    match crate::js::get(e, "name").and_then(|v| v.as_string()).as_deref() {
        Some("TimeoutError") => Failure::Timeout { after_ms: 0 },
        _ => Failure::Other { message, retryable: true },
    }
}

pub(crate) async fn attempt(f: &Function, info: AttemptInfo) -> Result<JsValue, Attempt> {
    let ctx = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&ctx, &"attempt".into(), &JsValue::from(info.number));
    if let Some(t) = info.timeout {
        let _ = js_sys::Reflect::set(&ctx, &"timeoutMs".into(), &JsValue::from(t.as_millis() as f64));
    }
    let value = f.call1(&JsValue::NULL, &ctx).map_err(|e| Attempt::with_cause(classify(&e), e))?;
    match value.dyn_into::<js_sys::Promise>() {
        Ok(p) => JsFuture::from(p).await.map_err(|e| Attempt::with_cause(classify(&e), e)),
        Err(v) => Ok(v),
    }
}

/// Runs `f` as `tool`.
pub(crate) async fn call(shared: Shared, tool: String, f: Function) -> Result<JsValue, JsValue> {
    let (result, _) =
        resilience::run(&shared, &tool, &tool, None, resilience::never(), &mut |info| Box::pin(attempt(&f, info)))
            .await;
    result.map_err(|e| resilience::to_js_error(&tool, &e))
}

/// The tools `call()` has seen, by the index its JS side caches.
#[derive(Debug, Default)]
pub(crate) struct CallTools {
    names: Vec<String>,
}

/// Most distinct tool names `call()` tracks on its fast path; others take the full path.
const MAX_CALL_TOOLS: usize = 256;

impl CallTools {
    /// The index of `name` (registered if new), or -1 when the table is full.
    pub(crate) fn id(&mut self, name: String) -> i32 {
        if let Some(i) = self.names.iter().position(|n| *n == name) {
            return i as i32;
        }
        if self.names.len() >= MAX_CALL_TOOLS {
            return -1;
        }
        self.names.push(name);
        (self.names.len() - 1) as i32
    }

    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

/// Admits a call to tool `tool` if its breaker is closed: the permit's bits, else -1.
pub(crate) fn admit(shared: &Shared, tool: &str) -> f64 {
    let mut r = shared.borrow_mut();
    if r.breakers.get_mut(tool).is_none() && r.breakers.get_or_create(tool, crate::platform::now()).is_err() {
        return -1.0;
    }
    let Some(permit) = r.breakers.get_mut(tool).and_then(|b| b.try_acquire_closed()) else { return -1.0 };
    r.deposit_first(tool, crate::platform::coarse_now());
    permit.to_bits() as f64
}

/// The first attempt succeeded; `latency_ms` when it was timed (else negative).
pub(crate) fn done(shared: &Shared, tool: &str, permit: f64, latency_ms: f64) {
    let now = if latency_ms >= 0.0 { crate::platform::now() } else { crate::platform::coarse_now() };
    let mut r = shared.borrow_mut();
    if let Some(b) = r.breakers.get_mut(tool) {
        b.on_success(bridge_core::breaker::Permit::from_bits(permit as u64), now);
    }
    let latency_us = (latency_ms >= 0.0).then_some((latency_ms * 1000.0) as u64);
    r.metrics.record_first_try_success(tool, latency_us);
}

/// The first attempt failed with `error`: record it, then retry per the policy.
pub(crate) async fn failed(
    shared: Shared,
    tool: String,
    permit: f64,
    error: JsValue,
    f: Function,
    started_ms: f64,
) -> Result<JsValue, JsValue> {
    let now = crate::platform::now();
    let failure = classify(&error);
    let transient = failure.is_transient();
    if let Some(b) = shared.borrow_mut().breakers.get_mut(&tool) {
        let permit = bridge_core::breaker::Permit::from_bits(permit as u64);
        if transient { b.on_failure(permit, now) } else { b.on_success(permit, now) }
    }
    let started = if started_ms >= 0.0 { bridge_core::time::Millis(started_ms as u64) } else { now };
    let started_us = if started_ms >= 0.0 { (started_ms * 1000.0) as u64 } else { now.0.saturating_mul(1000) };
    let first =
        bridge_core::retry::driver::FirstAttempt { error: Attempt::with_cause(failure, error), started, started_us };
    let (result, _) =
        resilience::run_after(&shared, &tool, &tool, None, resilience::never(), Some(first), &mut |info| {
            Box::pin(attempt(&f, info))
        })
        .await;
    result.map_err(|e| resilience::to_js_error(&tool, &e))
}
