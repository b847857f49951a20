//! One connection for all tabs of an origin (`shareConnection`, on by default
//! where the browser has Web Locks).
//!
//! Tabs whose bridges have the same id, backend nodes and agent form a group.
//! The tab holding the Web Lock `bridge-leader:<group>` leads: it alone keeps
//! the sockets, and serves the others (followers) over the BroadcastChannel
//! `bridge:<group>`:
//! - a follower's requests go to the leader with their ids; the leader sends
//!   them on its sockets and posts the answer back;
//! - every event, reset, agent message and presence the leader receives is
//!   posted to every tab, which de-duplicates by position and calls its own
//!   subscriptions and listeners (the leader acknowledges agent messages);
//! - a follower's subscription patterns go to the leader, which subscribes
//!   their union;
//! - after each change the leader posts its sockets' state, the union of
//!   patterns and the number of tabs.
//!
//! When the leader goes (closed, crashed, navigated away, stopped) the lock
//! passes to a waiting follower at once: it connects, resumes the union from
//! the last position it saw (so nothing is lost), and the other followers post
//! their waiting requests to it again with the same ids (the server takes each
//! once). This module is the channel, the election and the bookkeeping; what
//! the messages mean to the sockets is wired in `bridge.rs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bridge_core::vecmap::VecMap;
use futures_channel::oneshot;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::Closure;

use crate::locks::{self, Held};
use crate::platform::Signal;

/// Most followers whose patterns a leader tracks (a bound on a map keyed by other tabs' input).
const MAX_TABS: usize = 64;

/// This tab's part in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not sharing (`shareConnection: false`, or no Web Locks / BroadcastChannel).
    Alone,
    /// Waiting for the leader lock; another tab holds it.
    Follower,
    Leader,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Alone => "alone",
            Role::Follower => "follower",
            Role::Leader => "leader",
        }
    }
}

/// What a forwarded request came back with.
pub(crate) enum Forwarded {
    Reply(Result<JsValue, (String, String, bool)>),
    /// The leader changed: post it again (or run it here, if this tab leads now).
    Again,
}

/// A message from another tab, for `bridge.rs` to act on.
pub(crate) enum Incoming {
    /// Leader → all: a frame the leader's `socket` received.
    Frame { socket: String, text: String },
    /// Follower → leader: send `frame` (id `id`) on `socket` and post the answer to `tab`.
    Request { tab: String, socket: String, id: String, frame: String },
    /// Follower → leader: `tab`'s subscription patterns changed (the union changed with them).
    Patterns,
    /// A tab arrived or left; the leader answers with its state.
    Joined,
    /// Follower: another tab took the lead; tell it this tab's patterns.
    NewLeader,
}

type Handler = Box<dyn Fn(Incoming)>;
/// A forwarded request: its socket, its frame, and who waits for the answer.
type Waiting = (String, String, oneshot::Sender<Forwarded>);
type OnMessage = Closure<dyn FnMut(web_sys::MessageEvent)>;

/// See the module docs.
pub(crate) struct Share {
    group: String,
    tab: String,
    role: Cell<Role>,
    channel: RefCell<Option<web_sys::BroadcastChannel>>,
    on_message: RefCell<Option<OnMessage>>,
    leader_lock: RefCell<Option<Held>>,
    tab_lock: RefCell<Option<Held>>,
    /// Woken when this tab's role changes; one per waiting task.
    waiters: RefCell<Vec<Signal>>,
    /// Follower: requests posted to the leader, by id.
    pending: RefCell<VecMap<String, Waiting>>,
    /// Leader: each follower's patterns.
    patterns: RefCell<VecMap<String, Vec<String>>>,
    /// Follower: the leader's last word (`{sockets, union, tabs, leader}`).
    heard: RefCell<Option<JsValue>>,
    /// Leader: tabs in the group (this one included), as of the last count.
    tabs: Cell<u32>,
    handler: RefCell<Option<Handler>>,
    /// Which wait for the leader lock is current (a stale one lets go when granted).
    turn: Cell<u32>,
    /// Stepped down when the page left; queues again when it returns.
    stepped_down: Cell<bool>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share").field("group", &self.group).field("role", &self.role.get()).finish()
    }
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

fn text(v: &JsValue, k: &str) -> Option<String> {
    crate::js::get(v, k)?.as_string()
}

