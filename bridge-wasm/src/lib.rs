//! The browser bridge, compiled to WebAssembly and imported by a page:
//!
//! ```js
//! import init, { Bridge } from "/pkg/bridge_wasm.js";
//! await init();
//! const bridge = new Bridge({ healthIntervalMs: 10000 });
//! bridge.addEventListener("health", (change) => console.log(change));
//! await bridge.start();
//! const unsubscribe = await bridge.subscribe(["evolution.*"], (event) => console.log(event.data));
//! const response = await bridge.fetch("/api/data");
//! ```
//!
//! Full API: `docs/bridge.md`; types: `pkg/bridge_wasm.d.ts`.
//!
//! # Layout
//!
//! - [`platform`]: the browser at the seam (clock, timers, randomness, task lifetime).
//! - [`config`]: `new Bridge(config)`, validated.
//! - [`resilience`]: policies, breakers, budgets, metrics, and running an operation under them.
//! - [`socket`]: the resilient evolution and agents sockets.
//! - [`fetch`], [`call`], [`llm`]: requests and page functions under a tool's policy.
//! - [`health`]: polling, `health` events, state reports.
//! - [`webmcp`]: the tools for AI agents.
//! - [`bridge`]: the shared state behind the JS class; [`events`]: listeners; [`js`]: the JS edge.

use std::rc::Rc;

use crate::js::Code;
use bridge_core::random::SeededRandom;
use bridge_core::retry::PolicySet;
use bridge_core::time::duration_ms;
use js::promise;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

mod backends;
mod bridge;
mod call;
mod config;
mod events;
mod fetch;
mod health;
mod idb;
pub mod js;
mod lifecycle;
mod llm;
mod locks;
mod model_context;
mod ops;
mod persist;
mod platform;
mod read;
mod resilience;
mod share;
mod socket;
mod types;
mod webmcp;

#[wasm_bindgen(module = "/js/call.js")]
extern "C" {
    #[wasm_bindgen(js_name = callFastPath)]
    fn call_fast_path() -> Function;
}

thread_local! {
    /// `call()`'s JS function, fetched once.
    static CALL: Function = call_fast_path();
}

/// The bridge's version.
#[wasm_bindgen]
pub fn version() -> String {
    bridge_core::VERSION.to_owned()
}

/// The built-in per-tool retry policies, by name, plus `default`.
#[wasm_bindgen(js_name = defaultPolicies, unchecked_return_type = "Record<string, object>")]
pub fn default_policies() -> Result<JsValue, JsValue> {
    let set = PolicySet::default();
    let map: bridge_core::vecmap::VecMap<&str, &bridge_core::retry::RetryPolicy> =
        set.named().chain([("default", set.default_policy())]).collect();
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

/// A subscription to evolution events; `unsubscribe()` ends it.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Subscription {
    bridge: bridge::Bridge,
    id: u32,
}

#[wasm_bindgen]
impl Subscription {
    /// Stops delivering events to this subscription's callback. Returns false if it had already ended.
    pub fn unsubscribe(&self) -> bool {
        self.bridge.evolution.as_ref().is_some_and(|s| s.unsubscribe(self.id))
    }
}

/// The bridge. See `docs/bridge.md`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Bridge {
    inner: bridge::Bridge,
}

