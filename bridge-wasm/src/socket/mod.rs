//! A resilient WebSocket to the backend (evolution or agents).
//!
//! While started, it keeps a connection: each connect runs under the socket's
//! policy (`connectEvolutionSocket` / `connectAgentSocket`) and breaker of the
//! same name, waiting out an open breaker. Requests wait in a bounded outbox
//! while disconnected and are re-sent with the same id after a reconnect (the
//! server deduplicates by id, so each takes effect once); subscriptions resume
//! with `since`, events are de-duplicated by seq, and an agent re-registers and
//! gets its queued messages. A heartbeat detects a dead connection within two
//! intervals.
//!
//! - [`conn`]: one browser WebSocket as an event stream.
//! - `session`: one connection's life, from hello to close.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use bridge_core::protocol::{ClientFrame, Id, Position};
use bridge_core::report::{SocketSnapshot, SocketState};
use bridge_core::retry::driver::race;
use bridge_core::retry::{Failure, RetryError};
use bridge_core::time::Millis;
use bridge_core::vecmap::VecMap;
use futures_channel::oneshot;
use js_sys::Function;

use crate::backends::Backends;
use crate::config::AgentConfig;
use crate::events::Events;
use crate::js::Code;
use crate::lifecycle;
use crate::platform::{self, Lifetime, Signal};
use crate::resilience::{self, Attempt, Shared, local_refusal};
use crate::share::{Forwarded, Share};

pub(crate) mod conn;
mod inbound;
pub(crate) mod outbound;
mod session;

/// Which socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Evolution,
    Agents,
}

impl Kind {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Kind::Evolution => "/evolution",
            Kind::Agents => "/agents",
        }
    }

    /// The name of the socket's policy, breaker and metrics.
    pub(crate) fn tool(self) -> &'static str {
        match self {
            Kind::Evolution => bridge_core::retry::names::CONNECT_EVOLUTION_SOCKET,
            Kind::Agents => bridge_core::retry::names::CONNECT_AGENT_SOCKET,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Evolution => "evolution",
            Kind::Agents => "agents",
        }
    }
}

/// What a request is answered with: the parsed answer frame (`ack`, `response`, `agents`).
type Reply = Result<wasm_bindgen::JsValue, Attempt>;

/// A frame waiting to be sent or answered.
#[derive(Debug)]
struct Outgoing {
    frame: String,
    sent: bool,
    /// Re-send after a reconnect (requests); `false` for frames that only make
    /// sense on the connection they were meant for (acks, on-the-fly subscribes).
    resend: bool,
    reply: Option<oneshot::Sender<Reply>>,
}

/// A page subscription.
#[derive(Debug)]
struct Subscription {
    patterns: Vec<String>,
    callback: Function,
}

/// Agent messages remembered to recognise a redelivery of one already handled.
const SEEN_MESSAGES: usize = 1024;

#[derive(Debug, Default)]
struct Inner {
    state: Option<SocketState>,
    outbox: VecMap<u64, (Id, Outgoing)>,
    next: u64,
    connected_since: Option<Millis>,
    connects: u64,
    last_error: Option<String>,
    /// Evolution: the last position seen (event, reset, or the head at subscribe).
    position: Option<Position>,
    patterns: VecMap<String, usize>,
    subs: VecMap<u32, Subscription>,
    next_sub: u32,
    resets: u64,
    duplicates_dropped: u64,
    /// Agents: who we are, and what we have handled.
    agent: Option<AgentConfig>,
    seen: VecDeque<(String, Id)>,
    /// The server closed with 4409: another connection took our agent name.
    replaced: bool,
    /// The node of the current (or last) connection.
    node: Option<String>,
    /// Leader: the patterns subscribed for follower tabs.
    remote: Vec<String>,
}