impl Share {
    /// A tab of `group` (`None`: not sharing).
    pub(crate) fn new(group: Option<String>, tab: &str) -> Rc<Share> {
        Rc::new(Share {
            role: Cell::new(Role::Alone),
            group: group.unwrap_or_default(),
            tab: tab.to_owned(),
            channel: RefCell::new(None),
            on_message: RefCell::new(None),
            leader_lock: RefCell::new(None),
            tab_lock: RefCell::new(None),
            waiters: RefCell::new(Vec::new()),
            pending: RefCell::new(VecMap::new()),
            patterns: RefCell::new(VecMap::new()),
            heard: RefCell::new(None),
            tabs: Cell::new(1),
            handler: RefCell::new(None),
            turn: Cell::new(0),
            stepped_down: Cell::new(false),
        })
    }

    pub(crate) fn role(&self) -> Role {
        self.role.get()
    }

    pub(crate) fn is_follower(&self) -> bool {
        self.role.get() == Role::Follower
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.role.get() == Role::Leader
    }

    pub(crate) fn tab(&self) -> &str {
        &self.tab
    }

    /// A signal notified whenever this tab's role changes, for one task.
    pub(crate) fn watch(&self) -> Signal {
        let s = Signal::default();
        self.waiters.borrow_mut().push(s.clone());
        s
    }

    /// What `bridge.rs` does with other tabs' messages.
    pub(crate) fn set_handler(&self, h: Handler) {
        *self.handler.borrow_mut() = Some(h);
    }

    fn set_role(&self, role: Role) {
        if self.role.replace(role) != role {
            for s in self.waiters.borrow().iter() {
                s.notify();
            }
        }
    }

    /// Joins the group: opens the channel and queues for the leader lock. Returns once this
    /// tab knows its role (it leads at once when nobody else does). Stays alone without
    /// Web Locks or BroadcastChannel.
    pub(crate) async fn start(self: &Rc<Self>) {
        if self.group.is_empty() || self.channel.borrow().is_some() {
            return;
        }
        let Ok(channel) = web_sys::BroadcastChannel::new(&format!("bridge:{}", self.group)) else { return };
        let Some(mine) = locks::hold(&format!("bridge-tab:{}:{}", self.group, self.tab)).await else { return };
        *self.tab_lock.borrow_mut() = Some(mine);
        let me = Rc::downgrade(self);
        let on_message = OnMessage::new(move |e: web_sys::MessageEvent| {
            if let Some(me) = me.upgrade() {
                me.received(&e.data());
            }
        });
        channel.set_onmessage(Some(wasm_bindgen::JsCast::unchecked_ref(on_message.as_ref())));
        *self.channel.borrow_mut() = Some(channel);
        *self.on_message.borrow_mut() = Some(on_message);
        self.set_role(Role::Follower);
        let granted = self.queue_for_lead();
        self.post(&obj(&[("t", "hello".into()), ("tab", self.tab.as_str().into())]));
        // Wait briefly for the lock: free means this tab leads from the start.
        let _ = bridge_core::retry::driver::race(
            granted.notified(),
            crate::platform::sleep(std::time::Duration::from_millis(50)),
        )
        .await;
    }

    /// Queues for the leader lock (the first tab gets it at once); the returned signal
    /// fires when this tab leads.
    fn queue_for_lead(self: &Rc<Self>) -> Signal {
        let me = Rc::clone(self);
        let group = self.group.clone();
        let granted = Signal::default();
        let told = granted.clone();
        let turn = self.turn.get().wrapping_add(1);
        self.turn.set(turn);
        wasm_bindgen_futures::spawn_local(async move {
            let held = locks::hold(&format!("bridge-leader:{group}")).await;
            // Stopped, or stepped down and queued again, meanwhile: dropping `held` passes the lead on.
            if me.channel.borrow().is_none() || me.turn.get() != turn {
                return;
            }
            *me.leader_lock.borrow_mut() = held;
            me.lead();
            told.notify();
        });
        granted
    }

    /// The page is being frozen or cached: a leader hands the lead to another tab (its
    /// sockets close as they see the new role).
    pub(crate) fn step_down(&self) {
        if self.is_leader() {
            self.leader_lock.borrow_mut().take();
            self.stepped_down.set(true);
            self.set_role(Role::Follower);
        }
    }

    /// The page runs again: a tab that stepped down queues for the lead again.
    pub(crate) fn rejoin(self: &Rc<Self>) {
        if self.stepped_down.replace(false) && self.channel.borrow().is_some() {
            self.queue_for_lead();
            self.post(&obj(&[("t", "hello".into()), ("tab", self.tab.as_str().into())]));
        }
    }

