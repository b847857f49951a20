//! A resilient WebSocket to the backend (evolution or agents): the browser's
//! side of [`bridge_core::session::Session`], which decides what to send and
//! what the page gets; this module opens sockets, runs timers and calls the page.
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
//! - `driver`: one connection's life, from hello to close, and the session's outputs.
//! - `inbound`: server frames read with `JSON.parse` into the session's input.
//! - [`outbound`]: request frames that carry page JSON, written as text.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bridge_core::protocol::{Id, Position};
use bridge_core::report::{SocketSnapshot, SocketState};
use bridge_core::retry::driver::race;
use bridge_core::retry::{Failure, RetryError};
pub(crate) use bridge_core::session::Kind;
use bridge_core::session::{Identity, Refusal, Session};
use bridge_core::vecmap::VecMap;
use futures_channel::oneshot;
use js_sys::Function;
use wasm_bindgen::JsValue;

use crate::backends::Backends;
use crate::config::AgentConfig;
use crate::events::Events;
use crate::js::Code;
use crate::lifecycle;
use crate::platform::{self, Lifetime, Signal};
use crate::resilience::{self, Attempt, Shared, local_refusal};
use crate::share::{Forwarded, Share};

pub(crate) mod conn;
mod driver;
mod inbound;
pub(crate) mod outbound;

/// What a request is answered with: the parsed answer frame (`ack`, `response`, `agents`).
type Reply = Result<JsValue, Attempt>;

/// A request the session ended without an answer, as the page sees it.
fn refusal(kind: Kind, r: Refusal) -> Attempt {
    let code = match r {
        Refusal::OutboxFull { .. } => Code::OutboxFull,
        Refusal::LeaderChanged => Code::LeaderChanged,
        _ => Code::Stopped,
    };
    local_refusal(code, &r.describe(kind))
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
    resilience: Shared,
    events: Rc<Events>,
    lifetime: RefCell<Lifetime>,
    changed: Signal,
    /// Wakes the connection's loop: frames to send.
    wake: Signal,
    /// See [`Wiring::page`].
    page: Signal,
    pub(crate) share: Rc<Share>,
    pub(crate) role: Signal,
    /// What to send and what the page gets: decided there, done here.
    session: RefCell<Session<JsValue>>,
    /// Who waits for each request, by the session's key.
    waiters: RefCell<VecMap<u64, oneshot::Sender<Reply>>>,
    /// The page's subscription callbacks, by the session's subscription id.
    callbacks: RefCell<VecMap<u32, Function>>,
    /// The node of the current (or last) connection.
    node: RefCell<Option<String>>,
}

impl Socket {
    pub(crate) fn new(kind: Kind, w: Wiring, lifetime: Lifetime) -> Rc<Self> {
        let identity = Identity { client: w.client, token: w.token, instance: w.instance };
        Rc::new(Self {
            kind,
            backends: w.backends,
            resilience: w.resilience,
            events: w.events,
            lifetime: RefCell::new(lifetime),
            changed: w.changed,
            wake: Signal::default(),
            page: w.page,
            share: w.share,
            role: w.role,
            session: RefCell::new(Session::new(kind, identity, w.outbox_limit)),
            waiters: RefCell::default(),
            callbacks: RefCell::default(),
            node: RefCell::default(),
        })
    }

    /// Gives the session an input, then does what it asks of the page.
    fn with_session<T>(self: &Rc<Self>, input: impl FnOnce(&mut Session<JsValue>) -> T) -> T {
        let out = input(&mut self.session.borrow_mut());
        driver::drain(self);
        out
    }

