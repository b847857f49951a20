//! Web Locks (`navigator.locks`), bound by hand: web-sys has them only behind
//! `web_sys_unstable_apis`. A lock is held by this page (tab) until released or
//! until the page goes away, which is what makes it a liveness signal other
//! tabs can query.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

type Granted = Closure<dyn FnMut(JsValue) -> js_sys::Promise>;

/// A held lock; dropping it releases it.
pub(crate) struct Held {
    release: js_sys::Function,
    _granted: Granted,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// `navigator.locks`, where the browser has it.
fn manager() -> Option<JsValue> {
    let navigator = crate::js::get(&web_sys::window()?.into(), "navigator")?;
    crate::js::get(&navigator, "locks").filter(|l| crate::js::get(l, "request").is_some())
}

/// Waits for the exclusive lock `name` and holds it until the returned value is dropped;
/// `None` without Web Locks.
pub(crate) async fn hold(name: &str) -> Option<Held> {
    let locks = manager()?;
    let request: js_sys::Function = crate::js::get(&locks, "request")?.unchecked_into();
    let (tx, rx) = oneshot::channel::<js_sys::Function>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    // The lock is held until the promise this callback returns settles: it settles when
    // `Held` is dropped and calls `release`.
    let granted = Granted::new(move |_lock: JsValue| {
        let tx = Rc::clone(&tx);
        js_sys::Promise::new(&mut |resolve, _reject| {
            if let Some(tx) = tx.borrow_mut().take()
                && let Err(resolve) = tx.send(resolve)
            {
                // Nobody waits any more (the bridge stopped meanwhile): release at once.
                let _ = resolve.call0(&JsValue::NULL);
            }
        })
    });
    if let Err(e) = request.call2(&locks, &name.into(), granted.as_ref()) {
        crate::js::warn("navigator.locks.request failed", &e);
        return None;
    }
    let pending = Pending(Some(granted));
    let release = rx.await.ok()?;
    Some(Held { release, _granted: pending.take() })
}

/// The callback of a lock not granted yet: if the wait is dropped, the browser may still
/// call it, so it must outlive us (a small leak per abandoned wait, not a crash).
struct Pending(Option<Granted>);

impl Pending {
    fn take(mut self) -> Granted {
        self.0.take().unwrap_or_else(|| Granted::new(|_| js_sys::Promise::resolve(&JsValue::NULL)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.forget();
        }
    }
}

/// The names of the locks held now by any page of this origin.
pub(crate) async fn held_names() -> Option<Vec<String>> {
    let locks = manager()?;
    let query: js_sys::Function = crate::js::get(&locks, "query")?.unchecked_into();
    let snapshot = JsFuture::from(query.call0(&locks).ok()?.dyn_into::<js_sys::Promise>().ok()?).await.ok()?;
    let held = crate::js::get(&snapshot, "held").map(|h| js_sys::Array::from(&h))?;
    Some(held.iter().filter_map(|l| crate::js::get(&l, "name").and_then(|n| n.as_string())).collect())
}