    /// This tab now leads.
    fn lead(&self) {
        self.set_role(Role::Leader);
        // `heard` stays: its union is what the old leader subscribed, resumed by this one.
        // Whatever waited on the old leader now runs here.
        for (_, (_, _, tx)) in std::mem::take(&mut *self.pending.borrow_mut()) {
            let _ = tx.send(Forwarded::Again);
        }
        self.post(&obj(&[("t", "leader".into()), ("tab", self.tab.as_str().into())]));
    }

    /// Leaves the group: passes the lead on and tells the others.
    pub(crate) fn stop(&self) {
        let Some(channel) = self.channel.borrow_mut().take() else { return };
        let _ = channel.post_message(&obj(&[("t", "bye".into()), ("tab", self.tab.as_str().into())]));
        channel.set_onmessage(None);
        channel.close();
        self.on_message.borrow_mut().take();
        self.leader_lock.borrow_mut().take();
        self.tab_lock.borrow_mut().take();
        for (_, (_, _, tx)) in std::mem::take(&mut *self.pending.borrow_mut()) {
            let _ = tx.send(Forwarded::Reply(Err(("stopped".into(), "the bridge stopped".into(), false))));
        }
        self.patterns.borrow_mut().clear();
        self.heard.borrow_mut().take();
        self.set_role(Role::Alone);
    }

    fn post(&self, message: &JsValue) {
        if let Some(c) = self.channel.borrow().as_ref()
            && let Err(e) = c.post_message(message)
        {
            crate::js::warn("posting to the other tabs failed", &e);
        }
    }

    fn received(&self, m: &JsValue) {
        let Some(kind) = text(m, "t") else { return };
        let from = text(m, "tab").unwrap_or_default();
        let incoming = match (kind.as_str(), self.role.get()) {
            ("frame", Role::Follower) => match (text(m, "socket"), text(m, "text")) {
                (Some(socket), Some(text)) => Some(Incoming::Frame { socket, text }),
                _ => None,
            },
            ("req", Role::Leader) => match (text(m, "socket"), text(m, "id"), text(m, "frame")) {
                (Some(socket), Some(id), Some(frame)) => Some(Incoming::Request { tab: from, socket, id, frame }),
                _ => None,
            },
            ("reply", Role::Follower) if text(m, "to").as_deref() == Some(self.tab.as_str()) => {
                self.replied(m);
                None
            }
            ("patterns", Role::Leader) => {
                let list: Vec<String> = crate::js::get(m, "patterns")
                    .map(|p| js_sys::Array::from(&p).iter().filter_map(|s| s.as_string()).collect())
                    .unwrap_or_default();
                let mut patterns = self.patterns.borrow_mut();
                if patterns.contains_key(&from) || patterns.len() < MAX_TABS {
                    patterns.insert(from, list);
                }
                drop(patterns);
                Some(Incoming::Patterns)
            }
            ("bye", Role::Leader) => {
                self.patterns.borrow_mut().remove(&from);
                Some(Incoming::Joined)
            }
            ("hello", Role::Leader) => Some(Incoming::Joined),
            ("leader", Role::Follower) => {
                // A new leader: what waited on the old one goes to it.
                let again: Vec<(String, String, String)> =
                    self.pending.borrow().iter().map(|(id, (s, f, _))| (id.clone(), s.clone(), f.clone())).collect();
                for (id, socket, frame) in again {
                    self.post_request(&id, &socket, &frame);
                }
                Some(Incoming::NewLeader)
            }
            ("state", Role::Follower) => {
                *self.heard.borrow_mut() = Some(m.clone());
                None
            }
            _ => None,
        };
        if let Some(i) = incoming
            && let Some(h) = self.handler.borrow().as_ref()
        {
            h(i);
        }
    }

    fn replied(&self, m: &JsValue) {
        let Some(id) = text(m, "id") else { return };
        let Some((_, _, tx)) = self.pending.borrow_mut().remove(&id) else { return };
        let reply = match crate::js::get(m, "ok") {
            Some(v) => Ok(v),
            None => Err((
                text(m, "code").unwrap_or_else(|| "error".into()),
                text(m, "message").unwrap_or_default(),
                crate::js::get(m, "retryable").and_then(|r| r.as_bool()).unwrap_or(true),
            )),
        };
        let _ = tx.send(Forwarded::Reply(reply));
    }

    fn post_request(&self, id: &str, socket: &str, frame: &str) {
        self.post(&obj(&[
            ("t", "req".into()),
            ("tab", self.tab.as_str().into()),
            ("socket", socket.into()),
            ("id", id.into()),
            ("frame", frame.into()),
        ]));
    }

