//! Threats, one test each, as listed in docs/operations.md (Security): foreign
//! origins over HTTP (simple and preflighted requests) and bodies that are not
//! JSON; DNS rebinding; tokens per role; impersonation; a reachable bind without
//! tokens; floods of HTTP requests and dashboard streams. Floods of connections,
//! frames and bad frames, and foreign origins on the sockets, are in bad_input.rs.

use bridge_tests::llm_fixture::{LlmFixture, Script};
use bridge_tests::{Client, TestServer, config};
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

// --- DNS rebinding ----------------------------------------------------------------------------

#[tokio::test]
async fn a_request_addressed_to_another_name_is_refused() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let client = reqwest::Client::new();
    let get = |host: String| client.get(server.url("/status")).header("host", host).send();
    // A site that re-points its own name at 127.0.0.1 sends its own name as Host.
    for host in [format!("evil.example:{port}"), "evil.example".into(), format!("127.0.0.1.evil.example:{port}")] {
        let resp = get(host.clone()).await.unwrap();
        assert_eq!(resp.status(), 403, "{host}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "forbidden_host", "{host}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("auth.allowed_hosts")), "{body}");
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        assert_eq!(get(host.clone()).await.unwrap().status(), 200, "{host}");
    }
    // The sockets too: the upgrade is refused before anything else.
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.ws_url("/evolution"))
            .unwrap();
    req.headers_mut().insert("host", format!("evil.example:{port}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("the upgrade should be refused: {other:?}"),
    }
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("bridge_http_rejected_total{reason=\"host\"} 4"), "{metrics}");
}

// --- Tokens, per role -------------------------------------------------------------------------

const ROLES: [(&str, bridge_backend::config::Role); 6] = [
    ("subscribe", bridge_backend::config::Role::Subscribe),
    ("publish", bridge_backend::config::Role::Publish),
    ("handle", bridge_backend::config::Role::Handle),
    ("agent", bridge_backend::config::Role::Agent),
    ("report", bridge_backend::config::Role::Report),
    ("llm", bridge_backend::config::Role::Llm),
];

fn token_of(role: &str) -> String {
    format!("{role}-token-0123456789")
}

/// A server with one token per role, each holding only that role.
async fn one_token_per_role(upstream: &str) -> TestServer {
    let mut cfg = config();
    cfg.llm.upstream = upstream.to_owned();
    cfg.auth.tokens = ROLES
        .iter()
        .map(|(name, role)| bridge_backend::config::Token {
            name: (*name).into(),
            token: token_of(name),
            roles: vec![*role],
        })
        .collect();
    TestServer::start_with(cfg).await
}

#[tokio::test]
async fn http_writes_need_a_token_with_their_role() {
    let fixture = LlmFixture::start(Script::Ok).await;
    let server = one_token_per_role(&fixture.url).await;
    let report = serde_json::to_value(bridge_core::report::BridgeReport {
        bridge_id: "b1".into(),
        instance: "i1".into(),
        seq: 1,
        ts: 0,
        version: "x".into(),
        page: None,
        uptime_ms: 0,
        health: bridge_core::health::HealthModel::bridge_default().snapshot(),
        breakers: vec![],
        retry: bridge_core::metrics::RetryMetrics::default().snapshot(),
        sockets: bridge_core::vecmap::VecMap::default(),
        nodes: Vec::new(),
        webmcp: None,
        tabs: None,
    })
    .unwrap();
    let cases = [
        ("publish", reqwest::Method::POST, "/api/evolution/publish", json!({"topic": "a", "data": 1})),
        ("report", reqwest::Method::PUT, "/api/bridges/b1/report", report),
        ("llm", reqwest::Method::POST, "/api/llm/chat/completions", json!({"model": "m", "messages": []})),
    ];
    for (role, method, path, body) in cases {
        let send = |token: Option<String>| {
            let mut req = reqwest::Client::new().request(method.clone(), server.url(path)).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let status = |r: reqwest::Response| async move {
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null)["code"].as_str().map(str::to_owned))
        };
        let (s, code) = status(send(None).await.unwrap()).await;
        assert_eq!((s, code.as_deref()), (401, Some("unauthorized")), "{path} without a token");
        let (s, code) = status(send(Some("not-a-token-0123456789".into())).await.unwrap()).await;
        assert_eq!((s, code.as_deref()), (401, Some("unauthorized")), "{path} with a wrong token");
        for (other, _) in ROLES.iter().filter(|(r, _)| *r != role) {
            let (s, code) = status(send(Some(token_of(other))).await.unwrap()).await;
            assert_eq!((s, code.as_deref()), (403, Some("forbidden")), "{path} with the {other} token");
        }
        let (s, code) = status(send(Some(token_of(role))).await.unwrap()).await;
        assert_eq!(s, 200, "{path} with the {role} token: {code:?}");
    }
    assert_eq!(fixture.requests(), 1, "only the llm token reached the upstream");
}

