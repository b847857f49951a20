//! The browser bridge, compiled to WebAssembly and imported by a page:
//!
//! ```js
//! import init, { version, defaultPolicies } from "/pkg/bridge_wasm.js";
//! await init();
//! console.log(version(), defaultPolicies().fetch.maxRetries);
//! ```
//!
//! # Layout
//!
//! - [`js`]: conversions between Rust values and JS values.
//! - the exported functions below: version and the core policy objects.

use bridge_core::random::SeededRandom;
use bridge_core::retry::PolicySet;
use bridge_core::time::duration_ms;
use wasm_bindgen::prelude::*;

pub mod js;

/// The bridge's version.
#[wasm_bindgen]
pub fn version() -> String {
    bridge_core::VERSION.to_owned()
}

/// The built-in per-tool retry policies, by name, plus `default`.
#[wasm_bindgen(js_name = defaultPolicies)]
pub fn default_policies() -> Result<JsValue, JsValue> {
    let set = PolicySet::default();
    let mut map = serde_json::Map::new();
    map.insert("default".into(), serde_json::to_value(set.default_policy()).map_err(js::error)?);
    for (name, policy) in set.named() {
        map.insert(name.into(), serde_json::to_value(policy).map_err(js::error)?);
    }
    js::to_js(&map)
}

/// The retry policy a tool named `name` gets (unknown names get the default).
#[wasm_bindgen(js_name = policyFor)]
pub fn policy_for(name: &str) -> Result<JsValue, JsValue> {
    js::to_js(PolicySet::default().get(name))
}

/// The delays, in ms, that the tool `name`'s policy would wait between its
/// retries, drawing jitter from a generator seeded with `seed`.
#[wasm_bindgen(js_name = backoffDelays)]
pub fn backoff_delays(name: &str, seed: u32) -> Vec<f64> {
    PolicySet::default().get(name).backoff(SeededRandom::new(u64::from(seed))).map(|d| duration_ms(d) as f64).collect()
}
