//! `bridge.fetch(url, init, options)`: any request under a tool's policy and a
//! breaker per origin.
//!
//! Each attempt gets its own `AbortController`, aborted when the attempt is
//! abandoned (its timeout, the overall deadline, or the caller's own signal),
//! so no request is left running behind the caller's back. HTTP 408, 425, 429
//! and 5xx are retried (honouring `Retry-After`); other statuses resolve with
//! the `Response` as plain `fetch` does. Request bodies must be re-sendable
//! (strings, `Blob`, `FormData`, `URLSearchParams`): a stream can be sent once.

use bridge_core::retry::Failure;
use bridge_core::retry::driver::AttemptInfo;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Response};

use std::rc::Rc;

use crate::backends::Backends;
use crate::platform::{self, Signal};
use crate::resilience::{self, Attempt, Shared};

/// What the caller passed as `options`.
#[derive(Debug, Default)]
pub(crate) struct FetchOptions {
    /// Policy and metrics name (default `fetch`).
    pub(crate) tool: Option<String>,
    /// The caller's own signal: aborting it cancels every attempt at once.
    pub(crate) signal: Option<AbortSignal>,
}

impl FetchOptions {
    pub(crate) fn from_js(v: &JsValue) -> Self {
        Self {
            tool: crate::js::get(v, "tool").and_then(|t| t.as_string()),
            signal: crate::js::get(v, "signal").and_then(|s| s.dyn_into::<AbortSignal>().ok()),
        }
    }
}

/// Aborts an attempt's request unless disarmed (after a response arrived, its body
/// may still be streaming to the caller: do not abort that).
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.abort();
        }
    }
}

/// Listens for the caller's signal; removes its listener on drop.
struct CallerAbort {
    signal: AbortSignal,
    listener: Closure<dyn FnMut()>,
    fired: Signal,
}

impl CallerAbort {
    fn new(signal: AbortSignal) -> Self {
        let fired = Signal::default();
        let f = fired.clone();
        let listener = Closure::<dyn FnMut()>::new(move || f.notify());
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        if signal.aborted() {
            fired.notify();
        }
        Self { signal, listener, fired }
    }
}

impl Drop for CallerAbort {
    fn drop(&mut self) {
        let _ = self.signal.remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}

/// The origin of `url` resolved against the page (for the per-origin breaker).
pub(crate) fn origin_of(url: &str) -> String {
    let base = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    web_sys::Url::new_with_base(url, &base).map(|u| u.origin()).unwrap_or_else(|_| url.to_owned())
}

/// One attempt.
async fn attempt(
    url: &str,
    init: &JsValue,
    caller: Option<&AbortSignal>,
    _info: AttemptInfo,
) -> Result<Response, Attempt> {
    let controller = AbortController::new()
        .map_err(|e| Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e))?;
    let mut guard = AbortOnDrop(Some(controller.clone()));
    if caller.is_some_and(AbortSignal::aborted) {
        controller.abort();
    }
    let init_obj = js_sys::Object::new();
    if init.is_object() {
        js_sys::Object::assign(&init_obj, init.unchecked_ref());
    }
    let _ = js_sys::Reflect::set(&init_obj, &"signal".into(), &controller.signal());
    let window = web_sys::window().ok_or_else(|| Attempt::new(Failure::Validation { message: "no window".into() }))?;
    let promise = window.fetch_with_str_and_init(url, init_obj.unchecked_ref());
    let result = JsFuture::from(promise).await;
    let response = match result {
        Ok(r) => r.dyn_into::<Response>().map_err(|v| {
            Attempt::with_cause(Failure::Protocol { message: "fetch did not return a Response".into() }, v)
        })?,
        Err(e) => {
            // A TypeError from fetch is a network failure (refused, reset, DNS, CORS).
            return Err(Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e));
        }
    };
    guard.0 = None;
    let status = response.status();
    if bridge_core::retry::is_transient_status(status) {
        let retry_after = response.headers().get("retry-after").ok().flatten();
        let failure = Failure::http(status, retry_after.as_deref(), platform::unix_ms());
        return Err(Attempt::with_cause(failure, response.into()));
    }
    Ok(response)
}

/// Runs `url` with `init` under the tool's policy and the origin's breaker.
pub(crate) async fn fetch(
    shared: Shared,
    backends: Rc<Backends>,
    url: String,
    init: JsValue,
    options: FetchOptions,
) -> Result<Response, JsValue> {
    let tool = options.tool.clone().unwrap_or_else(|| bridge_core::retry::names::FETCH.to_owned());
    let breaker = format!("fetch:{}", origin_of(&backends.follow(&url)));
    let caller = options.signal.clone().map(CallerAbort::new);
    let cancelled = caller.as_ref().map(|c| c.fired.clone());
    let cancel: resilience::Cancel<'_> = match cancelled {
        Some(s) => Box::pin(async move { s.notified().await }),
        None => resilience::never(),
    };
    let signal = options.signal.as_ref();
    let (result, _) = resilience::run(&shared, &tool, &breaker, None, cancel, &mut |info| {
        // A URL on a backend node goes to the node current at each attempt.
        let url = backends.follow(&url);
        let init = init.clone();
        Box::pin(async move { attempt(&url, &init, signal, info).await })
    })
    .await;
    drop(caller);
    result.map_err(|e| resilience::to_js_error(&tool, &e))
}
