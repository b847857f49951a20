//! The bridge in headless Chromium against a live backend (started by
//! `cargo xtask test` with `--demo`; its URL is compiled in from
//! `BRIDGE_TEST_BACKEND`). Faults come from the backend's demo switch.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use bridge_wasm::Bridge;
use js_sys::{Function, Promise, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn backend() -> &'static str {
    match option_env!("BRIDGE_TEST_BACKEND") {
        Some(url) => url,
        None => {
            panic!("these tests need a running backend: run them with `cargo xtask test`, which starts one with --demo")
        }
    }
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn js(v: Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).unwrap()
}

fn rust(v: &JsValue) -> Value {
    serde_json::from_str(&js_sys::JSON::stringify(v).unwrap().as_string().unwrap()).unwrap()
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

/// Waits (polling every 20 ms, at most `ms`) until `cond` holds; panics naming `what`.
async fn wait_for(what: &str, ms: f64, mut cond: impl FnMut() -> bool) {
    let start = now();
    while !cond() {
        assert!(now() - start < ms, "timed out after {ms} ms waiting for {what}");
        sleep(20).await;
    }
}

/// An HTTP call to the backend from the page; returns (status, JSON body or null).
async fn http(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(&b.to_string()));
        let h = web_sys::Headers::new().unwrap();
        h.set("content-type", "application/json").unwrap();
        init.set_headers(&h);
    }
    let url = format!("{}{path}", backend());
    let resp: web_sys::Response =
        JsFuture::from(web_sys::window().unwrap().fetch_with_str_and_init(&url, &init)).await.unwrap().unchecked_into();
    let text = JsFuture::from(resp.text().unwrap()).await.unwrap().as_string().unwrap();
    (resp.status(), serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn fault(body: Value) {
    let (status, out) = http("POST", "/api/demo/faults", Some(body)).await;
    assert_eq!(status, 200, "setting a demo fault: {out}");
}

async fn publish(topic: &str, data: Value) -> u64 {
    let (status, out) = http("POST", "/api/evolution/publish", Some(json!({"topic": topic, "data": data}))).await;
    assert_eq!(status, 200, "{out}");
    out["seq"].as_u64().unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", (js_sys::Math::random() * 1e9) as u64)
}

fn bridge(config: Value) -> Bridge {
    let mut c = config;
    if c.get("backendUrl").is_none() {
        c["backendUrl"] = json!(backend());
    }
    if c.get("bridgeId").is_none() {
        c["bridgeId"] = json!(unique("test-"));
    }
    Bridge::new(js(c)).unwrap_or_else(|e| panic!("new Bridge: {}", rust(&e)))
}

async fn done(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn state(b: &Bridge) -> Value {
    rust(&b.state().unwrap())
}

fn breaker(b: &Bridge, name: &str) -> Value {
    state(b)["breakers"].as_array().unwrap().iter().find(|x| x["name"] == name).cloned().unwrap_or(Value::Null)
}

fn socket_state(b: &Bridge, name: &str) -> String {
    state(b)["sockets"][name]["state"].as_str().unwrap_or("").to_owned()
}

/// Collects what a JS callback receives.
struct Collector {
    items: Rc<RefCell<Vec<Value>>>,
    closure: Closure<dyn FnMut(JsValue)>,
}

impl Collector {
    fn new() -> Self {
        let items = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&items);
        let closure = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| sink.borrow_mut().push(rust(&v)));
        Self { items, closure }
    }
    fn function(&self) -> Function {
        self.closure.as_ref().clone().unchecked_into()
    }
    fn len(&self) -> usize {
        self.items.borrow().len()
    }
    fn seqs(&self) -> Vec<u64> {
        self.items.borrow().iter().filter_map(|e| e["seq"].as_u64()).collect()
    }
}

