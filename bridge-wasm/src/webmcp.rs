//! WebMCP: the bridge's tools for AI agents on `document.modelContext`.
//!
//! Each tool runs under its own breaker and shows in the metrics under its own
//! name; its retry policy is the one configured under its name, else the
//! built-in policy of what it does (`send_llm_prompt` → `sendLLMPrompt`, …).
//! Results are `{content: [{type: "text", text}]}`; failures are results with
//! `isError: true` and the error code in the text. Every tool is registered
//! with one `AbortSignal`, so `stop()` unregisters them all at once.

use std::rc::Rc;

use bridge_core::protocol::{self, ClientFrame};
use bridge_core::report::WebMcpProvider;
use bridge_core::retry::names;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::bridge::{A2aMessage, Bridge, Inner};
use crate::resilience::{self, Shared};
use crate::socket::outbound;

/// The page's model context and where it comes from: `document.modelContext`
/// (the browser's, or a polyfill's), else `navigator.modelContext` (Chromium
/// builds from before the getter moved to `Document`). Looked up at each use,
/// so a polyfill loaded after the bridge is found too.
pub(crate) fn model_context() -> Option<(JsValue, WebMcpProvider)> {
    let window: JsValue = web_sys::window()?.into();
    let with_register = |owner: &JsValue| {
        let mc = crate::js::get(owner, "modelContext")?;
        let register = crate::js::get(&mc, "registerTool").filter(|f| f.is_function())?;
        Some((mc, register.unchecked_into::<js_sys::Function>()))
    };
    let document = crate::js::get(&window, "document");
    if let Some((mc, register)) = document.as_ref().and_then(&with_register) {
        // A browser's own methods print as `[native code]`; a script's print their source.
        let native = String::from(register.to_string()).contains("[native code]");
        return Some((mc, if native { WebMcpProvider::Native } else { WebMcpProvider::Polyfill }));
    }
    let navigator = crate::js::get(&window, "navigator")?;
    with_register(&navigator).map(|(mc, _)| (mc, WebMcpProvider::Navigator))
}

/// The provider's name as the page sees it (`state().webmcp.provider`).
pub(crate) fn provider_name(p: WebMcpProvider) -> &'static str {
    match p {
        WebMcpProvider::Native => "native",
        WebMcpProvider::Navigator => "navigator",
        WebMcpProvider::Polyfill => "polyfill",
    }
}

type Execute = Closure<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>;

/// Registered tools and what unregisters them.
#[derive(Default)]
pub(crate) struct WebMcp {
    requested: bool,
    controller: Option<web_sys::AbortController>,
    tools: Vec<(String, Execute)>,
}

impl std::fmt::Debug for WebMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebMcp").field("requested", &self.requested).field("tools", &self.names()).finish()
    }
}

impl WebMcp {
    pub(crate) fn names(&self) -> Vec<String> {
        self.tools.iter().map(|(n, _)| n.clone()).collect()
    }

    pub(crate) fn requested(&self) -> bool {
        self.requested
    }

    /// Unregisters every tool (aborting their signal) and releases the callbacks.
    pub(crate) fn unregister_all(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
        self.tools.clear();
    }

    fn signal(&mut self) -> Result<web_sys::AbortSignal, JsValue> {
        if self.controller.is_none() {
            self.controller = Some(web_sys::AbortController::new()?);
        }
        Ok(self.controller.as_ref().map(|c| c.signal()).expect("created above"))
    }
}

/// The policy a tool runs under: its own if configured, else the built-in one of what it does.
pub(crate) fn policy_for<'a>(shared: &Shared, tool: &'a str) -> &'a str {
    if shared.borrow().policies.named().any(|(n, _)| n == tool) {
        return tool;
    }
    match tool {
        "send_llm_prompt" => names::SEND_LLM_PROMPT,
        "send_a2a_message" | "a2a_broadcast" | "discover_a2a_agents" => names::SEND_A2A_MESSAGE,
        _ => tool,
    }
}

