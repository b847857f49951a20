//! The page's model context (`document.modelContext` or `navigator.modelContext`,
//! the browser's or a polyfill's) and what the bridge registered on it.

use bridge_core::report::WebMcpProvider;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};

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

pub(crate) type Execute = Closure<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>;

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

    /// Keeps a registered tool's callback alive until `unregister_all`.
    pub(crate) fn add(&mut self, name: &str, execute: Execute) {
        self.tools.push((name.to_owned(), execute));
    }

    /// Marks that the page asked for WebMCP (its health is checked from then on).
    pub(crate) fn request(&mut self) {
        self.requested = true;
    }

    /// The one signal every tool is registered with.
    pub(crate) fn signal(&mut self) -> Result<web_sys::AbortSignal, JsValue> {
        if self.controller.is_none() {
            self.controller = Some(web_sys::AbortController::new()?);
        }
        Ok(self.controller.as_ref().map(|c| c.signal()).expect("created above"))
    }
}
