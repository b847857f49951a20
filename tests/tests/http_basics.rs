//! The backend's basic HTTP surface: liveness and static files.

use bridge_tests::TestServer;

#[tokio::test]
async fn livez_passes_in_health_json() {
    let server = TestServer::start().await;
    let resp = reqwest::get(server.url("/livez")).await.expect("GET /livez");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/health+json");
    let body: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(body["status"], "pass");
    assert_eq!(body["version"], bridge_core::VERSION);
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn serves_the_dashboard_and_wasm_with_the_right_types() {
    let www = std::env::temp_dir().join(format!("bridge-www-{}", std::process::id()));
    std::fs::create_dir_all(www.join("pkg")).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>dash</title>").unwrap();
    std::fs::write(www.join("pkg/bridge_wasm_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let server = TestServer::start_with(bridge_backend::Config { port: 0, www_dir: www, ..Default::default() }).await;
    let resp = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let resp = reqwest::get(server.url("/pkg/bridge_wasm_bg.wasm")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/wasm");
    let resp = reqwest::get(server.url("/no/such/file")).await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn static_files_are_gzipped_for_browsers_that_accept_it() {
    let www = std::env::temp_dir().join(format!("bridge-www-gz-{}", std::process::id()));
    std::fs::create_dir_all(&www).unwrap();
    let script = "console.log('the dashboard');\n".repeat(200);
    std::fs::write(www.join("app.js"), &script).unwrap();
    let server = TestServer::start_with(bridge_backend::Config { port: 0, www_dir: www, ..Default::default() }).await;
    let client = reqwest::Client::new();

    let gz = client.get(server.url("/app.js")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let body = gz.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(body.len() < script.len() / 10, "{} bytes gzipped from {}", body.len(), script.len());

    // A client that does not ask gets the file as it is.
    let plain = client.get(server.url("/app.js")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), script);
}