/// What a socket is wired to: where it connects, as whom, and the bridge's shared pieces.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// Where it connects: the current node.
    pub(crate) backends: Rc<Backends>,
    /// The `client` of hello: stable per bridge, so the server can deduplicate across reconnects.
    pub(crate) client: String,
    pub(crate) token: Option<String>,
    /// Random per page load: prefixes request ids.
    pub(crate) instance: String,
    pub(crate) outbox_limit: u32,
    pub(crate) resilience: Shared,
    pub(crate) events: Rc<Events>,
    /// Tells the reporter that something changed.
    pub(crate) changed: Signal,
    /// Notified when the page goes offline, comes back, is resumed or restored.
    pub(crate) page: Signal,
    /// The tabs sharing this connection, and a signal of this tab's role changes.
    pub(crate) share: Rc<Share>,
    pub(crate) role: Signal,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Socket {
    pub(crate) kind: Kind,
    backends: Rc<Backends>,
    client: String,
    token: Option<String>,
    instance: String,
    outbox_limit: u32,
    resilience: Shared,
    events: Rc<Events>,
    lifetime: RefCell<Lifetime>,
    changed: Signal,
    /// Wakes the session: new frames to send.
    wake: Signal,
    /// See [`Wiring::page`].
    page: Signal,
    pub(crate) share: Rc<Share>,
    pub(crate) role: Signal,
    inner: RefCell<Inner>,
}

impl Socket {
    pub(crate) fn new(kind: Kind, w: Wiring, lifetime: Lifetime) -> Rc<Self> {
        Rc::new(Self {
            kind,
            backends: w.backends,
            client: w.client,
            token: w.token,
            instance: w.instance,
            outbox_limit: w.outbox_limit,
            resilience: w.resilience,
            events: w.events,
            lifetime: RefCell::new(lifetime),
            changed: w.changed,
            wake: Signal::default(),
            page: w.page,
            share: w.share,
            role: w.role,
            inner: RefCell::new(Inner { state: Some(SocketState::Stopped), ..Inner::default() }),
        })
    }

    fn set_state(&self, state: SocketState) {
        let moved = {
            let mut i = self.inner.borrow_mut();
            let moved = i.state != Some(state);
            i.state = Some(state);
            moved
        };
        if moved {
            self.changed.notify();
        }
    }

    /// True while the connection is open and welcomed.
    pub(crate) fn is_open(&self) -> bool {
        self.inner.borrow().state == Some(SocketState::Open)
    }

    /// How this socket looks in `state()` and reports. In a follower tab its state is the
    /// leader's (the connection this tab uses); the rest is this tab's own.
    pub(crate) fn snapshot(&self) -> SocketSnapshot {
        let i = self.inner.borrow();
        let led = self.share.is_follower().then(|| self.leader_state()).flatten();
        SocketSnapshot {
            state: led.unwrap_or(i.state.unwrap_or(SocketState::Stopped)),
            url: self.url_on(i.node.clone().unwrap_or_else(|| self.backends.url()).as_str()),
            connected_since: i.connected_since,
            reconnects: i.connects.saturating_sub(1),
            outbox: i.outbox.len() as u32,
            outbox_limit: self.outbox_limit,
            last_error: i.last_error.clone(),
            position: i.position.as_ref().map(|p| format!("{}:{}", p.epoch, p.seq)),
            resets: i.resets,
        }
    }

    /// The leader's state of this socket, as it last told.
    fn leader_state(&self) -> Option<SocketState> {
        let sockets = self.share.leader_sockets()?;
        let state = crate::js::get(&crate::js::get(&sockets, self.kind.name())?, "state")?.as_string()?;
        Some(match state.as_str() {
            "open" => SocketState::Open,
            "connecting" => SocketState::Connecting,
            "reconnecting" => SocketState::Reconnecting,
            _ => SocketState::Stopped,
        })
    }

    /// `ws(s)://node/path` of this socket on `node` (`http(s)://host:port`).
    fn url_on(&self, node: &str) -> String {
        format!("{}{}", node.replacen("http", "ws", 1), self.kind.path())
    }

    /// A new request id, unique across page loads (the instance prefix) so the
    /// server's deduplication never confuses two page loads.
    pub(crate) fn new_id(&self) -> Id {
        let mut i = self.inner.borrow_mut();
        i.next += 1;
        Id::Str(format!("{}-{}", self.instance, i.next))
    }

