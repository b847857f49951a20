//! The LLM proxy against a fixture speaking the OpenAI HTTP protocol:
//! pass-through, 5xx retried, upstream down (503 + Retry-After, fast), upstream slow (504, bounded).

use std::time::{Duration, Instant};

use bridge_tests::llm_fixture::{LlmFixture, Script};
use bridge_tests::{TestServer, config};
use serde_json::json;

fn proxy_config(upstream: &str) -> bridge_backend::Config {
    let mut cfg = config();
    cfg.llm.upstream = upstream.to_owned();
    cfg.llm.policy.base_delay_ms = Some(10);
    cfg.llm.policy.max_delay_ms = Some(50);
    cfg.llm.policy.attempt_timeout_ms = Some(300);
    cfg.llm.policy.deadline_ms = Some(1_000);
    cfg
}

fn chat_body() -> serde_json::Value {
    json!({"model": "fixture-model", "messages": [{"role": "user", "content": "hello"}]})
}

async fn post(server: &TestServer) -> (reqwest::StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(server.url("/api/llm/chat/completions"))
        .json(&chat_body())
        .send()
        .await
        .expect("POST");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.expect("JSON body"))
}

#[tokio::test]
async fn forwards_to_the_upstream() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = TestServer::start_with(proxy_config(&fixture.url)).await;
    let (status, _, body) = post(&server).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hello");
    assert_eq!(fixture.requests(), 1);
}

#[tokio::test]
async fn retries_an_upstream_5xx() {
    let fixture = LlmFixture::start(Script::FailFirst(2)).await;
    let server = TestServer::start_with(proxy_config(&fixture.url)).await;
    let (status, _, body) = post(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fixture.requests(), 3, "two 500s retried, then success");
}

#[tokio::test]
async fn upstream_down_is_a_fast_503_with_retry_after() {
    // A port nothing listens on.
    let dead = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}/v1/chat/completions", dead.local_addr().unwrap());
    drop(dead);
    let server = TestServer::start_with(proxy_config(&url)).await;
    let started = Instant::now();
    let (status, headers, body) = post(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!((body["code"].as_str(), body["retryable"].as_bool()), (Some("llm_unavailable"), Some(true)));
    assert!(started.elapsed() < Duration::from_secs(2), "never a hang: {:?}", started.elapsed());
    // After enough failures the breaker answers without trying.
    for _ in 0..2 {
        post(&server).await;
    }
    let status = server.get_json("/status").await;
    assert_eq!(status["llm"]["breaker"], "open", "{status}");
    let (status, headers, body) = post(&server).await;
    assert_eq!(status, 503);
    assert!(body["message"].as_str().unwrap().contains("circuit"), "{body}");
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn a_slow_upstream_times_out_within_the_deadline() {
    let fixture = LlmFixture::start(Script::Slow(Duration::from_secs(5))).await;
    let server = TestServer::start_with(proxy_config(&fixture.url)).await;
    let started = Instant::now();
    let (status, headers, body) = post(&server).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], "llm_timeout");
    assert!(headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_millis(1_800), "bounded by the 1 s deadline: {:?}", started.elapsed());
}

#[tokio::test]
async fn bad_bodies_and_health() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = TestServer::start_with(proxy_config(&fixture.url)).await;
    let resp = reqwest::Client::new()
        .post(server.url("/api/llm/chat/completions"))
        .header("content-type", "application/json")
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(fixture.requests(), 0, "bad input never reaches the upstream");
    let health = reqwest::get(server.url("/api/llm/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["status"], "pass");
}

#[tokio::test]
async fn with_tokens_the_proxy_needs_the_llm_role() {
    use bridge_backend::config::{Role, Token};
    let fixture = LlmFixture::start(Script::Ok).await;
    let mut cfg = proxy_config(&fixture.url);
    cfg.auth.tokens = vec![
        Token { name: "page".into(), token: "page-token-0123456789".into(), roles: vec![Role::Llm] },
        Token { name: "reader".into(), token: "read-token-0123456789".into(), roles: vec![Role::Subscribe] },
    ];
    let server = TestServer::start_with(cfg).await;
    let ask = |token: Option<&'static str>| {
        let mut req = reqwest::Client::new().post(server.url("/api/llm/chat/completions")).json(&chat_body());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.expect("POST");
            let status = resp.status();
            (status, resp.json::<serde_json::Value>().await.expect("JSON body"))
        }
    };
    let (status, body) = ask(None).await;
    assert_eq!((status.as_u16(), body["code"].as_str()), (401, Some("unauthorized")), "{body}");
    let (status, body) = ask(Some("read-token-0123456789")).await;
    assert_eq!((status.as_u16(), body["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert_eq!(fixture.requests(), 0, "refused requests never reach the upstream (nor its key)");
    let (status, body) = ask(Some("page-token-0123456789")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fixture.requests(), 1);
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_refused_with_413() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let mut cfg = proxy_config(&fixture.url);
    cfg.llm.max_body_bytes = 4 * 1024;
    let server = TestServer::start_with(cfg).await;
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(8 * 1024)}]});
    let resp = reqwest::Client::new().post(server.url("/api/llm/chat/completions")).json(&big).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_large", "{body}");
    assert!(body["message"].as_str().unwrap().contains("4096"), "{body}");
    assert_eq!(fixture.requests(), 0);
}
