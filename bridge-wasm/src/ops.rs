//! The operations a page script and an AI agent both run: register the page's
//! agent, send an agent message, discover agents, broadcast, make an evolution
//! request, prompt the LLM. The JS class (`lib.rs`) and the WebMCP tools
//! (`webmcp.rs`) both call these, and each operation runs under one name
//! whoever calls it: `bridge.sendA2A` and the `send_a2a_message` tool share
//! the tool name `sendA2AMessage`, hence its policy, its breaker and its
//! metrics.

use bridge_core::protocol::{self, ClientFrame};
use bridge_core::retry::names;
use wasm_bindgen::JsValue;

use crate::bridge::Bridge;
use crate::js::Code;
use crate::resilience::{self, Attempt, Shared};
use crate::socket::outbound;

/// `registerAgent()`.
pub(crate) const REGISTER: &str = "registerAgent";
/// `sendA2A()`, `send_a2a_message`.
pub(crate) const SEND: &str = names::SEND_A2A_MESSAGE;
/// `discover()`, `discover_a2a_agents`.
pub(crate) const DISCOVER: &str = "discoverAgents";
/// `broadcast()`, `a2a_broadcast`.
pub(crate) const BROADCAST: &str = "broadcast";
/// `request()` (unless it names its own tool), `trigger_evolution`.
pub(crate) const REQUEST: &str = "evolutionRequest";
/// `prompt()`, `send_llm_prompt`.
pub(crate) const PROMPT: &str = names::SEND_LLM_PROMPT;

/// The policy an operation runs under: its own when one is configured under its name, else
/// the built-in one of what it does (the agents socket's requests share `sendA2AMessage`'s).
pub(crate) fn policy_for<'a>(shared: &Shared, tool: &'a str) -> &'a str {
    if shared.borrow().policies.named().any(|(n, _)| n == tool) {
        return tool;
    }
    match tool {
        REGISTER | DISCOVER | BROADCAST => SEND,
        _ => tool,
    }
}

fn not_configured(a: Attempt) -> JsValue {
    Code::NotConfigured.error(&a.failure.describe())
}

/// Registers the page's agent as `name` (again after every reconnect).
pub(crate) async fn register_agent(
    bridge: &Bridge,
    name: String,
    capabilities: Vec<String>,
) -> Result<JsValue, JsValue> {
    let socket = bridge.agents().map_err(not_configured)?;
    protocol::rules::check_agent(&name).map_err(|m| Code::InvalidArgument.error(&m))?;
    socket.set_agent(crate::config::AgentConfig { name: name.clone(), capabilities: capabilities.clone() });
    bridge
        .socket_request(socket, REGISTER, policy_for(&bridge.resilience, REGISTER), false, &|id| {
            ClientFrame::Register(protocol::Register {
                id: id.clone(),
                agent: name.clone(),
                capabilities: capabilities.clone(),
                presence: true,
                takeover: true,
            })
            .to_json()
        })
        .await
        .map_err(|e| resilience::to_js_error(REGISTER, &e))
}

/// Sends an agent message; resolves with the server's ack.
pub(crate) async fn send(bridge: &Bridge, msg: A2aMessage) -> Result<JsValue, JsValue> {
    let socket = bridge.agents().map_err(not_configured)?;
    bridge
        .socket_request(socket, SEND, policy_for(&bridge.resilience, SEND), true, &|id| {
            outbound::send(id, &msg.to, &msg.message_type, &msg.content_json, msg.priority, msg.expires_in_ms)
        })
        .await
        .map_err(|e| resilience::to_js_error(SEND, &e))
}

/// Sends a prompt; resolves with `{text, model, usage}`.
pub(crate) async fn prompt(bridge: &Bridge, input: &JsValue) -> Result<JsValue, JsValue> {
    let p = crate::llm::Prompt::from_js(input)?;
    crate::llm::prompt(bridge, PROMPT, policy_for(&bridge.resilience, PROMPT), p).await
}

/// `discover` under `tool`.
pub(crate) async fn discover(bridge: &Bridge, tool: &str, capability: Option<String>) -> Result<JsValue, JsValue> {
    let socket = bridge.agents().map_err(not_configured)?;
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .socket_request(socket, tool, policy, false, &|id| {
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
    let socket = bridge.agents().map_err(not_configured)?;
    protocol::rules::check_label("message_type", &message_type).map_err(|m| Code::InvalidArgument.error(&m))?;
    let content = crate::js::to_json(&content)?;
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .socket_request(socket, tool, policy, false, &|id| outbound::broadcast(id, &message_type, &content))
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
    let socket = bridge.evolution().map_err(not_configured)?;
    protocol::rules::check_topic(&action).map_err(|m| Code::InvalidArgument.error(&m))?;
    let params = if params.is_undefined() || params.is_null() { None } else { Some(crate::js::to_json(&params)?) };
    let policy = policy_for(&bridge.resilience, tool);
    let reply = bridge
        .socket_request(socket, tool, policy, true, &|id| outbound::request(id, &action, params.as_deref(), timeout_ms))
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
        Code::HandlerError.as_str(),
        &format!("the handler failed: {code}: {message}"),
        None,
        &[("response", reply)],
    ))
}

/// What `sendA2A` takes.
#[derive(Debug, Clone)]
pub(crate) struct A2aMessage {
    pub(crate) to: String,
    pub(crate) message_type: String,
    pub(crate) content_json: String,
    pub(crate) priority: Option<protocol::Priority>,
    pub(crate) expires_in_ms: Option<u64>,
}

impl A2aMessage {
    /// From `{to, messageType, content, priority?, expiresInMs?}` (or the snake_case names).
    pub(crate) fn from_js(v: &JsValue) -> Result<Self, JsValue> {
        let text = |camel: &str, snake: &str| {
            crate::js::get(v, camel).or_else(|| crate::js::get(v, snake)).and_then(|x| x.as_string())
        };
        let invalid = |m: &str| Code::InvalidArgument.error(m);
        let to = text("to", "to").ok_or_else(|| invalid("sendA2A: `to` (an agent name) is required"))?;
        protocol::rules::check_agent(&to).map_err(|m| invalid(&format!("sendA2A: to: {m}")))?;
        let message_type =
            text("messageType", "message_type").ok_or_else(|| invalid("sendA2A: `messageType` is required"))?;
        protocol::rules::check_label("messageType", &message_type).map_err(|m| invalid(&format!("sendA2A: {m}")))?;
        let content = crate::js::get(v, "content").unwrap_or(JsValue::NULL);
        let content_json = crate::js::to_json(&content)?;
        let priority = match text("priority", "priority").as_deref() {
            None | Some("normal") => None,
            Some("low") => Some(protocol::Priority::Low),
            Some("high") => Some(protocol::Priority::High),
            Some(other) => {
                return Err(invalid(&format!("sendA2A: priority must be low, normal or high, got \"{other}\"")));
            }
        };
        let expires_in_ms = crate::js::get(v, "expiresInMs")
            .or_else(|| crate::js::get(v, "expires_in_ms"))
            .and_then(|x| x.as_f64())
            .map(|x| x as u64);
        Ok(Self { to, message_type, content_json, priority, expires_in_ms })
    }
}