/// The built-in tools: name, description, input schema (JSON, parsed by the engine).
const BUILTIN: [(&str, &str, &str); 7] = [
    (
        "get_os_state",
        "The bridge's whole state: health of every component, every circuit breaker, retry metrics per tool, sockets and WebMCP.",
        r#"{"type":"object","properties":{"sections":{"type":"array","items":{"type":"string","enum":["health","breakers","retry","sockets","webmcp"]},"description":"Only these sections (default: all)."}}}"#,
    ),
    (
        "reliability_get_status",
        "Circuit breaker and health status, for one backend or tool (by breaker name) or for all.",
        r#"{"type":"object","properties":{"backend":{"type":"string","description":"A breaker name, e.g. connectEvolutionSocket or fetch:http://127.0.0.1:8765"}}}"#,
    ),
    (
        "send_a2a_message",
        "Send a message to another agent through the backend; it is delivered once, even across reconnects.",
        r#"{"type":"object","required":["to","message_type","content"],"properties":{"to":{"type":"string"},"message_type":{"type":"string"},"content":{},"priority":{"type":"string","enum":["low","normal","high"]},"expires_in_ms":{"type":"integer","minimum":1}}}"#,
    ),
    (
        "discover_a2a_agents",
        "List the agents known to the backend, optionally only those with a capability.",
        r#"{"type":"object","properties":{"capability":{"type":"string"}}}"#,
    ),
    (
        "a2a_broadcast",
        "Send a message to every other online agent.",
        r#"{"type":"object","required":["message_type","content"],"properties":{"message_type":{"type":"string"},"content":{}}}"#,
    ),
    (
        "trigger_evolution",
        "Ask the evolution handler to run (an evolution request with action \"evolve\"); returns its response.",
        r#"{"type":"object","properties":{"params":{"description":"Passed to the handler."},"timeout_ms":{"type":"integer","minimum":1}}}"#,
    ),
    (
        "send_llm_prompt",
        "Send a prompt to the LLM endpoint (OpenAI-compatible) and return the answer's text.",
        r#"{"type":"object","required":["prompt"],"properties":{"prompt":{"type":"string"},"model":{"type":"string"},"temperature":{"type":"number"},"max_tokens":{"type":"integer"},"system_prompt":{"type":"string"}}}"#,
    ),
];

fn text_result(text: &str, is_error: bool) -> JsValue {
    let part = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&part, &"type".into(), &"text".into());
    let _ = js_sys::Reflect::set(&part, &"text".into(), &text.into());
    let result = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&result, &"content".into(), &js_sys::Array::of1(&part));
    if is_error {
        let _ = js_sys::Reflect::set(&result, &"isError".into(), &JsValue::TRUE);
    }
    result.into()
}

/// A tool's outcome as a WebMCP result (never a rejection: failures are `isError` results).
fn to_result(outcome: Result<JsValue, JsValue>) -> JsValue {
    match outcome {
        Ok(v) if crate::js::get(&v, "content").is_some_and(|c| js_sys::Array::is_array(&c)) => v,
        Ok(v) => text_result(&crate::js::to_json(&v).unwrap_or_else(|_| "null".into()), false),
        Err(e) => {
            let code = crate::js::get(&e, "code").and_then(|c| c.as_string()).unwrap_or_else(|| "error".into());
            text_result(&format!("{code}: {}", crate::js::message_of(&e)), true)
        }
    }
}

/// Runs built-in tool `name` with `input`.
async fn run_builtin(bridge: Bridge, name: String, input: JsValue) -> Result<JsValue, JsValue> {
    let arg = |k: &str| crate::js::get(&input, k);
    match name.as_str() {
        "get_os_state" => {
            let state = bridge.state_js()?;
            let sections = arg("sections")
                .map(|s| js_sys::Array::from(&s).iter().filter_map(|x| x.as_string()).collect::<Vec<_>>());
            let state = match sections {
                Some(keep) if !keep.is_empty() => {
                    let out = js_sys::Object::new();
                    for k in
                        ["bridgeId", "instance", "version", "ts", "uptimeMs"].iter().map(|s| s.to_string()).chain(keep)
                    {
                        if let Some(v) = crate::js::get(&state, &k) {
                            let _ = js_sys::Reflect::set(&out, &k.into(), &v);
                        }
                    }
                    out.into()
                }
                _ => state,
            };
            record_local(&bridge, &name);
            Ok(state)
        }
        "reliability_get_status" => {
            let report = bridge.report(bridge_core::breaker::TRANSITION_HISTORY);
            let backend = arg("backend").and_then(|b| b.as_string());
            let breakers: Vec<_> =
                report.breakers.iter().filter(|b| backend.as_ref().is_none_or(|n| &b.name == n)).collect();
            if let Some(n) = &backend
                && breakers.is_empty()
            {
                let known: Vec<_> = report.breakers.iter().map(|b| b.name.as_str()).collect();
                return Err(crate::js::coded_error(
                    "not_found",
                    &format!("no breaker named \"{n}\"; known: {}", known.join(", ")),
                    None,
                    &[],
                ));
            }
            record_local(&bridge, &name);
            #[derive(serde::Serialize)]
            struct Status<'a> {
                health: &'a bridge_core::health::HealthSnapshot,
                breakers: Vec<&'a bridge_core::breaker::BreakerSnapshot>,
            }
            crate::js::to_js(&Status { health: &report.health, breakers })
        }
        "send_a2a_message" => bridge.send_a2a(&name, A2aMessage::from_js(&input)?).await,
        "discover_a2a_agents" => discover(&bridge, &name, arg("capability").and_then(|c| c.as_string())).await,
        "a2a_broadcast" => {
            let message_type = arg("message_type").and_then(|m| m.as_string()).unwrap_or_default();
            broadcast(&bridge, &name, message_type, arg("content").unwrap_or(JsValue::NULL)).await
        }
        "trigger_evolution" => {
            let timeout = arg("timeout_ms").and_then(|t| t.as_f64()).map(|t| t as u64);
            request(&bridge, &name, "evolve".into(), arg("params").unwrap_or(JsValue::NULL), timeout).await
        }
        "send_llm_prompt" => crate::llm::prompt(&bridge, &name, crate::llm::Prompt::from_js(&input)?).await,
        other => Err(crate::js::coded_error("not_found", &format!("no built-in tool {other}"), None, &[])),
    }
}

