//! The page's life: the browser offline or online, the page frozen and
//! resumed, or restored from the back/forward cache.
//!
//! While the browser says it is offline the bridge attempts nothing it knows
//! would fail: the sockets wait instead of reconnecting, the reporter holds its
//! reports, health says "offline" without probing, and a failure seen while
//! offline charges no breaker (the backend did nothing wrong). When the browser
//! is back online, or the page is resumed or restored, every waiting task is
//! woken at once instead of sleeping out its backoff.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use bridge_core::retry::driver::race;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use crate::platform::Signal;

/// What an offline browser's failures and waits say.
pub(crate) const OFFLINE: &str = "the browser is offline; waiting for it to come back online";

/// `navigator.onLine` (true where the browser does not say).
pub(crate) fn online() -> bool {
    let navigator = web_sys::window().and_then(|w| crate::js::get(&w, "navigator"));
    navigator.and_then(|n| crate::js::get(&n, "onLine")).and_then(|v| v.as_bool()).unwrap_or(true)
}

type Listener = (web_sys::EventTarget, &'static str, Closure<dyn FnMut(web_sys::Event)>);

type OnMoment = Box<dyn Fn(Moment)>;

/// A moment in the page's life the bridge acts on (besides waking its waiting tasks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// The page is being frozen or put in the back/forward cache: it will run nothing for a while.
    Leaving,
    /// It runs again (resumed, or restored from the cache).
    Returning,
}

/// The page's events the bridge follows, and the tasks that wait on them.
#[derive(Default)]
pub(crate) struct PageLife {
    /// One per waiting task (each socket, the health poller, the reporter): a fixed few.
    waiters: RefCell<Vec<Signal>>,
    listeners: RefCell<Vec<Listener>>,
    /// Times the page came back from the back/forward cache.
    restored: Cell<u32>,
    /// What the bridge does at a [`Moment`].
    on_moment: RefCell<Option<OnMoment>>,
}

impl std::fmt::Debug for PageLife {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLife").field("restored", &self.restored.get()).finish()
    }
}

impl PageLife {
    /// A signal notified at every change of the page's life, for one task.
    pub(crate) fn watch(&self) -> Signal {
        let s = Signal::default();
        self.waiters.borrow_mut().push(s.clone());
        s
    }

    /// What to do when the page leaves or returns.
    pub(crate) fn on_moment(&self, f: OnMoment) {
        *self.on_moment.borrow_mut() = Some(f);
    }

    fn moment(&self, m: Moment) {
        if let Some(f) = self.on_moment.borrow().as_ref() {
            f(m);
        }
    }

    pub(crate) fn restored(&self) -> u32 {
        self.restored.get()
    }

    fn changed(&self) {
        for s in self.waiters.borrow().iter() {
            s.notify();
        }
    }

    /// Follows `online`, `offline`, `pageshow` (restored from the back/forward
    /// cache), `resume` (after a freeze) and `visibilitychange`, until [`Self::unlisten`].
    pub(crate) fn listen(self: &Rc<Self>) {
        if !self.listeners.borrow().is_empty() {
            return;
        }
        let Some(window) = web_sys::window() else { return };
        let document: Option<web_sys::EventTarget> = window.document().map(Into::into);
        let window: web_sys::EventTarget = window.into();
        let targets = [
            (Some(window.clone()), "online"),
            (Some(window.clone()), "offline"),
            (Some(window.clone()), "pageshow"),
            (Some(window), "pagehide"),
            (document.clone(), "freeze"),
            (document.clone(), "resume"),
            (document, "visibilitychange"),
        ];
        for (target, kind) in targets {
            let Some(target) = target else { continue };
            let life: Weak<Self> = Rc::downgrade(self);
            let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let Some(life) = life.upgrade() else { return };
                // `pageshow` also fires at the first load; only a restored page (`persisted`) is news.
                // `pagehide` with `persisted`: into the back/forward cache (without: the page is going).
                let persisted = crate::js::get(&e, "persisted").and_then(|p| p.as_bool()).unwrap_or(false);
                match kind {
                    "freeze" => return life.moment(Moment::Leaving),
                    "pagehide" => {
                        return if persisted {
                            life.moment(Moment::Leaving)
                        };
                    }
                    "resume" => life.moment(Moment::Returning),
                    "pageshow" if persisted => life.moment(Moment::Returning),
                    _ => {}
                }
                // Becoming hidden is no reason to hurry; becoming visible is.
                if kind == "visibilitychange"
                    && web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
                {
                    return;
                }
                if kind == "pageshow" {
                    if !persisted {
                        return;
                    }
                    life.restored.set(life.restored.get().saturating_add(1));
                }
                life.changed();
            });
            if target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref()).is_ok() {
                self.listeners.borrow_mut().push((target, kind, closure));
            }
        }
    }

    /// Stops following the page (the bridge stopped).
    pub(crate) fn unlisten(&self) {
        for (target, kind, closure) in self.listeners.borrow_mut().drain(..) {
            let _ = target.remove_event_listener_with_callback(kind, closure.as_ref().unchecked_ref());
        }
    }
}

/// Completes when the browser is online (at once if it is).
pub(crate) async fn until_online(signal: &Signal) {
    while !online() {
        signal.notified().await;
    }
}

/// Completes when the browser goes offline.
pub(crate) async fn until_offline(signal: &Signal) {
    while online() {
        signal.notified().await;
    }
}

/// Completes at the next change after which trying again makes sense now: back
/// online, resumed, restored, or shown again.
pub(crate) async fn revived(signal: &Signal) {
    loop {
        signal.notified().await;
        if online() {
            return;
        }
    }
}

/// Sleeps for `d`, or less if the page revives first.
pub(crate) async fn pause(d: std::time::Duration, signal: &Signal) {
    let _ = race(crate::platform::sleep(d), revived(signal)).await;
}
