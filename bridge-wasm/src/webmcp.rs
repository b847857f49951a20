//! WebMCP: the bridge's tools for AI agents on the page's model context.
//!
//! A tool that runs one of the page's operations runs it under the operation's
//! name (`send_a2a_message` as `sendA2AMessage`, see `ops`): one policy, one
//! breaker and one metrics entry whether the page or an agent calls it. A page
//! tool (`registerTool`) runs under its own name.
//! Results are `{content: [{type: "text", text}]}`; failures are results with
//! `isError: true` and the error code in the text. Every tool is registered
//! with one `AbortSignal`, so `stop()` unregisters them all at once.

use std::rc::Rc;

use bridge_core::report::WebMcpProvider;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::bridge::{Bridge, Inner};
use crate::js::Code;
use crate::model_context::{Execute, model_context};
use crate::ops::{self, A2aMessage};
use crate::resilience;

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
                return Err(Code::NotFound.error(&format!("no breaker named \"{n}\"; known: {}", known.join(", "))));
            }
            record_local(&bridge, &name);
            #[derive(serde::Serialize)]
            struct Status<'a> {
                health: &'a bridge_core::health::HealthSnapshot,
                breakers: Vec<&'a bridge_core::breaker::BreakerSnapshot>,
            }
            crate::js::to_js(&Status { health: &report.health, breakers })
        }
        // The agent's tools run the page's operations, under the same names (see `ops`).
        "send_a2a_message" => ops::send(&bridge, A2aMessage::from_js(&input)?).await,
        "discover_a2a_agents" => {
            ops::discover(&bridge, ops::DISCOVER, arg("capability").and_then(|c| c.as_string())).await
        }
        "a2a_broadcast" => {
            let message_type = arg("message_type").and_then(|m| m.as_string()).unwrap_or_default();
            ops::broadcast(&bridge, ops::BROADCAST, message_type, arg("content").unwrap_or(JsValue::NULL)).await
        }
        "trigger_evolution" => {
            let timeout = arg("timeout_ms").and_then(|t| t.as_f64()).map(|t| t as u64);
            let params = arg("params").unwrap_or(JsValue::NULL);
            ops::request(&bridge, ops::REQUEST, "evolve".into(), params, timeout).await
        }
        "send_llm_prompt" => ops::prompt(&bridge, &input).await,
        other => Err(Code::NotFound.error(&format!("no built-in tool {other}"))),
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
    bridge.webmcp.borrow_mut().add(name, execute);
    Ok(())
}

/// Registers the built-in tools; returns their names (empty when WebMCP is absent)
/// and the provider they went to.
pub(crate) fn register_builtin(bridge: &Bridge) -> Result<(Vec<String>, Option<WebMcpProvider>), JsValue> {
    bridge.webmcp.borrow_mut().request();
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
                crate::js::promise(async move { Ok(to_result(run_builtin(b, name.to_owned(), input).await)) })
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
    let invalid = |m: &str| Code::InvalidArgument.error(m);
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
    bridge.webmcp.borrow_mut().request();
    let Some((mc, _)) = model_context() else { return Ok(false) };
    let signal = bridge.webmcp.borrow_mut().signal()?;
    let b = Rc::clone(bridge);
    let tool = name.clone();
    let execute =
        Closure::<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>::new(move |input: JsValue, opts: JsValue| {
            let (b, tool, f) = (Rc::clone(&b), tool.clone(), page_execute.clone());
            crate::js::promise(async move {
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
