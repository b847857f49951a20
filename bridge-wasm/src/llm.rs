//! Prompts to an OpenAI-compatible chat completions endpoint (by default the
//! backend's proxy), under the `sendLLMPrompt` policy.

use bridge_core::retry::Failure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use crate::bridge::Bridge;
use crate::platform;
use crate::resilience::{self, Attempt};

/// What a prompt takes: `{prompt, model?, temperature?, max_tokens?, system_prompt?}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Prompt {
    prompt: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "maxTokens")]
    max_tokens: Option<u32>,
    #[serde(default, alias = "systemPrompt")]
    system_prompt: Option<String>,
}

impl Prompt {
    pub(crate) fn from_js(v: &JsValue) -> Result<Self, JsValue> {
        let text = crate::js::to_json(v)?;
        let p: Prompt = serde_json::from_str(&text)
            .map_err(|e| crate::js::coded_error("invalid_argument", &format!("prompt: {e}"), None, &[]))?;
        if p.prompt.is_empty() {
            return Err(crate::js::coded_error("invalid_argument", "prompt: `prompt` must not be empty", None, &[]));
        }
        Ok(p)
    }
}

async fn attempt(url: &str, body: &str, token: Option<&str>) -> Result<serde_json::Value, Attempt> {
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
    serde_json::from_str(&text)
        .map_err(|e| Attempt::new(Failure::Protocol { message: format!("the LLM answer is not JSON: {e}") }))
}

/// Sends `p` as tool `tool`; resolves with `{text, model, usage}`.
pub(crate) async fn prompt(bridge: &Bridge, tool: &str, p: Prompt) -> Result<JsValue, JsValue> {
    let mut messages = Vec::new();
    if let Some(s) = &p.system_prompt {
        messages.push(serde_json::json!({"role": "system", "content": s}));
    }
    messages.push(serde_json::json!({"role": "user", "content": p.prompt}));
    let mut body = serde_json::json!({
        "model": p.model.clone().or_else(|| bridge.config.llm_model.clone()).unwrap_or_else(|| "default".into()),
        "messages": messages,
    });
    if let Some(t) = p.temperature {
        body["temperature"] = t.into();
    }
    if let Some(m) = p.max_tokens {
        body["max_tokens"] = m.into();
    }
    let body = body.to_string();
    let url = bridge.config.llm_endpoint.clone();
    let token = bridge.config.token.clone();
    let policy = Some(*bridge.resilience.borrow().policies.get(crate::webmcp::policy_for(&bridge.resilience, tool)));
    let (result, ran) = resilience::run(&bridge.resilience, tool, tool, policy, bridge.lifetime().stopped(), |_| {
        attempt(&url, &body, token.as_deref())
    })
    .await;
    if ran.breaker_moved {
        bridge.changed.notify();
    }
    let answer = result.map_err(|e| resilience::to_js_error(tool, &e))?;
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned();
    crate::js::to_js(&serde_json::json!({"text": text, "model": answer["model"], "usage": answer["usage"]}))
}