    /// Sends `frame` (already carrying `id`) and waits for its answer: on this tab's
    /// connection, or through the leader tab's when this tab follows.
    pub(crate) async fn request(&self, id: Id, frame: String) -> Reply {
        loop {
            if !self.share.is_follower() {
                return self.local_request(id, frame).await;
            }
            let key = match &id {
                Id::Str(s) => s.clone(),
                Id::Num(n) => n.to_string(),
            };
            match self.share.forward(self.kind.name(), &key, &frame).await {
                Forwarded::Reply(Ok(v)) => return Ok(v),
                Forwarded::Reply(Err((code, message, retryable))) => {
                    return Err(match Code::parse(&code) {
                        Some(code) => local_refusal(code, &message),
                        None => Attempt::new(Failure::Server { code, message, retryable, retry_after_ms: None }),
                    });
                }
                // The leader changed (maybe to this tab): again, same id.
                Forwarded::Again => {}
            }
        }
    }

    /// Queues `frame` (already carrying `id`) on this tab's connection and waits for its
    /// answer. The entry leaves the outbox when answered or when this future is dropped.
    pub(crate) async fn local_request(&self, id: Id, frame: String) -> Reply {
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut i = self.inner.borrow_mut();
            if i.replaced {
                return Err(local_refusal(Code::Stopped, "another connection took this agent's name (4409)"));
            }
            if i.outbox.len() >= self.outbox_limit as usize {
                return Err(local_refusal(
                    Code::OutboxFull,
                    &format!("{} requests are already waiting on the {} socket", self.outbox_limit, self.kind.name()),
                ));
            }
            i.next += 1;
            let key = i.next;
            let out = Outgoing { frame, sent: false, resend: true, reply: Some(tx) };
            i.outbox.insert(key, (id, out));
            key
        };
        self.wake.notify();
        let _cleanup = OutboxEntry { socket: self, key };
        match rx.await {
            Ok(reply) => reply,
            Err(_) => Err(local_refusal(Code::Stopped, "the bridge stopped")),
        }
    }

    /// Queues a frame nobody waits for, sent on the current connection only (none in a
    /// follower tab: the leader acknowledges and subscribes for it).
    fn push(&self, frame: &ClientFrame) {
        if self.share.is_follower() {
            return;
        }
        {
            let mut i = self.inner.borrow_mut();
            i.next += 1;
            let key = i.next;
            let out = Outgoing { frame: frame.to_json(), sent: false, resend: false, reply: None };
            i.outbox.insert(key, (Id::Num(0), out));
        }
        self.wake.notify();
    }

    /// Evolution: calls `callback` with every event on `patterns` from now on.
    pub(crate) fn subscribe(&self, patterns: Vec<String>, callback: Function) -> u32 {
        let (id, fresh) = {
            let mut i = self.inner.borrow_mut();
            i.next_sub += 1;
            let id = i.next_sub;
            let mut fresh = Vec::new();
            for p in &patterns {
                let n = i.patterns.get_or_insert_with(p.clone(), || 0);
                *n += 1;
                if *n == 1 {
                    fresh.push(p.clone());
                }
            }
            i.subs.insert(id, Subscription { patterns, callback });
            (id, fresh)
        };
        // While connected, subscribe the new patterns now (from now on: no `since`).
        // While disconnected, the resume after reconnect includes them.
        if !fresh.is_empty() {
            self.share.post_patterns(&self.own_patterns());
        }
        if !fresh.is_empty() && self.is_open() {
            let id = self.new_id();
            self.push(&ClientFrame::Subscribe(bridge_core::protocol::Subscribe { id, topics: fresh, since: None }));
        }
        id
    }

    /// Evolution: ends subscription `id`; false if it did not exist.
    pub(crate) fn unsubscribe(&self, id: u32) -> bool {
        let gone = {
            let mut i = self.inner.borrow_mut();
            let Some(sub) = i.subs.remove(&id) else { return false };
            let mut gone = Vec::new();
            for p in sub.patterns {
                if let Some(n) = i.patterns.get_mut(&p) {
                    *n -= 1;
                    if *n == 0 {
                        i.patterns.remove(&p);
                        gone.push(p);
                    }
                }
            }
            gone
        };
        if !gone.is_empty() {
            self.share.post_patterns(&self.own_patterns());
        }
        if !gone.is_empty() && self.is_open() {
            let id = self.new_id();
            self.push(&ClientFrame::Unsubscribe(bridge_core::protocol::Unsubscribe { id, topics: gone }));
        }
        true
    }

    /// Evolution: this tab's own subscription patterns.
    pub(crate) fn own_patterns(&self) -> Vec<String> {
        self.inner.borrow().patterns.keys().cloned().collect()
    }

    /// Leader: the followers' patterns changed; subscribe what is new, drop what nobody wants.
    pub(crate) fn set_remote_patterns(&self, wanted: Vec<String>) {
        let (added, removed) = {
            let mut i = self.inner.borrow_mut();
            let own: Vec<String> = i.patterns.keys().cloned().collect();
            let added: Vec<String> =
                wanted.iter().filter(|p| !own.contains(p) && !i.remote.contains(p)).cloned().collect();
            let removed: Vec<String> =
                i.remote.iter().filter(|p| !own.contains(p) && !wanted.contains(p)).cloned().collect();
            i.remote = wanted;
            (added, removed)
        };
        if self.is_open() && !added.is_empty() {
            let id = self.new_id();
            self.push(&ClientFrame::Subscribe(bridge_core::protocol::Subscribe { id, topics: added, since: None }));
        }
        if self.is_open() && !removed.is_empty() {
            let id = self.new_id();
            self.push(&ClientFrame::Unsubscribe(bridge_core::protocol::Unsubscribe { id, topics: removed }));
        }
    }

    /// Every pattern this connection serves (this tab's and the followers'), each once.
    pub(crate) fn all_patterns(&self) -> Vec<String> {
        let i = self.inner.borrow();
        let mut all: Vec<String> = i.patterns.keys().cloned().collect();
        for p in &i.remote {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all
    }

    /// A frame the leader tab received, handled as if it came on this tab's connection.
    pub(crate) fn receive_shared(self: &Rc<Self>, text: &str) {
        session::on_frame(self, text);
    }

    /// Agents: the agent registered on every connect, if any.
    pub(crate) fn agent_name(&self) -> Option<String> {
        self.inner.borrow().agent.as_ref().map(|a| a.name.clone())
    }

    /// Agents: the agent to (re-)register on every connect.
    pub(crate) fn set_agent(&self, agent: AgentConfig) {
        self.inner.borrow_mut().agent = Some(agent);
    }

    /// Keeps the connection up until `lifetime` ends.
    pub(crate) async fn maintain(self: Rc<Self>) {
        let lifetime = self.lifetime();
        let tool = self.kind.tool();
        let mut short_sessions = 0u32;
        loop {
            if lifetime.is_stopped() || self.inner.borrow().replaced {
                self.set_state(SocketState::Stopped);
                return;
            }
            // Another tab leads: it keeps the connection; wait until this one leads.
            if self.share.is_follower() {
                self.set_state(SocketState::Connecting);
                let _ = lifetime.run(self.role.notified()).await;
                continue;
            }
            let first = self.inner.borrow().connects == 0;
            self.set_state(if first { SocketState::Connecting } else { SocketState::Reconnecting });
            // A known-offline browser attempts nothing: no retry burnt, no breaker charged.
            if !lifecycle::online() {
                self.note_error(lifecycle::OFFLINE.into());
                if lifetime.run(lifecycle::until_online(&self.page)).await.is_none() {
                    continue;
                }
            }
            // Stopping, or the browser going offline, ends the connect attempts.
            let stopped = Box::pin(async {
                let _ = race(lifetime.stopped(), lifecycle::until_offline(&self.page)).await;
            });
            let (result, _) = resilience::run(&self.resilience, tool, tool, None, stopped, &mut |_| {
                Box::pin(async {
                    // Each attempt goes to the node current at that moment: after a failure it may be another.
                    let node = self.backends.url();
                    let attempt = session::connect(&self, &node).await;
                    match &attempt {
                        Ok(_) => {
                            self.backends.succeeded(&node);
                            self.inner.borrow_mut().node = Some(node);
                        }
                        Err(e) => {
                            // Offline, the node is not to blame: stay with it.
                            if lifecycle::online() {
                                self.backends.failed(&node, &e.failure);
                            }
                            // Every failed attempt is visible at once (health, state), not only when the run ends.
                            self.note_error(e.failure.describe());
                        }
                    }
                    attempt
                })
            })
            .await;
            self.changed.notify();
            let policy = *self.resilience.borrow().policies.get(tool);
            let pause = match result {
                Ok((conn, heartbeat_ms)) => {
                    let started = platform::now();
                    let why = session::run(&self, conn, heartbeat_ms).await;
                    self.on_disconnected(why);
                    // A connection that keeps dropping right after opening backs off like a failed connect.
                    let lasted = platform::now().saturating_since(started);
                    short_sessions = if lasted < Duration::from_secs(5) { short_sessions + 1 } else { 0 };
                    let mut backoff = policy.backoff(platform::rng());
                    (0..short_sessions).filter_map(|_| backoff.next()).last().unwrap_or_default()
                }
                Err(RetryError::CircuitOpen { retry_in, .. }) => {
                    self.note_error("waiting for the circuit breaker to half-open".into());
                    retry_in.unwrap_or(Duration::from_secs(1)) + Duration::from_millis(1)
                }
                Err(_) if !lifecycle::online() => Duration::ZERO,
                Err(e) => {
                    self.note_error(resilience::describe(&e));
                    if e.outcome() == bridge_core::retry::Outcome::Permanent {
                        policy.max_delay()
                    } else {
                        policy.base_delay()
                    }
                }
            };
            // Back online, resumed or restored: reconnect now rather than after the backoff.
            if !pause.is_zero() && lifetime.run(lifecycle::pause(pause, &self.page)).await.is_none() {
                self.set_state(SocketState::Stopped);
                return;
            }
        }
    }

    fn note_error(&self, e: String) {
        self.inner.borrow_mut().last_error = Some(e);
        self.changed.notify();
    }

    /// After a connection ended: requests go back to unsent (re-sent on reconnect), frames tied
    /// to that connection are dropped.
    fn on_disconnected(&self, why: Failure) {
        let online = lifecycle::online();
        if let Some(node) = self.inner.borrow().node.clone()
            && online
        {
            self.backends.failed(&node, &why);
        }
        let replaced = matches!(why, Failure::SocketClosed { code: bridge_core::protocol::close::REPLACED, .. });
        {
            let mut i = self.inner.borrow_mut();
            i.connected_since = None;
            i.last_error = Some(why.describe());
            i.outbox.retain(|_, (_, o)| o.resend);
            for (_, o) in i.outbox.values_mut() {
                o.sent = false;
            }
            if replaced {
                i.replaced = true;
                for (_, (_, o)) in std::mem::take(&mut i.outbox) {
                    if let Some(tx) = o.reply {
                        let _ = tx.send(Err(local_refusal(Code::Stopped, "another connection took this agent's name")));
                    }
                }
            }
        }
        // The breaker hears about dropped connections too: repeated drops open it.
        let now = platform::now();
        if let Ok(b) = self.resilience.borrow_mut().breakers.get_or_create(self.kind.tool(), now)
            && let Ok(p) = b.try_acquire(now)
        {
            if why.is_transient() && online { b.on_failure(p, now) } else { b.on_abandoned(p, now) }
        }
        self.set_state(if replaced { SocketState::Stopped } else { SocketState::Reconnecting });
    }

    /// The lifetime the socket currently runs under.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime.borrow().clone()
    }

    /// Runs under a new lifetime (after a stop, for the next start).
    pub(crate) fn set_lifetime(&self, lifetime: Lifetime) {
        *self.lifetime.borrow_mut() = lifetime;
        self.inner.borrow_mut().replaced = false;
    }

    /// This tab stopped leading: what waits in its outbox fails as retryable, so each is
    /// tried again (same id) through the new leader.
    pub(crate) fn hand_over(&self) {
        let outbox = std::mem::take(&mut self.inner.borrow_mut().outbox);
        for (_, (_, o)) in outbox {
            if let Some(tx) = o.reply {
                let _ = tx.send(Err(local_refusal(Code::LeaderChanged, "another tab leads now")));
            }
        }
    }

    /// Fails every waiting request (the bridge stopped).
    pub(crate) fn shutdown(&self) {
        let outbox = std::mem::take(&mut self.inner.borrow_mut().outbox);
        for (_, (_, o)) in outbox {
            if let Some(tx) = o.reply {
                let _ = tx.send(Err(local_refusal(Code::Stopped, "the bridge stopped")));
            }
        }
        self.set_state(SocketState::Stopped);
    }
}

/// Removes a request's outbox entry when its waiter goes away (answered, timed out, cancelled).
struct OutboxEntry<'a> {
    socket: &'a Socket,
    key: u64,
}

impl Drop for OutboxEntry<'_> {
    fn drop(&mut self) {
        self.socket.inner.borrow_mut().outbox.remove(&self.key);
    }
}