/// Records a purely local tool run in the metrics (it cannot fail transiently).
fn record_local(bridge: &Inner, tool: &str) {
    let summary = bridge_core::retry::driver::RunSummary {
        attempts: 1,
        retries: 0,
        total_delay: std::time::Duration::ZERO,
        latency_us: 0,
        outcome: bridge_core::retry::Outcome::Succeeded,
    };
    bridge.resilience.borrow_mut().metrics.record(tool, &summary, None);
}

/// `discover` under `tool`.
pub(crate) async fn discover(bridge: &Bridge, tool: &str, capability: Option<String>) -> Result<JsValue, JsValue> {
    let socket =
        bridge.agents().map_err(|a| crate::js::coded_error("not_configured", &a.failure.describe(), None, &[]))?;
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .socket_request(socket, tool, policy, &|id| {
            ClientFrame::Discover(protocol::Discover { id: id.clone(), capability: capability.clone() }).to_json()
        })
        .await
        .map_err(|e| resilience::to_js_error(tool, &e))?;
    Ok(crate::js::get(&reply, "agents").unwrap_or(reply))
}

/// `broadcast` under `tool`.
pub(crate) async fn broadcast(
    bridge: &Bridge,
    tool: &str,
    message_type: String,
    content: JsValue,
) -> Result<JsValue, JsValue> {
    let socket =
        bridge.agents().map_err(|a| crate::js::coded_error("not_configured", &a.failure.describe(), None, &[]))?;
    protocol::rules::check_label("message_type", &message_type)
        .map_err(|m| crate::js::coded_error("invalid_argument", &m, None, &[]))?;
    let content = crate::js::to_json(&content)?;
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .socket_request(socket, tool, policy, &|id| outbound::broadcast(id, &message_type, &content))
        .await
        .map_err(|e| resilience::to_js_error(tool, &e))?;
    Ok(reply)
}

/// An evolution `request` under `tool`; resolves with the handler's result.
pub(crate) async fn request(
    bridge: &Bridge,
    tool: &str,
    action: String,
    params: JsValue,
    timeout_ms: Option<u64>,
) -> Result<JsValue, JsValue> {
    let socket =
        bridge.evolution().map_err(|a| crate::js::coded_error("not_configured", &a.failure.describe(), None, &[]))?;
    protocol::rules::check_topic(&action).map_err(|m| crate::js::coded_error("invalid_argument", &m, None, &[]))?;
    let params = if params.is_undefined() || params.is_null() { None } else { Some(crate::js::to_json(&params)?) };
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .kept_request(socket, tool, policy, &|id| outbound::request(id, &action, params.as_deref(), timeout_ms))
        .await
        .map_err(|e| resilience::to_js_error(tool, &e))?;
    // A `response`: ok with a result, or the handler's own error.
    if crate::js::get(&reply, "ok").and_then(|v| v.as_bool()) == Some(true) {
        return Ok(crate::js::get(&reply, "result").unwrap_or(JsValue::NULL));
    }
    let error = crate::js::get(&reply, "error");
    let code = error
        .as_ref()
        .and_then(|e| crate::js::get(e, "code"))
        .and_then(|c| c.as_string())
        .unwrap_or_else(|| "error".into());
    let message =
        error.as_ref().and_then(|e| crate::js::get(e, "message")).and_then(|c| c.as_string()).unwrap_or_default();
    Err(crate::js::coded_error(
        "handler_error",
        &format!("the handler failed: {code}: {message}"),
        None,
        &[("response", reply)],
    ))
}

