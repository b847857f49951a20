//! The JS edge: values cross as JSON text (`JSON.parse` is fast in every
//! engine and keeps the module small), and errors become JS `Error`s with a
//! stable `code` a script can switch on, plus the underlying `cause`.

use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

/// Serializes `value` to a plain JS object.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(error)?;
    js_sys::JSON::parse(&text)
}

/// A plain JS value as JSON text (`undefined` becomes `null`).
pub(crate) fn to_json(value: &JsValue) -> Result<String, JsValue> {
    if value.is_undefined() {
        return Ok("null".into());
    }
    js_sys::JSON::stringify(value)?.as_string().ok_or_else(|| error("the value cannot be expressed as JSON"))
}

/// A JS `Error` from any displayable error.
pub fn error(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// The bridge's own error codes, the one list of them (a script switches on `error.code`).
/// The outcomes of retried operations (`circuit_open`, `retries_exhausted`, ...) are
/// `bridge_core::retry::Outcome`'s; a server's refusal keeps its protocol code in `serverCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// A method was called with a wrong argument.
    InvalidArgument,
    /// `new Bridge(config)` with a wrong config.
    InvalidConfig,
    /// The bridge has no such socket (`config.sockets`).
    NotConfigured,
    NotFound,
    /// Too many listeners, tools, ...
    LimitExceeded,
    ReportFailed,
    /// The evolution handler answered with its own error.
    HandlerError,
    /// The socket's outbox is full.
    OutboxFull,
    /// The bridge stopped, or another connection took its agent's name.
    Stopped,
    /// The tab that led the shared connection stepped down (retried through the new one).
    LeaderChanged,
}

impl Code {
    const ALL: [Code; 10] = [
        Code::InvalidArgument,
        Code::InvalidConfig,
        Code::NotConfigured,
        Code::NotFound,
        Code::LimitExceeded,
        Code::ReportFailed,
        Code::HandlerError,
        Code::OutboxFull,
        Code::Stopped,
        Code::LeaderChanged,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::InvalidConfig => "invalid_config",
            Code::NotConfigured => "not_configured",
            Code::NotFound => "not_found",
            Code::LimitExceeded => "limit_exceeded",
            Code::ReportFailed => "report_failed",
            Code::HandlerError => "handler_error",
            Code::OutboxFull => "outbox_full",
            Code::Stopped => "stopped",
            Code::LeaderChanged => "leader_changed",
        }
    }

    /// The code named `s` (a code another tab sent).
    pub(crate) fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A JS `Error` with this code and `message`.
    pub(crate) fn error(self, message: &str) -> JsValue {
        coded_error(self.as_str(), message, None, &[])
    }
}

/// A JS `Error` with `code`, and optionally `cause` and more properties.
pub(crate) fn coded_error(code: &str, message: &str, cause: Option<&JsValue>, extra: &[(&str, JsValue)]) -> JsValue {
    let e = js_sys::Error::new(message);
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    if let Some(c) = cause {
        let _ = js_sys::Reflect::set(&e, &"cause".into(), c);
    }
    for (k, v) in extra {
        let _ = js_sys::Reflect::set(&e, &(*k).into(), v);
    }
    e.into()
}

/// A property of a JS object, if it is set.
pub(crate) fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    js_sys::Reflect::get(obj, &key.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// The message of a thrown JS value.
pub(crate) fn message_of(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| to_json(value).unwrap_or_else(|_| "an error".into()))
}

/// Logs to the console (for failures in page callbacks, which must not stop the bridge).
pub(crate) fn warn(message: &str, detail: &JsValue) {
    web_sys::console::warn_2(&format!("bridge: {message}").into(), detail);
}

/// A promise for `f`. The future is boxed so `future_to_promise` is compiled once.
pub(crate) fn promise(f: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>> = Box::pin(f);
    wasm_bindgen_futures::future_to_promise(boxed)
}
