//! `bridge.call(tool, fn)`: any page function under a tool's policy and breaker.
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

async fn attempt(f: &Function, info: AttemptInfo) -> Result<JsValue, Attempt> {
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
