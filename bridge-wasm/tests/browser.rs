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

fn config_error(config: &str) -> String {
    let value = js_sys::JSON::parse(config).unwrap();
    let e = bridge_wasm::Bridge::new(value).expect_err(config);
    assert_eq!(get(&e, "code"), "invalid_config");
    get(&e, "message").as_string().unwrap()
}

#[wasm_bindgen_test]
fn config_errors_name_the_field() {
    let cases = [
        (r#"{"healthIntervalMs": 5}"#, "config.healthIntervalMs: must be between 100 and 3600000, got 5"),
        (r#"{"healthIntervalMs": "fast"}"#, "config.healthIntervalMs: must be a number, got a string"),
        (r#"{"backendUrl": "ftp://x"}"#, "config.backendUrl: must start with http:// or https://, got \"ftp://x\""),
        (
            r#"{"backendUrl": ["http://a", "ftp://b"]}"#,
            "config.backendUrl: must start with http:// or https://, got \"ftp://b\"",
        ),
        (r#"{"backendUrl": []}"#, "config.backendUrl: give 1 to 16 URLs, got 0"),
        (r#"{"backendUrl": 5}"#, "config.backendUrl: must be a string or an array of strings, got a number"),
        (
            r#"{"sockets": ["evolution", "chat"]}"#,
            "config.sockets: \"chat\" is not a socket; use \"evolution\" and/or \"agents\"",
        ),
        (r#"{"agent": {}}"#, "config.agent.name: is required"),
        (
            r#"{"policies": {"fetch": {"maxRetries": -1}}}"#,
            "config.policies.fetch.maxRetries: must be a whole number of 0 or more",
        ),
        (
            r#"{"policies": {"fetch": {"jitter": {"mode": "wild"}}}}"#,
            "jitter.mode: \"wild\" is not one of none, proportional, full, decorrelated",
        ),
        (
            r#"{"breakers": {"llm": {"failureThreshold": 0}}}"#,
            "config.breakers.llm: failureThreshold must be at least 1",
        ),
        (
            r#"{"retryBudget": {"ratio": 20}}"#,
            "config.retryBudget: retry budget ratio must be between 0 and 10, got 20",
        ),
        (r#"{"persistOutbox": "yes"}"#, "config.persistOutbox: must be true, false or an object"),
        (
            r#"{"persistOutbox": {"maxEntries": 0}}"#,
            "config.persistOutbox.maxEntries: must be between 1 and 100000, got 0",
        ),
        (r#"{"persistOutbox": {"maxAge": 5}}"#, "config.persistOutbox: unknown field `maxAge`"),
    ];
    for (config, want) in cases {
        let got = config_error(config);
        assert!(got.contains(want), "{config}: {got}");
    }
    let typo = config_error(r#"{"healthIntervalMS": 500}"#);
    assert!(typo.starts_with("config: unknown field `healthIntervalMS`; known fields:"), "{typo}");
    let policy = config_error(r#"{"policies": {"fetch": {"baseDelayMs": 99999}}}"#);
    assert!(policy.starts_with("config.policies: policy \"fetch\": base delay (99999 ms)"), "{policy}");
}

#[wasm_bindgen_test]
fn config_defaults_and_a_kept_id() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.remove_item("bridge.id").unwrap();
    let b = bridge_wasm::Bridge::new(js_sys::Object::new().into()).unwrap();
    let id = b.id();
    assert!(id.starts_with("b-"), "{id}");
    assert_eq!(storage.get_item("bridge.id").unwrap().as_deref(), Some(id.as_str()), "kept in localStorage");
    assert_eq!(bridge_wasm::Bridge::new(JsValue::UNDEFINED).unwrap().id(), id, "the next bridge reuses it");
    let state = b.state().unwrap();
    let origin = web_sys::window().unwrap().location().origin().unwrap();
    let evolution = get(&get(&state, "sockets"), "evolution");
    assert_eq!(get(&evolution, "url").as_string().unwrap(), format!("{}/evolution", origin.replacen("http", "ws", 1)));
    assert_eq!(get(&evolution, "outboxLimit").as_f64(), Some(256.0));
    let fetch = get(&get(&get(&state, "policies"), "named"), "fetch");
    assert_eq!(get(&fetch, "maxRetries").as_f64(), Some(3.0));
    let llm = get(&get(&get(&state, "policies"), "named"), "sendLLMPrompt");
    assert_eq!(get(&llm, "attemptTimeoutMs").as_f64(), Some(60_000.0));
}