fn register_one(
    bridge: &Bridge,
    mc: &JsValue,
    signal: &web_sys::AbortSignal,
    name: &str,
    description: &str,
    schema: &JsValue,
    execute: Execute,
) -> Result<(), JsValue> {
    let descriptor = js_sys::Object::new();
    js_sys::Reflect::set(&descriptor, &"name".into(), &name.into())?;
    js_sys::Reflect::set(&descriptor, &"description".into(), &description.into())?;
    js_sys::Reflect::set(&descriptor, &"inputSchema".into(), schema)?;
    js_sys::Reflect::set(&descriptor, &"execute".into(), execute.as_ref())?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), signal)?;
    let register: js_sys::Function = crate::js::get(mc, "registerTool").ok_or("no registerTool")?.unchecked_into();
    let returned = register.call2(mc, &descriptor, &options)?;
    if let Ok(p) = returned.dyn_into::<js_sys::Promise>() {
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = JsFuture::from(p).await {
                crate::js::warn("registering a WebMCP tool failed", &e);
            }
        });
    }
    bridge.webmcp.borrow_mut().tools.push((name.to_owned(), execute));
    Ok(())
}

/// Registers the built-in tools; returns their names (empty when WebMCP is absent)
/// and the provider they went to.
pub(crate) fn register_builtin(bridge: &Bridge) -> Result<(Vec<String>, Option<WebMcpProvider>), JsValue> {
    bridge.webmcp.borrow_mut().requested = true;
    let Some((mc, provider)) = model_context() else { return Ok((Vec::new(), None)) };
    let signal = bridge.webmcp.borrow_mut().signal()?;
    let already = bridge.webmcp.borrow().names();
    let mut names = Vec::new();
    for (name, description, schema) in BUILTIN {
        if already.iter().any(|n| n == name) {
            continue;
        }
        let b = Rc::clone(bridge);
        let execute =
            Closure::<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>::new(move |input: JsValue, _opts: JsValue| {
                let b = Rc::clone(&b);
                crate::promise(async move { Ok(to_result(run_builtin(b, name.to_owned(), input).await)) })
            });
        register_one(bridge, &mc, &signal, name, description, &js_sys::JSON::parse(schema)?, execute)?;
        names.push(name.to_owned());
    }
    bridge.changed.notify();
    Ok((names, Some(provider)))
}

/// Registers a page tool `descriptor` (`{name, description, inputSchema, execute}`), wrapped
/// in its own breaker and a policy (options `{policy: {maxRetries, ...}}`).
pub(crate) fn register_page_tool(bridge: &Bridge, descriptor: &JsValue, options: &JsValue) -> Result<bool, JsValue> {
    let invalid = |m: &str| crate::js::coded_error("invalid_argument", m, None, &[]);
    let name = crate::js::get(descriptor, "name")
        .and_then(|n| n.as_string())
        .ok_or_else(|| invalid("registerTool: descriptor.name is required"))?;
    let page_execute: js_sys::Function = crate::js::get(descriptor, "execute")
        .filter(|f| f.is_function())
        .ok_or_else(|| invalid("registerTool: descriptor.execute must be a function"))?
        .unchecked_into();
    let description = crate::js::get(descriptor, "description").and_then(|d| d.as_string()).unwrap_or_default();
    let schema = crate::js::get(descriptor, "inputSchema").unwrap_or_else(|| js_sys::Object::new().into());
    if let Some(p) = crate::js::get(options, "policy") {
        let ov = crate::read::Obj::new(&p, "options.policy")
            .and_then(|o| o.map(crate::config::policy_override).transpose())
            .map_err(|e| invalid(&format!("registerTool: {e}")))?
            .unwrap_or_default();
        bridge
            .resilience
            .borrow_mut()
            .policies
            .apply_overrides([(name.as_str(), &ov)])
            .map_err(|e| invalid(&format!("registerTool: options.policy: {e}")))?;
    }
    bridge.webmcp.borrow_mut().requested = true;
    let Some((mc, _)) = model_context() else { return Ok(false) };
    let signal = bridge.webmcp.borrow_mut().signal()?;
    let b = Rc::clone(bridge);
    let tool = name.clone();
    let execute =
        Closure::<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>::new(move |input: JsValue, opts: JsValue| {
            let (b, tool, f) = (Rc::clone(&b), tool.clone(), page_execute.clone());
            crate::promise(async move {
                let (result, _) = resilience::run(&b.resilience, &tool, &tool, None, resilience::never(), &mut |_| {
                    let value = f.call2(&JsValue::NULL, &input, &opts);
                    Box::pin(async move {
                        let v = value.map_err(|e| resilience::Attempt::with_cause(crate::call::classify(&e), e))?;
                        match v.dyn_into::<js_sys::Promise>() {
                            Ok(p) => JsFuture::from(p)
                                .await
                                .map_err(|e| resilience::Attempt::with_cause(crate::call::classify(&e), e)),
                            Err(v) => Ok(v),
                        }
                    })
                })
                .await;
                Ok(to_result(result.map_err(|e| resilience::to_js_error(&tool, &e))))
            })
        });
    register_one(bridge, &mc, &signal, &name, &description, &schema, execute)?;
    bridge.changed.notify();
    Ok(true)
}