#[wasm_bindgen_test]
async fn subscribes_and_receives_events_in_order() {
    let b = bridge(json!({"sockets": ["evolution"], "report": false}));
    done(b.start()).await.unwrap();
    wait_for("the evolution socket to open", 5000.0, || socket_state(&b, "evolution") == "open").await;
    let topic = unique("t.");
    let events = Collector::new();
    let _sub = b.subscribe(JsValue::from_str(&topic), events.function()).unwrap();
    sleep(100).await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(publish(&topic, json!({"i": i})).await);
    }
    wait_for("5 events", 5000.0, || events.len() == 5).await;
    assert_eq!(events.seqs(), seqs);
    assert_eq!(events.items.borrow()[4]["data"]["i"], 4);
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn reconnects_and_resumes_without_loss_or_duplicates() {
    let b = bridge(json!({"sockets": ["evolution"], "report": false,
        "policies": {"connectEvolutionSocket": {"baseDelayMs": 20, "maxDelayMs": 200}}}));
    done(b.start()).await.unwrap();
    wait_for("the evolution socket to open", 5000.0, || socket_state(&b, "evolution") == "open").await;
    let topic = unique("resume.");
    let events = Collector::new();
    let _sub = b.subscribe(JsValue::from_str(&topic), events.function()).unwrap();
    sleep(100).await;
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(publish(&topic, json!(i)).await);
    }
    wait_for("the first 3 events", 5000.0, || events.len() == 3).await;
    // The backend cuts the connection; events published meanwhile must arrive once, in order.
    let dropped_at = now();
    fault(json!({"target": "evolution", "mode": "drop"})).await;
    for i in 3..8 {
        expected.push(publish(&topic, json!(i)).await);
    }
    wait_for("all 8 events after the reconnect", 10_000.0, || events.len() >= 8).await;
    let resumed_ms = now() - dropped_at;
    sleep(200).await;
    assert_eq!(events.seqs(), expected, "no loss, no duplicate, no reordering");
    let s = state(&b);
    assert!(s["sockets"]["evolution"]["reconnects"].as_u64().unwrap() >= 1, "{s}");
    web_sys::console::log_1(&format!("FIGURE resume after drop: {resumed_ms:.0} ms").into());
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn five_failed_connects_open_the_breaker_which_half_opens_and_closes() {
    // Upgrades are refused for 1.5 s: every connect fails, as against a dead port.
    fault(json!({"target": "agents", "mode": "fail", "duration_ms": 1500})).await;
    let b = bridge(json!({"sockets": ["agents"], "report": false,
        "policies": {"connectAgentSocket": {"baseDelayMs": 10, "maxDelayMs": 40}},
        "breakers": {"connectAgentSocket": {"resetTimeoutMs": 600, "successThreshold": 1}}}));
    done(b.start()).await.unwrap();
    wait_for("the breaker to open", 5000.0, || breaker(&b, "connectAgentSocket")["state"] == "open").await;
    let open = breaker(&b, "connectAgentSocket");
    assert_eq!(open["failures"], 5, "opened after exactly 5 consecutive failures: {open}");
    assert_eq!(open["transitions"][0]["reason"], "consecutive_failures");
    // The fault ends; after the reset timeout a trial connect succeeds and closes it.
    wait_for("the breaker to close again", 8000.0, || breaker(&b, "connectAgentSocket")["state"] == "closed").await;
    let closed = breaker(&b, "connectAgentSocket");
    let path: Vec<String> =
        closed["transitions"].as_array().unwrap().iter().map(|t| t["to"].as_str().unwrap().to_owned()).collect();
    assert!(path.windows(2).any(|w| w == ["half_open", "closed"]), "went through half-open: {path:?}");
    assert_eq!(path.first().map(String::as_str), Some("open"));
    wait_for("the socket to open", 5000.0, || socket_state(&b, "agents") == "open").await;
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_dead_port_opens_the_breaker_and_failed_trials_reopen_it() {
    let b = bridge(json!({"backendUrl": "http://127.0.0.1:9", "sockets": ["evolution"], "report": false,
        "policies": {"connectEvolutionSocket": {"baseDelayMs": 10, "maxDelayMs": 40}},
        "breakers": {"connectEvolutionSocket": {"resetTimeoutMs": 200}}}));
    done(b.start()).await.unwrap();
    wait_for("open -> half_open -> open", 8000.0, || {
        let t = breaker(&b, "connectEvolutionSocket")["transitions"].clone();
        t.as_array().is_some_and(|t| t.iter().any(|x| x["reason"] == "trial_failed"))
    })
    .await;
    assert_eq!(socket_state(&b, "evolution"), "connecting", "it never connected");
    done(b.stop()).await.unwrap();
}

async fn fetch(b: &Bridge, path: &str, options: Value) -> Result<web_sys::Response, Value> {
    let p = b.fetch(format!("{}{path}", backend()), JsValue::UNDEFINED, js(options));
    match done(p).await {
        Ok(r) => Ok(r.unchecked_into()),
        Err(e) => {
            let mut v = json!({
                "code": Reflect::get(&e, &"code".into()).unwrap().as_string(),
                "message": Reflect::get(&e, &"message".into()).unwrap().as_string(),
                "attempts": Reflect::get(&e, &"attempts".into()).unwrap().as_f64(),
            });
            if let Ok(c) = Reflect::get(&e, &"cause".into()) {
                v["cause_code"] = json!(Reflect::get(&c, &"code".into()).ok().and_then(|x| x.as_string()));
            }
            Err(v)
        }
    }
}

fn op(b: &Bridge, tool: &str) -> Value {
    state(b)["retry"]["operations"][tool].clone()
}

#[wasm_bindgen_test]
async fn fetch_retries_a_503_then_succeeds_and_does_not_retry_a_404() {
    let b = bridge(json!({"sockets": [], "report": false, "policies": {"fetch": {"baseDelayMs": 10}}}));
    fault(json!({"target": "echo", "mode": "status", "status": 503, "count": 2})).await;
    let r = fetch(&b, "/api/demo/echo", json!({})).await.expect("succeeds on the third attempt");
    assert_eq!(r.status(), 200);
    let m = op(&b, "fetch");
    assert_eq!(
        (m["attempts"].as_u64(), m["retries"].as_u64(), m["successes"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{m}"
    );

    let r = fetch(&b, "/api/demo/no-such-thing", json!({"tool": "fetch404"})).await.expect("a 404 resolves");
    assert_eq!(r.status(), 404);
    assert_eq!(op(&b, "fetch404")["attempts"], 1, "not retried");
}

#[wasm_bindgen_test]
async fn fetch_honours_retry_after() {
    let b = bridge(json!({"sockets": [], "report": false, "policies": {"fetchRetryAfter": {"baseDelayMs": 10}}}));
    fault(json!({"target": "echo", "mode": "status", "status": 429, "count": 1, "retry_after_s": 1})).await;
    let started = now();
    let r = fetch(&b, "/api/demo/echo", json!({"tool": "fetchRetryAfter"})).await.expect("succeeds after waiting");
    let waited = now() - started;
    assert_eq!(r.status(), 200);
    assert!(waited >= 950.0, "waited {waited} ms: the 1 s Retry-After, not the 10 ms backoff");
    assert!(waited < 3000.0, "waited {waited} ms");
}

#[wasm_bindgen_test]
async fn fetch_times_out_a_hanging_response() {
    let b = bridge(json!({"sockets": [], "report": false,
        "policies": {"fetchHang": {"attemptTimeoutMs": 200, "maxRetries": 1, "baseDelayMs": 10, "deadlineMs": 2000}}}));
    fault(json!({"target": "echo", "mode": "hang", "duration_ms": 3000})).await;
    let started = now();
    let e = fetch(&b, "/api/demo/echo", json!({"tool": "fetchHang"})).await.expect_err("times out");
    let took = now() - started;
    http("DELETE", "/api/demo/faults", None).await;
    assert_eq!(e["code"], "retries_exhausted", "{e}");
    assert_eq!(e["cause_code"], "timeout", "{e}");
    assert_eq!(e["attempts"], 2.0);
    assert!((400.0..1500.0).contains(&took), "two 200 ms attempts, took {took} ms");
}

#[wasm_bindgen_test]
async fn fetch_is_cancelled_by_the_callers_signal() {
    let b = bridge(json!({"sockets": [], "report": false}));
    fault(json!({"target": "echo", "mode": "hang", "duration_ms": 3000})).await;
    let controller = web_sys::AbortController::new().unwrap();
    let p = b.fetch(format!("{}/api/demo/echo", backend()), JsValue::UNDEFINED, {
        let o = js_sys::Object::new();
        Reflect::set(&o, &"signal".into(), &controller.signal()).unwrap();
        o.into()
    });
    sleep(100).await;
    let started = now();
    controller.abort();
    let e = done(p).await.expect_err("cancelled");
    assert!(now() - started < 500.0);
    http("DELETE", "/api/demo/faults", None).await;
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "cancelled");
}

/// A plain browser WebSocket agent, independent of the bridge under test.
struct RawAgent {
    ws: web_sys::WebSocket,
    frames: Rc<RefCell<Vec<Value>>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl RawAgent {
    async fn register(name: &str) -> Self {
        let url = format!("{}/agents", backend().replacen("http", "ws", 1));
        let ws = web_sys::WebSocket::new(&url).unwrap();
        let frames = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&frames);
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            sink.borrow_mut().push(serde_json::from_str(&e.data().as_string().unwrap()).unwrap());
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        wait_for("the raw agent socket to open", 5000.0, || ws.ready_state() == web_sys::WebSocket::OPEN).await;
        let agent = Self { ws, frames, _on_message: on_message };
        agent.send(json!({"type": "hello", "protocol": 1, "client": name}));
        agent.send(json!({"type": "register", "id": "r", "agent": name, "takeover": true}));
        wait_for("the raw agent's register ack", 5000.0, || agent.frames.borrow().iter().any(|f| f["type"] == "ack"))
            .await;
        agent
    }
    fn send(&self, v: Value) {
        self.ws.send_with_str(&v.to_string()).unwrap();
    }
    fn messages(&self) -> Vec<Value> {
        self.frames.borrow().iter().filter(|f| f["type"] == "message").cloned().collect()
    }
}

async fn a2a_pair(receiver: &str) -> Bridge {
    let b = bridge(json!({"sockets": ["agents"], "report": false, "agent": {"name": unique("sender-")},
        "policies": {"connectAgentSocket": {"baseDelayMs": 20, "maxDelayMs": 100}}}));
    done(b.start()).await.unwrap();
    wait_for("the agents socket to open", 5000.0, || socket_state(&b, "agents") == "open").await;
    let _ = receiver;
    sleep(100).await;
    b
}

#[wasm_bindgen_test]
async fn send_a2a_across_a_forced_reconnect_is_delivered_exactly_once() {
    let receiver = unique("recv-");
    let agent = RawAgent::register(&receiver).await;
    let b = a2a_pair(&receiver).await;
    // The worst case: the server accepts the message, then the connection is cut before the
    // ack. The bridge re-sends with the same id after reconnecting; the server recognises it.
    fault(json!({"target": "agents", "mode": "cut_after_accept"})).await;
    let ack = rust(
        &done(b.send_a2a(js(json!({"to": receiver, "messageType": "note", "content": {"n": 1}}))))
            .await
            .expect("acked"),
    );
    assert_eq!(ack["duplicate"], true, "the re-sent message was recognised, not delivered again: {ack}");
    assert!(state(&b)["sockets"]["agents"]["reconnects"].as_u64().unwrap() >= 1);
    wait_for("the message", 5000.0, || !agent.messages().is_empty()).await;
    sleep(500).await;
    let got = agent.messages();
    assert_eq!(got.len(), 1, "exactly once: {got:?}");
    assert_eq!(got[0]["content"], json!({"n": 1}));
    agent.send(json!({"type": "ack", "id": got[0]["id"], "from": got[0]["from"]}));
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn send_a2a_while_disconnected_waits_in_the_outbox_and_goes_out_once() {
    let receiver = unique("recv-");
    // The receiver registers first, so the server knows the name whenever the re-sent
    // message arrives (the bridge may reconnect before the receiver is back).
    let _first = RawAgent::register(&receiver).await;
    let b = a2a_pair(&receiver).await;
    // Cut every agents connection: the bridge's and the receiver's.
    fault(json!({"target": "agents", "mode": "drop"})).await;
    let p = b.send_a2a(js(json!({"to": receiver, "messageType": "note", "content": 2})));
    // The receiver comes back (taking its name over) and gets the message, queued or live.
    let agent = RawAgent::register(&receiver).await;
    let ack = rust(&done(p).await.expect("acked after the reconnect"));
    assert_eq!(ack["type"], "ack", "{ack}");
    wait_for("the message", 5000.0, || !agent.messages().is_empty()).await;
    sleep(300).await;
    assert_eq!(agent.messages().len(), 1);
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_full_outbox_rejects_at_once_with_outbox_full() {
    let b =
        bridge(json!({"backendUrl": "http://127.0.0.1:9", "sockets": ["agents"], "report": false, "outboxLimit": 2,
        "policies": {"sendA2AMessage": {"maxRetries": 0, "attemptTimeoutMs": 60000}}}));
    done(b.start()).await.unwrap();
    let send = |n: u32| b.send_a2a(js(json!({"to": "nobody", "messageType": "note", "content": n})));
    let (_a, _b2) = (send(1), send(2));
    sleep(50).await;
    let started = now();
    let e = done(send(3)).await.expect_err("the outbox holds 2");
    assert!(now() - started < 100.0, "rejected at once");
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "outbox_full");
    done(b.stop()).await.unwrap();
}

/// Runs `body` (JS, with `db` the open `bridge-outbox` database and `store` its
/// readwrite store) and waits for its transaction to complete; resolves with `out`.
async fn outbox_db(body: &str, arg: JsValue) -> JsValue {
    let f = Function::new_with_args(
        "arg",
        &format!(
            "return new Promise((resolve, reject) => {{ const open = indexedDB.open('bridge-outbox', 1);
               open.onupgradeneeded = () => open.result.createObjectStore('entries', {{ keyPath: 'id' }});
               open.onerror = () => reject(open.error);
               open.onsuccess = () => {{ const db = open.result; const tx = db.transaction('entries', 'readwrite');
                 const store = tx.objectStore('entries'); let out = null; {body}
                 tx.oncomplete = () => resolve(out); tx.onerror = () => reject(tx.error); }}; }})"
        ),
    );
    done(f.call1(&JsValue::NULL, &arg).unwrap().unchecked_into()).await.unwrap()
}

