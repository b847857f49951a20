//! Prompts to an OpenAI-compatible chat completions endpoint (by default the
//! backend's proxy), under the `sendLLMPrompt` policy.

use bridge_core::retry::Failure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use crate::bridge::Bridge;
use crate::js::Code;
use crate::platform;
use crate::resilience::{self, Attempt};

/// What a prompt takes: `{prompt, model?, temperature?, max_tokens?, system_prompt?}`
/// (camelCase `maxTokens`, `systemPrompt` too).
#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    prompt: String,
    model: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    system_prompt: Option<String>,
}

impl Prompt {
    pub(crate) fn from_js(v: &JsValue) -> Result<Self, JsValue> {
        let invalid = |m: String| Code::InvalidArgument.error(&m);
        let mut o = crate::read::Obj::new(v, "prompt")
            .map_err(invalid)?
            .ok_or_else(|| invalid("prompt: give {prompt: \"...\"}".into()))?;
        let p = Prompt {
            prompt: o.string("prompt").map_err(invalid)?.unwrap_or_default(),
            model: o.string("model").map_err(invalid)?,
            temperature: o.f64("temperature").map_err(invalid)?,
            max_tokens: o.u32("max_tokens").map_err(invalid)?.or(o.u32("maxTokens").map_err(invalid)?),
            system_prompt: o.string("system_prompt").map_err(invalid)?.or(o.string("systemPrompt").map_err(invalid)?),
        };
        o.finish().map_err(invalid)?;
        if p.prompt.is_empty() {
            return Err(invalid("prompt.prompt: must be a non-empty string".into()));
        }
        Ok(p)
    }
}

async fn attempt(url: &str, body: &str, token: Option<&str>) -> Result<JsValue, Attempt> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let headers = web_sys::Headers::new()
        .map_err(|e| Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e))?;
    let _ = headers.set("content-type", "application/json");
    if let Some(t) = token {
        let _ = headers.set("authorization", &format!("Bearer {t}"));
    }
    init.set_headers(&headers);
    let controller = web_sys::AbortController::new().ok();
    if let Some(c) = &controller {
        init.set_signal(Some(&c.signal()));
    }
    // Abort the request if this attempt is abandoned (timeout, deadline).
    struct Abort(Option<web_sys::AbortController>);
    impl Drop for Abort {
        fn drop(&mut self) {
            if let Some(c) = self.0.take() {
                c.abort();
            }
        }
    }
    let mut guard = Abort(controller);
    let window = web_sys::window().ok_or_else(|| Attempt::new(Failure::Validation { message: "no window".into() }))?;
    let r = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| Attempt::with_cause(Failure::Network { message: crate::js::message_of(&e) }, e))?;
    let r: Response = r.unchecked_into();
    let text = match r.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    guard.0 = None;
    if !r.ok() {
        let retry_after = r.headers().get("retry-after").ok().flatten();
        let failure = Failure::http(r.status(), retry_after.as_deref(), platform::unix_ms());
        return Err(Attempt::with_cause(failure, JsValue::from_str(&text)));
    }
    js_sys::JSON::parse(&text)
        .map_err(|e| Attempt::with_cause(Failure::Protocol { message: "the LLM answer is not JSON".into() }, e))
}

/// An OpenAI chat completions request.
#[derive(serde::Serialize)]
struct Chat<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(serde::Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a str,
}

/// Sends `p` as tool `tool` under policy `policy`; resolves with `{text, model, usage}`.
pub(crate) async fn prompt(bridge: &Bridge, tool: &str, policy: &str, p: Prompt) -> Result<JsValue, JsValue> {
    let mut messages = Vec::new();
    if let Some(s) = &p.system_prompt {
        messages.push(ChatMessage { role: "system", content: s });
    }
    messages.push(ChatMessage { role: "user", content: &p.prompt });
    let model = p.model.clone().or_else(|| bridge.config.llm_model.clone()).unwrap_or_else(|| "default".into());
    let body =
        serde_json::to_string(&Chat { model: &model, messages, temperature: p.temperature, max_tokens: p.max_tokens })
            .map_err(crate::js::error)?;
    let token = bridge.config.token.clone();
    let policy = Some(*bridge.resilience.borrow().policies.get(policy));
    let stopped = Box::pin(bridge.lifetime().stopped());
    let (result, ran) = resilience::run(&bridge.resilience, tool, tool, policy, stopped, &mut |_| {
        // The page's endpoint, or the current node's proxy; on a node, it follows a failover.
        let url = match &bridge.config.llm_endpoint {
            Some(endpoint) => bridge.backends.follow(endpoint),
            None => format!("{}/api/llm/chat/completions", bridge.backends.url()),
        };
        let (body, token) = (body.clone(), token.clone());
        Box::pin(async move { attempt(&url, &body, token.as_deref()).await })
    })
    .await;
    if ran.breaker_moved {
        bridge.changed.notify();
    }
    let answer = result.map_err(|e| resilience::to_js_error(tool, &e))?;
    // choices[0].message.content, read in the engine.
    let text = crate::js::get(&answer, "choices")
        .map(|c| js_sys::Array::from(&c).get(0))
        .and_then(|c| crate::js::get(&c, "message"))
        .and_then(|m| crate::js::get(&m, "content"))
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"text".into(), &text.into())?;
    js_sys::Reflect::set(&out, &"model".into(), &crate::js::get(&answer, "model").unwrap_or(JsValue::NULL))?;
    js_sys::Reflect::set(&out, &"usage".into(), &crate::js::get(&answer, "usage").unwrap_or(JsValue::NULL))?;
    Ok(out.into())
}
