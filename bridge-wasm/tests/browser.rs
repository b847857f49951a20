//! Runs in headless Chromium: `cargo test --target wasm32-unknown-unknown -p bridge-wasm`.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap()
}

#[wasm_bindgen_test]
fn exports_version_and_policies() {
    assert_eq!(bridge_wasm::version(), env!("CARGO_PKG_VERSION"));
    let policies = bridge_wasm::default_policies().unwrap();
    let llm = get(&policies, "sendLLMPrompt");
    assert_eq!(get(&llm, "maxRetries").as_f64(), Some(2.0));
    assert_eq!(get(&llm, "baseDelayMs").as_f64(), Some(500.0));
    let fallback = bridge_wasm::policy_for("noSuchTool").unwrap();
    assert_eq!(get(&fallback, "maxRetries").as_f64(), Some(3.0));
}

#[wasm_bindgen_test]
fn backoff_is_capped_and_reproducible_in_the_browser() {
    let a = bridge_wasm::backoff_delays("connectEvolutionSocket", 42);
    assert_eq!(a, bridge_wasm::backoff_delays("connectEvolutionSocket", 42));
    assert_eq!(a.len(), 5);
    // 200 ms base, ±20 %: the first delay is within [160, 240].
    assert!((160.0..=240.0).contains(&a[0]), "{a:?}");
    assert!(a.iter().all(|d| *d <= 30_000.0));
}