#[tokio::test]
async fn socket_frames_need_a_token_with_their_role() {
    let server = one_token_per_role("http://127.0.0.1:9/v1/chat/completions").await;
    // (socket, role, frame) — each frame needs exactly that role.
    let cases = [
        ("/evolution", "subscribe", json!({"type": "subscribe", "id": "x", "topics": ["a"]})),
        ("/evolution", "publish", json!({"type": "publish", "id": "x", "topic": "a", "data": 1})),
        ("/evolution", "publish", json!({"type": "request", "id": "x", "action": "a", "timeout_ms": 100})),
        ("/evolution", "handle", json!({"type": "handle", "id": "x", "actions": ["a"]})),
        ("/agents", "agent", json!({"type": "register", "id": "x", "agent": "a1"})),
    ];
    for (socket, role, frame) in cases {
        for (other, _) in ROLES.iter().filter(|(r, _)| *r != role) {
            let mut c = Client::connect(&server.ws_url(socket), None).await.unwrap();
            c.hello("c", Some(&token_of(other))).await;
            let e = c.call(frame.clone()).await;
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str()),
                (Some("error"), Some("forbidden")),
                "{frame} as {other}: {e}"
            );
        }
        let mut c = Client::connect(&server.ws_url(socket), None).await.unwrap();
        c.hello("c", Some(&token_of(role))).await;
        let answer = c.call(frame.clone()).await;
        assert_ne!(answer["code"], "forbidden", "{frame} as {role}: {answer}");
    }
    for token in [None, Some("not-a-token-0123456789")] {
        let mut c = Client::connect(&server.ws_url("/evolution"), None).await.unwrap();
        let mut hello = json!({"type": "hello", "protocol": 1, "client": "c"});
        if let Some(t) = token {
            hello["token"] = json!(t);
        }
        c.send(hello).await;
        let (code, _, frames) = c.expect_close().await;
        assert_eq!((code, frames[0]["code"].as_str()), (4401, Some("unauthorized")), "{token:?}");
    }
}

// --- Impersonation ----------------------------------------------------------------------------

#[tokio::test]
async fn who_sent_it_is_stamped_by_the_server_never_taken_from_input() {
    let server = TestServer::start().await;
    let mut bob = server.client("/agents", "bob-page").await;
    assert_eq!(bob.call(json!({"type": "register", "id": 1, "agent": "bob"})).await["type"], "ack");
    let mut mallory = server.client("/agents", "mallory-page").await;
    assert_eq!(mallory.call(json!({"type": "register", "id": 1, "agent": "mallory"})).await["type"], "ack");
    let ack = mallory
        .call(json!({"type": "send", "id": "m1", "to": "bob", "from": "alice", "message_type": "t", "content": 1}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let msg = bob.recv_type("message").await;
    assert_eq!(msg["from"], "mallory", "the sender is who registered, not who it claims: {msg}");
    // Events: the publisher is the connection's identity, whatever the frame says.
    let mut sub = server.client("/evolution", "sub").await;
    sub.call(json!({"type": "subscribe", "id": 1, "topics": ["*"]})).await;
    let mut fake = server.client("/evolution", "mallory").await;
    fake.call(json!({"type": "publish", "id": 1, "topic": "t", "data": 1, "publisher": "anonymous/alice"})).await;
    assert_eq!(sub.recv_type("event").await["publisher"], "anonymous/mallory");
    // Reports: a body for another bridge than its URL is refused.
    let resp = reqwest::Client::new()
        .put(server.url("/api/bridges/victim/report"))
        .json(&json!({"bridgeId": "attacker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

// --- Exposure ---------------------------------------------------------------------------------

#[test]
fn a_reachable_bind_without_tokens_is_refused_at_start() {
    let out = std::process::Command::new(bridge_tests::node::backend_bin())
        .args(["--bind", "0.0.0.0", "--port", "0"])
        .output()
        .expect("run bridge-backend");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0.0.0.0 is reachable from other machines, and no tokens are configured"), "{err}");
}

// --- Floods -----------------------------------------------------------------------------------

#[tokio::test]
async fn an_http_flood_is_bounded_and_other_clients_are_unaffected() {
    let mut cfg = config();
    cfg.demo = true;
    cfg.limits.max_http_requests = 4;
    let server = TestServer::start_with(cfg).await;
    let mut socket = server.client("/evolution", "bystander").await;
    let http = reqwest::Client::new();
    let fault = json!({"target": "echo", "mode": "hang", "duration_ms": 1500});
    assert_eq!(http.post(server.url("/api/demo/faults")).json(&fault).send().await.unwrap().status(), 200);
    // Four requests hang and hold every permit.
    let hanging: Vec<_> = (0..4).map(|_| tokio::spawn(http.get(server.url("/api/demo/echo")).send())).collect();
    let deadline = std::time::Instant::now() + bridge_tests::WAIT;
    let refused = loop {
        let resp = http.get(server.url("/livez")).send().await.unwrap();
        if resp.status() == 503 {
            break resp;
        }
        assert!(std::time::Instant::now() < deadline, "the fifth request was never refused");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "overloaded");
    // The socket still answers while HTTP is full.
    assert_eq!(socket.call(json!({"type": "ping", "id": 1})).await, json!({"type": "pong", "id": 1}));
    for h in hanging {
        assert_eq!(h.await.unwrap().unwrap().status(), 504, "the hang ends");
    }
    assert_eq!(http.get(server.url("/livez")).send().await.unwrap().status(), 200, "and requests are served again");
}

#[tokio::test]
async fn dashboard_streams_are_bounded() {
    let mut cfg = config();
    cfg.limits.max_dashboard_streams = 2;
    let server = TestServer::start_with(cfg).await;
    let open = || reqwest::get(server.url("/api/dashboard/stream"));
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let third = open().await.unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(third.json::<Value>().await.unwrap()["code"], "too_many_streams");
    drop(a);
    let deadline = std::time::Instant::now() + bridge_tests::WAIT;
    while open().await.unwrap().status() != 200 {
        assert!(std::time::Instant::now() < deadline, "a closed stream gives its place back");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
