//! `bridge-backend --check-config`, run as a process.

use std::process::Command;

#[test]
fn check_config_prints_the_effective_config_without_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-backend"))
        .arg("--check-config")
        .env("BRIDGE_LLM__API_KEY", "sk-very-secret-key")
        .env("BRIDGE_PORT", "9123")
        .output()
        .expect("run bridge-backend");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("# configuration is valid"), "{text}");
    assert!(text.contains("port = 9123"), "{text}");
    assert!(text.contains("api_key = \"<redacted>\""), "{text}");
    assert!(!text.contains("sk-very-secret-key"), "the key leaked: {text}");
}

#[test]
fn a_bad_value_names_its_key_and_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-backend"))
        .arg("--check-config")
        .env("BRIDGE_HEARTBEAT__INTERVAL_MS", "\"soon\"")
        .output()
        .expect("run bridge-backend");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat.interval_ms: invalid type"), "{err}");
}

#[test]
fn check_config_shows_the_store_and_redacts_a_nats_password() {
    let out = Command::new(env!("CARGO_BIN_EXE_bridge-backend"))
        .args(["--check-config", "--store", "nats", "--nats-url", "nats://app:hunter2-secret@127.0.0.1:4222"])
        .output()
        .expect("run bridge-backend");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("store = \"nats\""), "{text}");
    assert!(text.contains("url = \"nats://app:<redacted>@127.0.0.1:4222\""), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}