    /// Follower: sends `frame` through the leader; `Again` when the leader changed first.
    pub(crate) async fn forward(&self, socket: &str, id: &str, frame: &str) -> Forwarded {
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id.to_owned(), (socket.to_owned(), frame.to_owned(), tx));
        self.post_request(id, socket, frame);
        let _cleanup = PendingEntry { share: self, id };
        rx.await.unwrap_or(Forwarded::Again)
    }

    /// Leader: the answer to `tab`'s request `id`.
    pub(crate) fn reply(&self, tab: &str, id: &str, result: Result<JsValue, (String, String, bool)>) {
        let mut pairs = vec![("t", "reply".into()), ("to", tab.into()), ("id", id.into())];
        match result {
            Ok(v) => pairs.push(("ok", v)),
            Err((code, message, retryable)) => {
                pairs.push(("code", code.into()));
                pairs.push(("message", message.into()));
                pairs.push(("retryable", retryable.into()));
            }
        }
        self.post(&obj(&pairs));
    }

    /// Leader: a frame for every tab.
    pub(crate) fn share_frame(&self, socket: &str, text: &str) {
        if self.is_leader() {
            self.post(&obj(&[("t", "frame".into()), ("socket", socket.into()), ("text", text.into())]));
        }
    }

    /// Follower: this tab's subscription patterns, for the leader.
    pub(crate) fn post_patterns(&self, patterns: &[String]) {
        if self.is_follower() {
            let list: js_sys::Array = patterns.iter().map(|p| JsValue::from(p.as_str())).collect();
            self.post(&obj(&[("t", "patterns".into()), ("tab", self.tab.as_str().into()), ("patterns", list.into())]));
        }
    }

    /// Leader: every follower's patterns, each once.
    pub(crate) fn followers_patterns(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for (_, list) in self.patterns.borrow().iter() {
            for p in list {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
        all
    }

    /// Leader: tells every tab its sockets' state (`sockets`: `{evolution, agents}` as in
    /// `state()`), the patterns it subscribes (`union`) and the tab count; recounts the tabs
    /// and forgets the patterns of tabs that are gone.
    pub(crate) async fn announce(&self, sockets: JsValue, union: &[String]) {
        if !self.is_leader() {
            return;
        }
        if let Some(held) = locks::held_names().await {
            let prefix = format!("bridge-tab:{}:", self.group);
            let alive: Vec<&str> = held.iter().filter_map(|n| n.strip_prefix(prefix.as_str())).collect();
            self.tabs.set(alive.len().max(1) as u32);
            self.patterns.borrow_mut().retain(|tab, _| alive.contains(&tab.as_str()));
        }
        let union: js_sys::Array = union.iter().map(|p| JsValue::from(p.as_str())).collect();
        self.post(&obj(&[
            ("t", "state".into()),
            ("tab", self.tab.as_str().into()),
            ("sockets", sockets),
            ("union", union.into()),
            ("tabs", self.tabs.get().into()),
        ]));
    }

    /// Follower: the position the leader's evolution socket last told (`epoch:seq`).
    pub(crate) fn leader_position(&self) -> Option<String> {
        let sockets = self.leader_sockets()?;
        crate::js::get(&crate::js::get(&sockets, "evolution")?, "position")?.as_string()
    }

    /// Follower: the leader's sockets as it last told (`state().sockets`).
    pub(crate) fn leader_sockets(&self) -> Option<JsValue> {
        self.heard.borrow().as_ref().and_then(|h| crate::js::get(h, "sockets"))
    }

    /// Follower: the patterns the leader subscribes, for when this tab takes over.
    pub(crate) fn leader_union(&self) -> Vec<String> {
        self.heard
            .borrow()
            .as_ref()
            .and_then(|h| crate::js::get(h, "union"))
            .map(|u| js_sys::Array::from(&u).iter().filter_map(|s| s.as_string()).collect())
            .unwrap_or_default()
    }

    /// `state().tabs`: this tab's id and role, the leader's tab and the group's size.
    pub(crate) fn snapshot(&self) -> (Role, Option<String>, u32) {
        let role = self.role.get();
        match role {
            Role::Alone => (role, None, 1),
            Role::Leader => (role, Some(self.tab.clone()), self.tabs.get()),
            Role::Follower => {
                let heard = self.heard.borrow();
                let leader = heard.as_ref().and_then(|h| text(h, "tab"));
                let tabs = heard.as_ref().and_then(|h| crate::js::get(h, "tabs")).and_then(|t| t.as_f64());
                (role, leader, tabs.map_or(2, |t| t as u32))
            }
        }
    }
}

/// Removes a forwarded request's entry when its waiter goes away.
struct PendingEntry<'a> {
    share: &'a Share,
    id: &'a str,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        self.share.pending.borrow_mut().remove(self.id);
    }
}
