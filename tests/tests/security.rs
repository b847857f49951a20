//! Threats, one test each (docs/operations.md, Security): a page on a foreign
//! origin must not change state through HTTP, with a "simple" request (no CORS
//! preflight: `text/plain`, a typeless body) or a preflighted one; a body that is
//! not JSON is refused whatever its origin; clients without `Origin` (daemons,
//! curl) keep working.

use bridge_tests::llm_fixture::{LlmFixture, Script};
use bridge_tests::{TestServer, config};
use serde_json::{Value, json};

const EVIL: &str = "https://evil.example";
const ALLOWED: &str = "http://localhost:3000";

/// A state-changing endpoint: method, path, a valid JSON body.
struct Endpoint {
    method: reqwest::Method,
    path: &'static str,
    body: Value,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            method: reqwest::Method::POST,
            path: "/api/evolution/publish",
            body: json!({"topic": "a", "data": 1}),
        },
        Endpoint { method: reqwest::Method::PUT, path: "/api/bridges/b1/report", body: json!({"bridgeId": "b1"}) },
        Endpoint {
            method: reqwest::Method::POST,
            path: "/api/llm/chat/completions",
            body: json!({"model": "m", "messages": []}),
        },
        Endpoint {
            method: reqwest::Method::POST,
            path: "/api/demo/faults",
            body: json!({"target": "echo", "mode": "fail"}),
        },
        Endpoint { method: reqwest::Method::DELETE, path: "/api/demo/faults", body: Value::Null },
    ]
}

async fn demo_server(upstream: &str) -> TestServer {
    let mut cfg = config();
    cfg.demo = true;
    cfg.llm.upstream = upstream.to_owned();
    TestServer::start_with(cfg).await
}

/// Sends `body` (omitted when null) with the given Origin and Content-Type; returns status and JSON body.
async fn send(
    server: &TestServer,
    e: &Endpoint,
    origin: Option<&str>,
    content_type: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().request(e.method.clone(), server.url(e.path));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if !e.body.is_null() {
        req = req.body(e.body.to_string());
    }
    let resp = req.send().await.unwrap_or_else(|err| panic!("{} {}: {err}", e.method, e.path));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
}

/// Nothing changed: no event published, no report stored, no fault set, the upstream never called.
async fn assert_untouched(server: &TestServer, fixture: &LlmFixture, what: &str) {
    let status = server.get_json("/status").await;
    assert_eq!(status["evolution"]["head"], 0, "{what}: an event was published");
    assert_eq!(status["bridges"]["known"], 0, "{what}: a report was stored");
    assert_eq!(server.get_json("/api/demo/faults").await["active"], json!([]), "{what}: a fault was set");
    assert_eq!(fixture.requests(), 0, "{what}: the LLM upstream was called with the server's key");
}

#[tokio::test]
async fn a_foreign_origin_cannot_change_state_with_a_simple_request() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = demo_server(&fixture.url).await;
    for e in endpoints() {
        for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None, Some("application/json")] {
            let what = format!("{} {} from {EVIL} as {ct:?}", e.method, e.path);
            let (status, body, _) = send(&server, &e, Some(EVIL), ct).await;
            assert_eq!(status, 403, "{what}: {body}");
            assert_eq!(body["code"], "forbidden_origin", "{what}: {body}");
            assert_eq!(body["retryable"], false, "{what}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| m.contains("auth.allowed_origins")), "{what}: {body}");
        }
        // A sandboxed iframe sends "null"; that is not an allowed origin either.
        let (status, body, _) = send(&server, &e, Some("null"), Some("text/plain")).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden_origin")), "{} {}: {body}", e.method, e.path);
    }
    assert_untouched(&server, &fixture, "after the foreign requests").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_from_any_origin() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = demo_server(&fixture.url).await;
    for e in endpoints().into_iter().filter(|e| !e.body.is_null()) {
        for origin in [Some(ALLOWED), None] {
            for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data"), None]
            {
                let what = format!("{} {} from {origin:?} as {ct:?}", e.method, e.path);
                let (status, body, _) = send(&server, &e, origin, ct).await;
                assert_eq!(status, 415, "{what}: {body}");
                assert_eq!(body["code"], "unsupported_media_type", "{what}: {body}");
                assert!(
                    body["message"].as_str().is_some_and(|m| m.contains("Content-Type: application/json")),
                    "{what}: {body}"
                );
            }
        }
    }
    assert_untouched(&server, &fixture, "after the non-JSON requests").await;
}

#[tokio::test]
async fn the_preflight_tells_a_foreign_page_no_and_an_allowed_one_yes() {
    let server = demo_server("http://127.0.0.1:9/v1/chat/completions").await;
    let client = reqwest::Client::new();
    for e in endpoints() {
        let preflight = |origin: &'static str| {
            client
                .request(reqwest::Method::OPTIONS, server.url(e.path))
                .header("origin", origin)
                .header("access-control-request-method", e.method.as_str())
                .header("access-control-request-headers", "content-type")
                .send()
        };
        let foreign = preflight(EVIL).await.unwrap();
        assert!(
            foreign.headers().get("access-control-allow-origin").is_none(),
            "{} {}: a foreign origin was allowed: {:?}",
            e.method,
            e.path,
            foreign.headers()
        );
        let allowed = preflight(ALLOWED).await.unwrap();
        assert_eq!(allowed.headers()["access-control-allow-origin"], ALLOWED, "{} {}", e.method, e.path);
    }
}

#[tokio::test]
async fn daemons_without_origin_and_allowed_pages_keep_working() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = demo_server(&fixture.url).await;
    let publish = &endpoints()[0];
    for (n, origin) in [None, Some(ALLOWED), Some(&*server.url(""))].into_iter().enumerate() {
        let (status, body, _) = send(&server, publish, origin, Some("application/json; charset=utf-8")).await;
        assert_eq!(status, 200, "publish from {origin:?}: {body}");
        assert_eq!(body["seq"], n as u64 + 1, "{body}");
    }
    let llm = &endpoints()[2];
    let (status, body, _) = send(&server, llm, None, Some("application/json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fixture.requests(), 1);
    let clear = &endpoints()[4];
    let (status, body, _) = send(&server, clear, Some(ALLOWED), None).await;
    assert_eq!(status, 200, "a DELETE without a body needs no Content-Type: {body}");
}
