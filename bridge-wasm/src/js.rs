//! Conversions at the JS edge. Values cross as JSON: `JSON.parse` is fast in
//! every engine and keeps the module small (no serde-wasm-bindgen).

use serde::Serialize;
use wasm_bindgen::JsValue;

/// Serializes `value` to a plain JS object.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(error)?;
    js_sys::JSON::parse(&text)
}

/// A JS `Error` from any displayable error.
pub fn error(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}