#[wasm_bindgen_test]
async fn the_kept_outbox_is_bounded_and_cleared_when_requests_settle() {
    let b = bridge(json!({"backendUrl": "http://127.0.0.1:9", "sockets": ["agents"], "report": false,
        "agent": {"name": unique("kept-")}, "persistOutbox": {"maxEntries": 2},
        "policies": {"sendA2AMessage": {"maxRetries": 0, "attemptTimeoutMs": 60000}}}));
    done(b.start()).await.unwrap();
    let send = |n: u32| b.send_a2a(js(json!({"to": "nobody", "messageType": "note", "content": n})));
    let pending: Vec<Promise> = (1..=3).map(send).collect();
    wait_for("two kept, one refused", 3000.0, || {
        let k = &state(&b)["kept"];
        k["entries"] == 2 && k["refused"] == 1
    })
    .await;
    let all =
        rust(&outbox_db("const r = store.getAll(); r.onsuccess = () => { out = r.result; };", JsValue::NULL).await);
    let mine = all.as_array().unwrap().iter().filter(|e| e["bridge"] == b.id().as_str()).count();
    assert_eq!(mine, 2, "the two kept are in IndexedDB: {all}");
    // Stopping settles them (the page is told `stopped`): nothing is left to re-send.
    done(b.stop()).await.unwrap();
    for p in pending {
        let e = done(p).await.expect_err("stopped");
        assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "stopped");
    }
    assert_eq!(state(&b)["kept"]["entries"], 0);
}

