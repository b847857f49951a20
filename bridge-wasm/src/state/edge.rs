//! The few JS functions the module calls (`js/edge.js`): the engine's number
//! text, and building a session's output for the driver; and JSON text for
//! the driver.
//! Bound by hand so the module needs nothing of `js-sys`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/edge.js")]
extern "C" {
    /// `String(x)`: the engine's shortest text for a number.
    #[cfg(target_arch = "wasm32")]
    fn number(x: f64) -> String;
    /// `{type, key, payload, text, subs}`: one output of a session for the driver.
    pub(super) fn output(kind: &str, key: f64, payload: &JsValue, text: Option<String>, subs: &[u32]) -> JsValue;
}

/// Floats written by the engine (no float printer in the module; `JSON.parse` reads them back exactly).
#[cfg(target_arch = "wasm32")]
fn js_floats(x: f64, out: &mut String) {
    out.push_str(&number(x));
}

/// `value` as JSON text for the driver's `JSON.parse`.
pub(crate) fn json(value: &dyn bridge_core::json::ToJson) -> String {
    bridge_core::json::to_text(value, js_floats)
}

/// Natively (the unit tests) there is no engine: Rust prints the floats.
#[cfg(not(target_arch = "wasm32"))]
use bridge_core::json::rust_floats as js_floats;