#[wasm_bindgen]
impl Bridge {
    /// Creates a bridge; throws an `Error` with `code: "invalid_config"` naming the field when `config` is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "BridgeConfig")] config: JsValue) -> Result<Bridge, JsValue> {
        let window = web_sys::window();
        let origin = window.as_ref().and_then(|w| w.location().origin().ok()).filter(|o| o.starts_with("http"));
        let storage = window.as_ref().and_then(|w| w.local_storage().ok().flatten());
        let stored = storage.as_ref().and_then(|s| s.get_item(config::BRIDGE_ID_KEY).ok().flatten());
        let cfg = config::Config::parse(
            &config,
            origin,
            || stored,
            |id| {
                if let Some(s) = &storage {
                    let _ = s.set_item(config::BRIDGE_ID_KEY, id);
                }
            },
            || format!("b-{}", platform::random_id(12)),
        )
        .map_err(|e| Code::InvalidConfig.error(&e.0))?;
        Ok(Bridge { inner: bridge::Inner::new(cfg) })
    }

    /// This bridge's id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.config.bridge_id.clone()
    }

    /// Connects the sockets and starts health polling and reporting. Resolves at once;
    /// watch `health` events or `state()` for the connections.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(&self) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move {
            if b.is_started() {
                return Ok(JsValue::UNDEFINED);
            }
            let lifetime = platform::Lifetime::default();
            *b.lifetime.borrow_mut() = lifetime.clone();
            b.started_at.set(Some(platform::now()));
            b.page.listen();
            // Join the other tabs of this origin: one of them (maybe this one) keeps the sockets.
            let weak = Rc::downgrade(&b);
            b.share.set_handler(Box::new(move |incoming| {
                if let Some(b) = weak.upgrade() {
                    b.from_other_tab(incoming);
                }
            }));
            b.share.start().await;
            // A frozen or cached page runs nothing: it hands the lead over, and queues again on return.
            let share = Rc::downgrade(&b.share);
            b.page.on_moment(Box::new(move |moment| {
                if let Some(share) = share.upgrade() {
                    match moment {
                        lifecycle::Moment::Leaving => share.step_down(),
                        lifecycle::Moment::Returning => share.rejoin(),
                    }
                }
            }));
            b.post_patterns();
            // What an earlier page load left waiting goes out first (the sockets are not open yet).
            b.claim_and_recover().await;
            // A tab that takes the lead claims what the leader it replaces left.
            let leading = Rc::clone(&b);
            lifetime.spawn(async move {
                loop {
                    leading.role_changed.notified().await;
                    if leading.share.is_leader() {
                        leading.claim_and_recover().await;
                    }
                }
            });
            for s in [&b.evolution, &b.agents].into_iter().flatten() {
                s.set_lifetime(lifetime.clone());
                lifetime.spawn(Rc::clone(s).maintain());
            }
            lifetime.spawn(health::poll(Rc::clone(&b)));
            // Reports (when configured), and a leading tab's word to the others.
            if b.config.report || b.share.role() != share::Role::Alone {
                lifetime.spawn(health::report(Rc::clone(&b)));
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Releases every socket, timer, listener and registered tool. Waiting requests
    /// fail with `code: "stopped"`. A stopped bridge can be started again.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn stop(&self) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move {
            b.webmcp.borrow_mut().unregister_all();
            b.lifetime().stop();
            b.page.unlisten();
            b.persist.stop();
            b.watched_owners.borrow_mut().clear();
            b.share.stop();
            for s in [&b.evolution, &b.agents].into_iter().flatten() {
                s.shutdown();
            }
            b.started_at.set(None);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Subscribes `callback` to evolution events on `topics` (a name, `*`, `prefix.*`, or an array);
    /// returns a `Subscription`. Events resume after reconnects without loss or duplicates;
    /// a `reset` event says when the server could not replay what was missed.
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | string[]")] topics: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: EvolutionEvent) => void")] callback: Function,
    ) -> Result<Subscription, JsValue> {
        let socket = self.inner.evolution().map_err(|a| Code::NotConfigured.error(&a.failure.describe()))?;
        let topics: Vec<String> = match topics.as_string() {
            Some(t) => vec![t],
            None => js_sys::Array::from(&topics).iter().filter_map(|t| t.as_string()).collect(),
        };
        if topics.is_empty() {
            return Err(Code::InvalidArgument.error("subscribe: give a topic or an array of topics"));
        }
        for t in &topics {
            bridge_core::protocol::rules::check_pattern(t)
                .map_err(|m| Code::InvalidArgument.error(&format!("subscribe: {m}")))?;
        }
        let id = socket.subscribe(topics, callback);
        Ok(Subscription { bridge: Rc::clone(&self.inner), id })
    }

    /// Sends an evolution request for `action` with `params`; resolves with the handler's result.
    /// `options`: `{timeoutMs, tool}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn request(
        &self,
        action: String,
        #[wasm_bindgen(unchecked_param_type = "unknown")] params: JsValue,
        #[wasm_bindgen(unchecked_param_type = "{ timeoutMs?: number; tool?: string }")] options: JsValue,
    ) -> Promise {
        let b = Rc::clone(&self.inner);
        let tool = js::get(&options, "tool").and_then(|t| t.as_string()).unwrap_or_else(|| ops::REQUEST.into());
        let timeout = js::get(&options, "timeoutMs").and_then(|t| t.as_f64()).map(|t| t as u64);
        promise(async move { ops::request(&b, &tool, action, params, timeout).await })
    }

    /// Registers this page's agent (re-registered automatically after every reconnect).
    #[wasm_bindgen(js_name = registerAgent)]
    #[wasm_bindgen(unchecked_return_type = "Promise<{ type: \"ack\"; id: string; queued: number }>")]
    pub fn register_agent(&self, name: String, capabilities: Option<Vec<String>>) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move { ops::register_agent(&b, name, capabilities.unwrap_or_default()).await })
    }

    /// Sends `{to, messageType, content, priority?, expiresInMs?}` to an agent; resolves once
    /// the backend acked it (`{status: "delivered" | "queued"}`). Takes effect exactly once,
    /// even across reconnects.
    #[wasm_bindgen(js_name = sendA2A)]
    #[wasm_bindgen(unchecked_return_type = "Promise<A2aAck>")]
    pub fn send_a2a(&self, #[wasm_bindgen(unchecked_param_type = "A2aMessage")] message: JsValue) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move { ops::send(&b, ops::A2aMessage::from_js(&message)?).await })
    }

    /// Lists agents (optionally only those with `capability`).
    #[wasm_bindgen(unchecked_return_type = "Promise<AgentInfo[]>")]
    pub fn discover(&self, capability: Option<String>) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move { ops::discover(&b, ops::DISCOVER, capability).await })
    }

    /// Sends a message to every other online agent; resolves with `{recipients}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<{ type: \"ack\"; recipients: number }>")]
    pub fn broadcast(
        &self,
        message_type: String,
        #[wasm_bindgen(unchecked_param_type = "unknown")] content: JsValue,
    ) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move { ops::broadcast(&b, ops::BROADCAST, message_type, content).await })
    }

    /// Calls `callback(message)` for each agent message; the message is acknowledged after the
    /// callback returns (or its promise resolves). Same as `addEventListener("message", cb)`.
    #[wasm_bindgen(js_name = onMessage)]
    pub fn on_message(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(message: AgentMessage) => void | Promise<void>")] callback: Function,
    ) -> Result<(), JsValue> {
        self.inner.events.add("message", callback).map_err(|m| Code::LimitExceeded.error(&m))
    }

    /// `fetch(url, init)` under the `fetch` policy (or `options.tool`'s) and the origin's breaker.
    /// `options.signal` cancels every attempt. Resolves with the `Response`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        url: String,
        #[wasm_bindgen(unchecked_param_type = "RequestInit | undefined")] init: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FetchOptions | undefined")] options: JsValue,
    ) -> Promise {
        let shared = Rc::clone(&self.inner.resilience);
        let changed = self.inner.changed.clone();
        let backends = Rc::clone(&self.inner.backends);
        let options = fetch::FetchOptions::from_js(&options);
        promise(async move {
            let r = fetch::fetch(shared, backends, url, init, options).await;
            changed.notify();
            r.map(JsValue::from)
        })
    }

    /// `call(tool, fn)`: runs `fn` (sync or async; it gets `{attempt}`) under tool `tool`'s
    /// policy and breaker. A getter returning the JS function that does it, so the
    /// success path stays in JS (see `js/call.js`); call it as `bridge.call(tool, fn)`.
    #[wasm_bindgen(getter, js_name = call, unchecked_return_type = "<T>(tool: string, fn: (context: { attempt: number; timeoutMs?: number }) => T | Promise<T>) => Promise<T>")]
    pub fn call_fn(&self) -> Function {
        CALL.with(Clone::clone)
    }

    #[doc(hidden)]
    #[wasm_bindgen(js_name = __toolId, skip_typescript)]
    pub fn tool_id(&self, name: String) -> i32 {
        self.inner.call_tools.borrow_mut().id(name)
    }

    #[doc(hidden)]
    #[wasm_bindgen(js_name = __admit, skip_typescript)]
    pub fn admit(&self, id: u32) -> f64 {
        let tools = self.inner.call_tools.borrow();
        tools.name(id).map_or(-1.0, |name| call::admit(&self.inner.resilience, name))
    }

    #[doc(hidden)]
    #[wasm_bindgen(js_name = __done, skip_typescript)]
    pub fn done(&self, id: u32, permit: f64, latency_ms: f64) {
        if let Some(name) = self.inner.call_tools.borrow().name(id) {
            call::done(&self.inner.resilience, name, permit, latency_ms);
        }
    }

    #[doc(hidden)]
    #[wasm_bindgen(js_name = __failed, skip_typescript)]
    pub fn failed(&self, id: u32, permit: f64, error: JsValue, f: Function, started_ms: f64) -> Promise {
        let tool = self.inner.call_tools.borrow().name(id).unwrap_or("call").to_owned();
        let (shared, changed) = (Rc::clone(&self.inner.resilience), self.inner.changed.clone());
        promise(async move {
            let r = call::failed(shared, tool, permit, error, f, started_ms).await;
            changed.notify();
            r
        })
    }

    #[doc(hidden)]
    #[wasm_bindgen(js_name = __slow, skip_typescript)]
    pub fn slow(&self, tool: String, f: Function) -> Promise {
        let (shared, changed) = (Rc::clone(&self.inner.resilience), self.inner.changed.clone());
        promise(async move {
            let r = call::call(shared, tool, f).await;
            changed.notify();
            r
        })
    }

    /// Sends a prompt (`{prompt, model?, temperature?, max_tokens?, system_prompt?}`) to the LLM
    /// endpoint; resolves with `{text, model, usage}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<{ text: string; model: unknown; usage: unknown }>")]
    pub fn prompt(&self, #[wasm_bindgen(unchecked_param_type = "Prompt")] input: JsValue) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move { ops::prompt(&b, &input).await })
    }

    /// Everything the bridge knows: health, breakers, retry metrics, sockets, WebMCP.
    /// The same JSON as the `get_os_state` tool and the report sent to the backend.
    #[wasm_bindgen(unchecked_return_type = "BridgeState")]
    pub fn state(&self) -> Result<JsValue, JsValue> {
        self.inner.state_js()
    }

    /// Closes breaker `name` by hand; false if there is no such breaker.
    #[wasm_bindgen(js_name = resetBreaker)]
    pub fn reset_breaker(&self, name: &str) -> bool {
        let done =
            self.inner.resilience.borrow_mut().breakers.get_mut(name).map(|b| b.reset(platform::now())).is_some();
        self.inner.changed.notify();
        done
    }

    /// Opens breaker `name` by hand until `resetBreaker`; false if there is no such breaker.
    #[wasm_bindgen(js_name = isolateBreaker)]
    pub fn isolate_breaker(&self, name: &str) -> bool {
        let done =
            self.inner.resilience.borrow_mut().breakers.get_mut(name).map(|b| b.isolate(platform::now())).is_some();
        self.inner.changed.notify();
        done
    }

    /// Listens for `health`, `reset`, `message`, `presence` and `node` (a move to another backend node) events.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof BridgeEventMap")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(detail: any) => void")] callback: Function,
    ) -> Result<(), JsValue> {
        const KINDS: [&str; 6] = ["health", "reset", "message", "presence", "node", "recovered"];
        if !KINDS.contains(&kind) {
            let known = KINDS.join(", ");
            return Err(Code::InvalidArgument.error(&format!("unknown event \"{kind}\"; use one of {known}")));
        }
        self.inner.events.add(kind, callback).map_err(|m| Code::LimitExceeded.error(&m))
    }

    /// Removes a listener added with `addEventListener`.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(&self, kind: &str, callback: Function) {
        self.inner.events.remove(kind, &callback);
    }

    /// Same as `addEventListener("health", callback)`.
    #[wasm_bindgen(js_name = onHealthChange)]
    pub fn on_health_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(change: HealthChange) => void")] callback: Function,
    ) -> Result<(), JsValue> {
        self.add_event_listener("health", callback)
    }

    /// Runs the health checks now (and reports if anything changed); resolves with the health.
    #[wasm_bindgen(js_name = checkHealth)]
    #[wasm_bindgen(unchecked_return_type = "Promise<BridgeState[\"health\"]>")]
    pub fn check_health(&self) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move {
            health::check_all(&b).await;
            js::to_js(&b.health.borrow().snapshot())
        })
    }

    /// Sends a state report now; resolves when the backend accepted it.
    #[wasm_bindgen(js_name = sendReport)]
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn send_report(&self) -> Promise {
        let b = Rc::clone(&self.inner);
        promise(async move {
            health::send_report(&b, false).await.map_err(|m| Code::ReportFailed.error(&m))?;
            Ok(JsValue::from(b.report_seq.get() as f64))
        })
    }

    /// Registers the bridge's tools on the page's model context (`document.modelContext`,
    /// the browser's or a polyfill's, else `navigator.modelContext`); returns their names
    /// (empty without one), with `provider` saying which it was. `stop()` unregisters them.
    #[wasm_bindgen(js_name = registerWebMcpTools)]
    #[wasm_bindgen(unchecked_return_type = "string[] & { provider: \"native\" | \"navigator\" | \"polyfill\" | null }")]
    pub fn register_webmcp_tools(&self) -> Result<JsValue, JsValue> {
        let (names, provider) = webmcp::register_builtin(&self.inner)?;
        let list: js_sys::Array = names.iter().map(|n| JsValue::from(n.as_str())).collect();
        let provider = provider.map_or(JsValue::NULL, |p| model_context::provider_name(p).into());
        js_sys::Reflect::set(&list, &"provider".into(), &provider)?;
        Ok(list.into())
    }

    /// Registers a page tool on WebMCP, wrapped in its own breaker and `options.policy`.
    /// Returns false when the browser has no WebMCP.
    #[wasm_bindgen(js_name = registerTool)]
    pub fn register_tool(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string; description?: string; inputSchema?: object; execute: (input: any, options: { signal: AbortSignal }) => unknown }"
        )]
        descriptor: JsValue,
        #[wasm_bindgen(unchecked_param_type = "{ policy?: PolicyOverride } | undefined")] options: JsValue,
    ) -> Result<bool, JsValue> {
        webmcp::register_page_tool(&self.inner, &descriptor, &options)
    }
}