#[wasm_bindgen_test]
async fn an_orphan_too_old_is_reported_expired_and_not_sent() {
    let bridge_id = unique("old-");
    let agent = unique("agent-");
    let entry = json!({"id": unique("gone-"), "bridge": bridge_id, "agent": agent, "instance": "a-page-long-gone",
        "socket": "agents", "tool": "sendA2AMessage", "created": now() - 10_000.0,
        "frame": r#"{"type":"send","id":"x","to":"nobody","message_type":"note","content":1}"#});
    outbox_db("store.put(arg);", js(entry.clone())).await;
    let b = bridge(json!({"bridgeId": bridge_id, "backendUrl": "http://127.0.0.1:9", "sockets": ["agents"],
        "report": false, "agent": {"name": agent}, "persistOutbox": {"maxAgeMs": 1000}}));
    let recovered = Collector::new();
    b.add_event_listener("recovered", recovered.function()).unwrap();
    done(b.start()).await.unwrap();
    wait_for("the expired entry's event", 3000.0, || recovered.len() == 1).await;
    let event = recovered.items.borrow()[0].clone();
    assert_eq!((event["id"].clone(), event["outcome"].clone()), (entry["id"].clone(), json!("expired")));
    assert_eq!(state(&b)["kept"]["expired"], 1);
    assert_eq!(state(&b)["kept"]["recovered"], 0);
    let left = outbox_db(
        "const r = store.get(arg); r.onsuccess = () => { out = r.result ?? null; };",
        js(entry["id"].clone()),
    )
    .await;
    assert!(left.is_null(), "deleted from IndexedDB");
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn health_changes_are_events_and_reports_reach_the_backend() {
    let b = bridge(json!({"healthIntervalMs": 200}));
    let changes = Collector::new();
    b.add_event_listener("health", changes.function()).unwrap();
    done(b.start()).await.unwrap();
    let settled = || {
        let h = state(&b)["health"].clone();
        ["backend", "evolutionSocket", "agentSocket"].iter().all(|c| h["components"][c]["status"] == "healthy")
    };
    wait_for("backend and both sockets to be healthy", 8000.0, settled).await;
    assert!(changes.items.borrow().iter().any(|c| c["aggregateTo"] == "healthy"));
    assert!(
        changes.items.borrow().iter().all(|c| c["to"] != "degraded" && c["to"] != "unhealthy"),
        "no spurious degradation while connecting: {:?}",
        changes.items.borrow()
    );
    let n = changes.len();
    sleep(600).await;
    assert_eq!(changes.len(), n, "no change, no event");
    let id = b.id();
    wait_for("the backend to hold this bridge's report", 5000.0, || {
        state(&b)["reportsSent"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let (_, list) = http("GET", "/api/bridges", None).await;
    let mine = list["bridges"].as_array().unwrap().iter().find(|x| x["bridgeId"] == id).cloned().expect("listed");
    assert_eq!(mine["report"]["health"]["status"], "healthy");
    assert_eq!(mine["stale"], false);
    done(b.stop()).await.unwrap();
}

/// `bridge.call(tool, fn)` as a page calls it: a method call on the JS object.
async fn call(bridge: &JsValue, tool: &str, f: &JsValue) -> Result<JsValue, JsValue> {
    let method: Function = Reflect::get(bridge, &"call".into()).unwrap().unchecked_into();
    let p: Promise = method.call2(bridge, &tool.into(), f).unwrap().unchecked_into();
    JsFuture::from(p).await
}

fn state_of(bridge: &JsValue) -> Value {
    let f: Function = Reflect::get(bridge, &"state".into()).unwrap().unchecked_into();
    rust(&f.call0(bridge).unwrap())
}

#[wasm_bindgen_test]
async fn call_keeps_the_policy_exact_on_its_fast_path() {
    let b: JsValue = bridge(json!({"sockets": [], "report": false, "policies": {"flaky": {"baseDelayMs": 5}}})).into();
    // Success on the first try, many times: counted, breaker closed, no retries.
    let ok = Closure::<dyn FnMut(JsValue) -> JsValue>::new(|_ctx| JsValue::from(7));
    for _ in 0..40 {
        assert_eq!(call(&b, "quick", ok.as_ref()).await.unwrap(), 7);
    }
    let s = state_of(&b);
    let quick = &s["retry"]["operations"]["quick"];
    assert_eq!(
        (quick["calls"].as_u64(), quick["attempts"].as_u64(), quick["retries"].as_u64()),
        (Some(40), Some(40), Some(0))
    );
    assert!(quick["latency"]["count"].as_u64().unwrap() >= 1, "a sample of calls is timed");
    let breaker = s["breakers"].as_array().unwrap().iter().find(|x| x["name"] == "quick").cloned().unwrap();
    assert_eq!((breaker["state"].as_str(), breaker["successes"].as_u64()), (Some("closed"), Some(40)));

    // Fails twice, then succeeds: exactly 3 attempts (the fast path's first try counts as attempt 1).
    let calls = Rc::new(RefCell::new(0));
    let c = Rc::clone(&calls);
    let flaky = Closure::<dyn FnMut(JsValue) -> Result<JsValue, JsValue>>::new(move |ctx: JsValue| {
        *c.borrow_mut() += 1;
        let attempt = Reflect::get(&ctx, &"attempt".into()).unwrap().as_f64().unwrap() as i32;
        assert_eq!(attempt, *c.borrow(), "attempts are numbered 1, 2, 3");
        if attempt < 3 { Err(js_sys::Error::new("flaky").into()) } else { Ok(JsValue::from(42)) }
    });
    assert_eq!(call(&b, "flaky", flaky.as_ref()).await.unwrap(), 42);
    assert_eq!(*calls.borrow(), 3);
    let flaky_m = &state_of(&b)["retry"]["operations"]["flaky"];
    assert_eq!((flaky_m["attempts"].as_u64(), flaky_m["retries"].as_u64()), (Some(3), Some(2)), "{flaky_m}");

    // A permanent error (a 404) is not retried.
    let permanent = Closure::<dyn FnMut(JsValue) -> Result<JsValue, JsValue>>::new(|_ctx| {
        Err(js(json!({"message": "no such user", "status": 404})))
    });
    let e = call(&b, "lookup", permanent.as_ref()).await.unwrap_err();
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "permanent");
    assert_eq!(state_of(&b)["retry"]["operations"]["lookup"]["attempts"], 1);

    // A rejected promise behaves like a throw.
    let rejecting = Closure::<dyn FnMut(JsValue) -> JsValue>::new(|_ctx| {
        Promise::reject(&js(json!({"message": "nope", "retryable": false}))).into()
    });
    let e = call(&b, "rejecting", rejecting.as_ref()).await.unwrap_err();
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "permanent");

    // An isolated breaker refuses at once, without calling fn.
    let isolate: Function = Reflect::get(&b, &"isolateBreaker".into()).unwrap().unchecked_into();
    assert_eq!(isolate.call1(&b, &"quick".into()).unwrap(), true);
    let never = Closure::<dyn FnMut(JsValue) -> JsValue>::new(|_ctx| panic!("an open breaker must not call fn"));
    let e = call(&b, "quick", never.as_ref()).await.unwrap_err();
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "circuit_open");
}

#[wasm_bindgen_test]
async fn stop_leaves_no_timer_socket_or_task_running() {
    let b = bridge(json!({"healthIntervalMs": 200, "reportIntervalMs": 300}));
    done(b.start()).await.unwrap();
    wait_for("both sockets to open", 5000.0, || {
        socket_state(&b, "evolution") == "open" && socket_state(&b, "agents") == "open"
    })
    .await;
    let _sub = b.subscribe(JsValue::from_str("x.*"), Collector::new().function()).unwrap();
    sleep(300).await;
    assert!(state(&b)["liveTimers"].as_u64().unwrap() > 0, "timers run while started");
    done(b.stop()).await.unwrap();
    sleep(100).await;
    let s = state(&b);
    assert_eq!(s["liveTimers"], 0, "every timer cleared: {s}");
    assert_eq!(s["sockets"]["evolution"]["state"], "stopped");
    assert_eq!(s["sockets"]["agents"]["state"], "stopped");
    let reports = s["reportsSent"].clone();
    sleep(700).await;
    assert_eq!(state(&b)["reportsSent"], reports, "no report after stop");
    // And it can start again.
    done(b.start()).await.unwrap();
    wait_for("the sockets to reopen", 5000.0, || socket_state(&b, "evolution") == "open").await;
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
fn invalid_config_names_the_field() {
    let e = Bridge::new(js(json!({"healthIntervalMs": 5}))).unwrap_err();
    assert_eq!(Reflect::get(&e, &"code".into()).unwrap(), "invalid_config");
    let m = Reflect::get(&e, &"message".into()).unwrap().as_string().unwrap();
    assert!(m.starts_with("config.healthIntervalMs"), "{m}");
}

#[wasm_bindgen_test]
async fn a_dead_first_node_moves_the_bridge_to_the_next_one() {
    let dead = "http://127.0.0.1:9";
    let b = bridge(json!({"backendUrl": [dead, backend()], "sockets": ["evolution"], "report": false,
        "policies": {"connectEvolutionSocket": {"baseDelayMs": 10, "maxDelayMs": 40}}}));
    let moves = Collector::new();
    b.add_event_listener("node", moves.function()).unwrap();
    done(b.start()).await.unwrap();
    wait_for("the socket to open on the live node", 5000.0, || socket_state(&b, "evolution") == "open").await;
    let s = state(&b);
    assert_eq!(s["node"], backend(), "{s}");
    assert_eq!(s["sockets"]["evolution"]["url"], format!("{}/evolution", backend().replacen("http", "ws", 1)));
    assert_eq!(moves.items.borrow().first().cloned(), Some(json!({"from": dead, "to": backend()})));
    let nodes: Vec<(String, bool, String)> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (n["url"].as_str().unwrap().into(), n["current"] == true, n["breaker"]["state"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(nodes, [(dead.into(), false, "open".into()), (backend().into(), true, "closed".into())]);
    done(b.stop()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_refused_upgrade_is_explained_by_the_node() {
    // A browser is not told why a WebSocket failed to open; the bridge asks the node.
    fault(json!({"target": "agents", "mode": "fail", "duration_ms": 1000})).await;
    let b = bridge(json!({"sockets": ["agents"], "report": false,
        "policies": {"connectAgentSocket": {"baseDelayMs": 10, "maxDelayMs": 40}},
        "breakers": {"connectAgentSocket": {"resetTimeoutMs": 300, "successThreshold": 1}}}));
    done(b.start()).await.unwrap();
    let mut seen = Vec::new();
    let started = now();
    let explained = loop {
        let e = state(&b)["sockets"]["agents"]["lastError"].as_str().unwrap_or("").to_owned();
        if e.contains("demo_fault") {
            break e;
        }
        if !seen.contains(&e) {
            seen.push(e);
        }
        assert!(now() - started < 3000.0, "no explanation within 3 s; errors seen: {seen:?}");
        sleep(5).await;
    };
    assert!(explained.contains("demo fault on agents"), "{explained}");
    assert_eq!(state(&b)["node"], backend(), "a node that answers is not left");
    wait_for("the socket to open once the fault ends", 8000.0, || socket_state(&b, "agents") == "open").await;
    done(b.stop()).await.unwrap();
}
