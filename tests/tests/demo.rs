//! The demo fault switch: off by default, and when on, faults HTTP targets and drops sockets.

use std::time::Duration;

use bridge_tests::{TestServer, config};
use serde_json::json;

fn demo() -> bridge_backend::Config {
    let mut cfg = config();
    cfg.demo = true;
    cfg
}

async fn fault(server: &TestServer, body: serde_json::Value) -> serde_json::Value {
    let resp = reqwest::Client::new().post(server.url("/api/demo/faults")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn off_by_default() {
    let server = TestServer::start().await;
    assert_eq!(reqwest::get(server.url("/api/demo/echo")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn faults_an_http_target_for_a_count_then_recovers() {
    let server = TestServer::start_with(demo()).await;
    fault(&server, json!({"target": "echo", "mode": "status", "status": 503, "count": 2, "retry_after_s": 1})).await;
    for _ in 0..2 {
        let r = reqwest::get(server.url("/api/demo/echo")).await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
    }
    let r = reqwest::get(server.url("/api/demo/echo")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["ok"], true);
}

#[tokio::test]
async fn hang_and_clear() {
    let server = TestServer::start_with(demo()).await;
    fault(&server, json!({"target": "readyz", "mode": "hang", "duration_ms": 300})).await;
    let started = std::time::Instant::now();
    let r = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() >= Duration::from_millis(250));
    fault(&server, json!({"target": "echo", "mode": "fail"})).await;
    reqwest::Client::new().delete(server.url("/api/demo/faults")).send().await.unwrap();
    assert_eq!(reqwest::get(server.url("/api/demo/echo")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn drops_sockets_and_refuses_upgrades_while_faulted() {
    let server = TestServer::start_with(demo()).await;
    let mut c = server.client("/evolution", "victim").await;
    let out = fault(&server, json!({"target": "evolution", "mode": "drop"})).await;
    assert_eq!(out["dropped"], 1);
    let (code, _, _) = c.expect_close().await;
    assert_eq!(code, 1006, "cut without a close frame");
    fault(&server, json!({"target": "evolution", "mode": "fail", "duration_ms": 5000})).await;
    let refused = bridge_tests::Client::connect(&server.ws_url("/evolution"), None).await;
    assert!(refused.is_err(), "upgrades are refused during the fault");
    let bad = reqwest::Client::new()
        .post(server.url("/api/demo/faults"))
        .json(&json!({"target": "nope", "mode": "fail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn shutdown_does_not_wait_past_the_grace_period_for_a_hanging_request() {
    let mut cfg = demo();
    cfg.shutdown.grace_ms = 500;
    let server = TestServer::start_with(cfg).await;
    fault(&server, json!({"target": "echo", "mode": "hang", "duration_ms": 30_000})).await;
    let hanging = tokio::spawn(reqwest::get(server.url("/api/demo/echo")));
    // Give the request time to reach the server (not a timing assertion: only an upper bound is checked).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!hanging.is_finished(), "the request hangs");
    let started = std::time::Instant::now();
    server.stop().await.expect("clean shutdown");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?} with a 30 s hang in flight and a 500 ms grace");
    assert!(took >= Duration::from_millis(400), "the request had its grace period: {took:?}");
}
