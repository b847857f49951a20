//! Events the bridge tells the page about: `addEventListener(type, cb)`.
//!
//! | type | detail |
//! |---|---|
//! | `health` | a health change: `{component, from, to, aggregateFrom, aggregateTo, at, detail?}` |
//! | `reset` | the server could not replay what this page missed: `{epoch, seq, reason}` |
//! | `message` | an agent message (also `onMessage`) |
//! | `presence` | an agent came or went |
//! | `state` | a socket or breaker changed state (no detail; call `state()`) |
//! | `node` | the bridge moved to another backend node: `{from, to}` |
//! | `recovered` | a request an earlier page load left waiting was re-sent (or dropped for age): `{id, tool, socket, outcome, reply?, error?}` |

use bridge_core::vecmap::VecMap;
use std::cell::RefCell;

use js_sys::Function;
use wasm_bindgen::JsValue;

/// Listeners per event type (a page registering the same function twice gets it once).
#[derive(Debug, Default)]
pub(crate) struct Events {
    listeners: RefCell<VecMap<String, Vec<Function>>>,
}

/// Most listeners per event type: a page adding listeners in a loop must not grow memory without bound.
const MAX_LISTENERS: usize = 256;

impl Events {
    pub(crate) fn add(&self, kind: &str, f: Function) -> Result<(), String> {
        let mut map = self.listeners.borrow_mut();
        let list = map.get_or_insert_with(kind.to_owned(), Vec::new);
        if list.iter().any(|g| g == &f) {
            return Ok(());
        }
        if list.len() >= MAX_LISTENERS {
            return Err(format!("at most {MAX_LISTENERS} \"{kind}\" listeners"));
        }
        list.push(f);
        Ok(())
    }

    pub(crate) fn remove(&self, kind: &str, f: &Function) {
        if let Some(list) = self.listeners.borrow_mut().get_mut(kind) {
            list.retain(|g| g != f);
        }
    }

    /// Calls every `kind` listener with `detail`; returns what each returned (a
    /// listener that throws is logged and skipped: page code cannot stop the bridge).
    pub(crate) fn emit(&self, kind: &str, detail: &JsValue) -> Vec<JsValue> {
        // Clone the list first: a listener may add or remove listeners.
        let list = self.listeners.borrow().get(kind).cloned().unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        for f in list {
            match f.call1(&JsValue::NULL, detail) {
                Ok(v) => out.push(v),
                Err(e) => crate::js::warn(&format!("a \"{kind}\" listener threw"), &e),
            }
        }
        out
    }
}