    /// How this socket looks in `state()` and reports. In a follower tab its state is the
    /// leader's (the connection this tab uses); the rest is this tab's own.
    pub(crate) fn snapshot(&self) -> SocketSnapshot {
        let node = self.node.borrow().clone().unwrap_or_else(|| self.backends.url());
        let mut snapshot = self.session.borrow().snapshot(self.url_on(&node));
        if let Some(led) = self.share.is_follower().then(|| self.leader_state()).flatten() {
            snapshot.state = led;
        }
        snapshot
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
        self.session.borrow_mut().new_id()
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
    /// answer. The request leaves the outbox when answered or when this future is dropped.
    pub(crate) async fn local_request(&self, id: Id, frame: String) -> Reply {
        let key = self.session.borrow_mut().request(id, frame).map_err(|r| refusal(self.kind, r))?;
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().insert(key, tx);
        self.wake.notify();
        let _cleanup = Waiting { socket: self, key };
        match rx.await {
            Ok(reply) => reply,
            Err(_) => Err(local_refusal(Code::Stopped, "the bridge stopped")),
        }
    }

    /// Hands request `key` its answer.
    fn answer(&self, key: u64, reply: Reply) {
        if let Some(tx) = self.waiters.borrow_mut().remove(&key) {
            let _ = tx.send(reply);
        }
    }

    /// The callbacks of subscriptions `subs`.
    fn callbacks(&self, subs: &[u32]) -> Vec<Function> {
        let callbacks = self.callbacks.borrow();
        subs.iter().filter_map(|id| callbacks.get(id).cloned()).collect()
    }

    /// Sends a frame nobody waits for on the current connection (none in a follower tab:
    /// the leader acknowledges for it).
    fn push(&self, frame: String) {
        if self.share.is_follower() {
            return;
        }
        self.session.borrow_mut().push(frame);
        self.wake.notify();
    }

    /// Evolution: calls `callback` with every event on `patterns` from now on.
    pub(crate) fn subscribe(&self, patterns: Vec<String>, callback: Function) -> u32 {
        let (id, grew) = self.session.borrow_mut().subscribe(patterns);
        self.callbacks.borrow_mut().insert(id, callback);
        if grew {
            self.share.post_patterns(&self.own_patterns());
        }
        self.wake.notify();
        id
    }

    /// Evolution: ends subscription `id`; false if it did not exist.
    pub(crate) fn unsubscribe(&self, id: u32) -> bool {
        self.callbacks.borrow_mut().remove(&id);
        let Some(shrank) = self.session.borrow_mut().unsubscribe(id) else { return false };
        if shrank {
            self.share.post_patterns(&self.own_patterns());
        }
        self.wake.notify();
        true
    }

    /// Evolution: this tab's own subscription patterns.
    pub(crate) fn own_patterns(&self) -> Vec<String> {
        self.session.borrow().own_patterns()
    }

    /// Leader: the followers' patterns changed; subscribe what is new, drop what nobody wants.
    pub(crate) fn set_remote_patterns(&self, wanted: Vec<String>) {
        self.session.borrow_mut().set_remote_patterns(wanted);
        self.wake.notify();
    }

    /// Every pattern this connection serves (this tab's and the followers'), each once.
    pub(crate) fn all_patterns(&self) -> Vec<String> {
        self.session.borrow().all_patterns()
    }

    /// Before connecting as the leader: the followers' patterns, and those of the
    /// leader this tab took over from; a tab that saw no event yet resumes from
    /// where that leader was.
    fn take_over_patterns(&self) {
        let mut remote = self.share.followers_patterns();
        for p in self.share.leader_union() {
            if !remote.contains(&p) {
                remote.push(p);
            }
        }
        let mut session = self.session.borrow_mut();
        session.set_remote_patterns(remote);
        if let Some((epoch, seq)) = self.share.leader_position().as_deref().and_then(|p| p.rsplit_once(':'))
            && let Ok(seq) = seq.parse()
        {
            session.adopt_position(Position { epoch: epoch.to_owned(), seq });
        }
    }

    /// A frame the leader tab received, handled as if it came on this tab's connection.
    pub(crate) fn receive_shared(self: &Rc<Self>, text: &str) {
        driver::on_frame(self, text);
    }

    /// Agents: the agent registered on every connect, if any.
    pub(crate) fn agent_name(&self) -> Option<String> {
        self.session.borrow().agent_name().map(str::to_owned)
    }

    /// Agents: the agent to (re-)register on every connect.
    pub(crate) fn set_agent(&self, agent: AgentConfig) {
        self.session.borrow_mut().set_agent(agent.name, agent.capabilities);
    }

    /// Keeps the connection up until `lifetime` ends.
    pub(crate) async fn maintain(self: Rc<Self>) {
        let lifetime = self.lifetime();
        let tool = self.kind.tool();
        loop {
            if lifetime.is_stopped() || self.session.borrow().is_replaced() {
                self.stopped();
                return;
            }
            // Another tab leads: it keeps the connection; wait until this one leads.
            if self.share.is_follower() {
                self.with_session(|s| s.following());
                let _ = lifetime.run(self.role.notified()).await;
                continue;
            }
            self.with_session(|s| s.connecting());
            // Leading: subscribe for the other tabs too, from where the tab led before left off.
            if self.kind == Kind::Evolution {
                self.take_over_patterns();
            }
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
                    let attempt = driver::connect(&self, &node).await;
                    match &attempt {
                        Ok(_) => {
                            self.backends.succeeded(&node);
                            *self.node.borrow_mut() = Some(node);
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
                Ok(conn) => {
                    let why = driver::run(&self, conn).await;
                    // A connection that keeps dropping right after opening backs off like a failed connect.
                    match self.on_disconnected(why, policy.backoff(platform::rng())) {
                        Some(pause) => pause,
                        None => continue,
                    }
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
                self.stopped();
                return;
            }
        }
    }

    fn note_error(self: &Rc<Self>, e: String) {
        self.with_session(|s| s.note_error(e));
    }

    fn stopped(self: &Rc<Self>) {
        self.with_session(|s| s.stop());
    }

    /// After a connection ended: the session keeps the requests for the next one, the
    /// node and the breaker hear of the drop. Returns the pause before reconnecting,
    /// `None` when this socket must not reconnect.
    fn on_disconnected(self: &Rc<Self>, why: Failure, backoff: impl Iterator<Item = Duration>) -> Option<Duration> {
        let online = lifecycle::online();
        if let Some(node) = self.node.borrow().clone()
            && online
        {
            self.backends.failed(&node, &why);
        }
        // The breaker hears about dropped connections too: repeated drops open it.
        let now = platform::now();
        if let Ok(b) = self.resilience.borrow_mut().breakers.get_or_create(self.kind.tool(), now)
            && let Ok(p) = b.try_acquire(now)
        {
            if why.is_transient() && online { b.on_failure(p, now) } else { b.on_abandoned(p, now) }
        }
        self.with_session(|s| s.closed(now, &why, backoff))
    }

    /// The lifetime the socket currently runs under.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime.borrow().clone()
    }

    /// Runs under a new lifetime (after a stop, for the next start).
    pub(crate) fn set_lifetime(&self, lifetime: Lifetime) {
        *self.lifetime.borrow_mut() = lifetime;
        self.session.borrow_mut().restart();
    }

    /// This tab stopped leading: what waits in its outbox fails as retryable, so each is
    /// tried again (same id) through the new leader.
    pub(crate) fn hand_over(self: &Rc<Self>) {
        self.with_session(|s| s.hand_over());
    }

    /// Fails every waiting request (the bridge stopped).
    pub(crate) fn shutdown(self: &Rc<Self>) {
        self.stopped();
    }
}

/// Takes a request out of the outbox when its waiter goes away (answered, timed out, cancelled).
struct Waiting<'a> {
    socket: &'a Socket,
    key: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.socket.session.borrow_mut().cancel(self.key);
        self.socket.waiters.borrow_mut().remove(&self.key);
    }
}
