//! A bridge socket's session as a state machine with no I/O of its own.
//!
//! Whoever owns the socket (the browser bridge; tests) feeds it what happens,
//! the connection opened, a frame arrived, it closed, a timer fired at `now`,
//! the page asked for something, and then drains [`Session::poll_transmit`]
//! (frames to write) and [`Session::poll_output`] (answers to hand back,
//! events and messages for the page).
//! Time is a value passed in and there is no randomness here, so every drop,
//! duplicate, reset and reconnect can be replayed in a test in microseconds.
//!
//! What it keeps across connections:
//! - the outbox: requests wait while disconnected and are sent again with the
//!   same id after a reconnect until answered (the server de-duplicates by id);
//! - evolution: the last stream position, and the page's subscriptions with a
//!   count per pattern, so a reconnect subscribes each pattern once `since`
//!   that position and events seen before are dropped;
//! - agents: the agent to register again, and the messages already handed to
//!   the page, so a redelivery is acknowledged but not handed over twice.
//!
//! - `inbound`: server frames as the session reads them.
//! - `outbox`: frames waiting to be sent or answered.
//! - `written`: the frames a session writes.

use std::collections::VecDeque;
use std::time::Duration;

use crate::heartbeat::{Heartbeat, Tick};
use crate::protocol::{Hello, Id, MessageAck, PROTOCOL_VERSION, Ping, Position, Register, Subscribe, Unsubscribe};
use crate::report::{SocketSnapshot, SocketState};
use crate::retry::Failure;
use crate::text;
use crate::time::Millis;
use crate::vecmap::VecMap;

mod inbound;
mod outbox;
mod written;
// Property tests need OS randomness, which wasm32 lacks (as tests/properties.rs).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use inbound::{Inbound, error_failure};
use outbox::Outbox;
use written::Written;

/// Which socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/evolution`: events and requests to handler daemons.
    Evolution,
    /// `/agents`: agent-to-agent messages.
    Agents,
}

impl Kind {
    /// The socket's path on a node.
    pub const fn path(self) -> &'static str {
        match self {
            Kind::Evolution => "/evolution",
            Kind::Agents => "/agents",
        }
    }

    /// The name of the socket's policy, breaker and metrics.
    pub const fn tool(self) -> &'static str {
        match self {
            Kind::Evolution => crate::retry::names::CONNECT_EVOLUTION_SOCKET,
            Kind::Agents => crate::retry::names::CONNECT_AGENT_SOCKET,
        }
    }

    /// Its short name (`evolution`, `agents`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Evolution => "evolution",
            Kind::Agents => "agents",
        }
    }
}

/// Who a session says it is in `hello`, and how its request ids start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `client` of hello: stable per bridge, so the server can de-duplicate across reconnects.
    pub client: String,
    /// The token, when the server wants one.
    pub token: Option<String>,
    /// Random per page load: prefixes request ids, so two page loads never share one.
    pub instance: String,
}

/// Why a request ends without an answer from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The outbox already holds its limit of requests.
    OutboxFull {
        /// The limit.
        limit: u32,
    },
    /// Another connection took this agent's name (close 4409); the session stays stopped.
    Replaced,
    /// The session stopped.
    Stopped,
    /// Another tab leads the connection now: try again through it.
    LeaderChanged,
}

impl Refusal {
    /// A sentence for a person.
    pub fn describe(self, kind: Kind) -> String {
        match self {
            Refusal::OutboxFull { limit } => {
                text!(limit, " requests are already waiting on the ", kind.name(), " socket")
            }
            Refusal::Replaced => "another connection took this agent's name (4409)".into(),
            Refusal::Stopped => "the bridge stopped".into(),
            Refusal::LeaderChanged => "another tab leads now".into(),
        }
    }
}

/// What the owner of the socket is to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<P> {
    /// Request `key` has its answer.
    Answer {
        /// As [`Session::request`] returned it.
        key: u64,
        /// The answer frame, or the error the server answered with.
        reply: Result<P, Failure>,
    },
    /// Request `key` ends without an answer.
    Refused {
        /// As [`Session::request`] returned it.
        key: u64,
        /// Why.
        refusal: Refusal,
    },
    /// An event for the page's subscriptions `subs` (each once).
    Event {
        /// Subscription ids, as [`Session::subscribe`] returned them.
        subs: Vec<u32>,
        /// The event frame.
        payload: P,
    },
    /// The stream was reset: events were missed.
    Reset(P),
    /// An agent came or went.
    Presence(P),
    /// An agent message for the page. Once the page has handled it, hand `ack`
    /// to [`Session::push`]; until then a reconnect gets it redelivered.
    Message {
        /// The message frame.
        payload: P,
        /// The acknowledgement to send; `None` for broadcasts.
        ack: Option<String>,
    },
    /// The server reported an error about no request of ours.
    ServerError(Failure),
    /// What [`Session::snapshot`] shows changed.
    Changed,
}

/// Where the current connection is.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// No connection.
    Idle,
    /// Opened, hello sent; an error frame before the close says why it was refused.
    Handshake { refused: Option<Failure> },
    /// Welcomed.
    Open { since: Millis, heartbeat: Heartbeat, interval: Duration },
}

/// How many agent messages are remembered to recognise a redelivery of one already handled.
pub const SEEN_MESSAGES: usize = 1024;

/// A connection shorter than this that drops counts as a failed connect for the backoff.
pub const SHORT_SESSION: Duration = Duration::from_secs(5);

/// See the module docs. `P` is a parsed server frame (a `JsValue` in the browser).
#[derive(Debug)]
pub struct Session<P> {
    kind: Kind,
    identity: Identity,
    phase: Phase,
    state: SocketState,
    outbox: Outbox,
    next_id: u64,
    pings: u64,
    connects: u64,
    short_sessions: u32,
    last_error: Option<String>,
    /// Evolution: the last position seen (event, reset, or the head at subscribe).
    position: Option<Position>,
    /// This tab's patterns, each with how many subscriptions want it.
    patterns: VecMap<String, usize>,
    subs: VecMap<u32, Vec<String>>,
    next_sub: u32,
    /// Patterns subscribed for other tabs that share this connection.
    remote: Vec<String>,
    resets: u64,
    duplicates_dropped: u64,
    /// Agents: the name and capabilities registered on every connect.
    agent: Option<(String, Vec<String>)>,
    seen: VecDeque<(String, Id)>,
    /// Closed with 4409: another connection took our agent name.
    replaced: bool,
    outputs: VecDeque<Output<P>>,
}

impl<P> Session<P> {
    /// A stopped session whose outbox holds at most `outbox_limit` requests.
    pub fn new(kind: Kind, identity: Identity, outbox_limit: u32) -> Self {
        Self {
            kind,
            identity,
            phase: Phase::Idle,
            state: SocketState::Stopped,
            outbox: Outbox::new(outbox_limit),
            next_id: 0,
            pings: 0,
            connects: 0,
            short_sessions: 0,
            last_error: None,
            position: None,
            patterns: VecMap::new(),
            subs: VecMap::new(),
            next_sub: 0,
            remote: Vec::new(),
            resets: 0,
            duplicates_dropped: 0,
            agent: None,
            seen: VecDeque::new(),
            replaced: false,
            outputs: VecDeque::new(),
        }
    }

    /// Which socket this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    // ---- what the owner reads ----

    /// The next thing to do for the page, in the order the inputs produced them.
    pub fn poll_output(&mut self) -> Option<Output<P>> {
        self.outputs.pop_front()
    }

    /// The next frame to write on the connection, while open: each frame of
    /// the outbox not yet sent on this connection, oldest first.
    pub fn poll_transmit(&mut self) -> Option<String> {
        match self.phase {
            Phase::Open { .. } => self.outbox.next_unsent(),
            _ => None,
        }
    }

    /// The state as `state()` and reports show it.
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// True while welcomed.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Another connection took this agent's name: no reconnect until [`Session::restart`].
    pub fn is_replaced(&self) -> bool {
        self.replaced
    }

    /// How long to wait for a frame before the next heartbeat tick, while open.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        match &self.phase {
            Phase::Open { interval, .. } => Some(*interval),
            _ => None,
        }
    }

    /// The last position seen, as `epoch:seq`.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Events dropped as already seen.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates_dropped
    }

    /// The socket as `state()` shows it, at `url`.
    pub fn snapshot(&self, url: String) -> SocketSnapshot {
        SocketSnapshot {
            state: self.state,
            url,
            connected_since: match &self.phase {
                Phase::Open { since, .. } => Some(*since),
                _ => None,
            },
            reconnects: self.connects.saturating_sub(1),
            outbox: self.outbox.requests() as u32,
            outbox_limit: self.outbox.limit(),
            last_error: self.last_error.clone(),
            position: self.position.as_ref().map(|p| text!(p.epoch, ':', p.seq)),
            resets: self.resets,
        }
    }

    // ---- the page's calls ----

    /// A new request id, unique across page loads.
    pub fn new_id(&mut self) -> Id {
        self.next_id += 1;
        Id::Str(text!(self.identity.instance, '-', self.next_id))
    }

    /// Queues request `frame` (which carries `id`); its answer comes as
    /// [`Output::Answer`] with the returned key.
    pub fn request(&mut self, id: Id, frame: String) -> Result<u64, Refusal> {
        if self.replaced {
            return Err(Refusal::Replaced);
        }
        self.outbox.request(id, frame).ok_or(Refusal::OutboxFull { limit: self.outbox.limit() })
    }

    /// The caller of request `key` stopped waiting: it leaves the outbox.
    pub fn cancel(&mut self, key: u64) {
        self.outbox.cancel(key);
    }

    /// Sends `frame` on the current connection, if one is open (an ack, say);
    /// frames for a connection that is gone are not sent on the next one.
    pub fn push(&mut self, frame: String) {
        if self.is_open() {
            self.outbox.push(frame);
        }
    }

    /// Evolution: subscribes `patterns`; returns the subscription's id and
    /// whether this tab's own pattern set grew.
    pub fn subscribe(&mut self, patterns: Vec<String>) -> (u32, bool) {
        self.next_sub += 1;
        let id = self.next_sub;
        let mut added = Vec::new();
        for p in &patterns {
            let n = self.patterns.get_or_insert_with(p.clone(), || 0);
            *n += 1;
            if *n == 1 {
                added.push(p.clone());
            }
        }
        let grew = !added.is_empty();
        // Patterns another tab already wants are subscribed on this connection already.
        let fresh: Vec<String> = added.into_iter().filter(|p| !self.remote.contains(p)).collect();
        self.subs.insert(id, patterns);
        // While disconnected, the resume after the next welcome includes them.
        if !fresh.is_empty() && self.is_open() {
            let id = self.new_id();
            self.push(Written::Subscribe(Subscribe { id, topics: fresh, since: None }).text());
        }
        (id, grew)
    }

    /// Evolution: ends subscription `id`; `None` if there is none, else
    /// whether this tab's own pattern set shrank.
    pub fn unsubscribe(&mut self, id: u32) -> Option<bool> {
        let patterns = self.subs.remove(&id)?;
        let mut gone = Vec::new();
        for p in patterns {
            if let Some(n) = self.patterns.get_mut(&p) {
                *n -= 1;
                if *n == 0 {
                    self.patterns.remove(&p);
                    gone.push(p);
                }
            }
        }
        let shrank = !gone.is_empty();
        gone.retain(|p| !self.remote.contains(p));
        if !gone.is_empty() && self.is_open() {
            let id = self.new_id();
            self.push(Written::Unsubscribe(Unsubscribe { id, topics: gone }).text());
        }
        Some(shrank)
    }

    /// Evolution: this tab's own patterns.
    pub fn own_patterns(&self) -> Vec<String> {
        self.patterns.keys().cloned().collect()
    }

    /// Every pattern this connection serves (this tab's and other tabs'), each once.
    pub fn all_patterns(&self) -> Vec<String> {
        let mut all = self.own_patterns();
        for p in &self.remote {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all
    }

    /// The patterns other tabs want through this connection: subscribes what
    /// is new and drops what nobody wants any more.
    pub fn set_remote_patterns(&mut self, wanted: Vec<String>) {
        let own = |p: &String| self.patterns.contains_key(p);
        let added: Vec<String> = wanted.iter().filter(|p| !own(p) && !self.remote.contains(p)).cloned().collect();
        let removed: Vec<String> = self.remote.iter().filter(|p| !own(p) && !wanted.contains(p)).cloned().collect();
        self.remote = wanted;
        if self.is_open() && !added.is_empty() {
            let id = self.new_id();
            self.push(Written::Subscribe(Subscribe { id, topics: added, since: None }).text());
        }
        if self.is_open() && !removed.is_empty() {
            let id = self.new_id();
            self.push(Written::Unsubscribe(Unsubscribe { id, topics: removed }).text());
        }
    }

    /// Resumes from `position` (where another tab's connection was) if this
    /// session has seen none yet.
    pub fn adopt_position(&mut self, position: Position) {
        if self.position.is_none() {
            self.position = Some(position);
        }
    }

    /// Agents: the agent to register on every connect.
    pub fn set_agent(&mut self, name: String, capabilities: Vec<String>) {
        self.agent = Some((name, capabilities));
    }

    /// Agents: the registered agent's name.
    pub fn agent_name(&self) -> Option<&str> {
        self.agent.as_ref().map(|(n, _)| n.as_str())
    }

    /// Records what went wrong last, for the snapshot.
    pub fn note_error(&mut self, error: String) {
        self.last_error = Some(error);
        self.outputs.push_back(Output::Changed);
    }

    // ---- the connection's life ----

    /// About to connect: `connecting` the first time, `reconnecting` after.
    pub fn connecting(&mut self) {
        self.set_state(if self.connects == 0 { SocketState::Connecting } else { SocketState::Reconnecting });
    }

    /// Another tab holds the connection; this one waits.
    pub fn following(&mut self) {
        self.set_state(SocketState::Connecting);
    }

    /// The socket opened: returns the `hello` to send.
    pub fn opened(&mut self) -> String {
        self.phase = Phase::Handshake { refused: None };
        Written::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client: self.identity.client.clone(),
            token: self.identity.token.clone(),
        })
        .text()
    }

    /// The socket closed before the welcome: why the attempt failed (the
    /// server's explanation when it sent one, else `why`).
    pub fn handshake_failed(&mut self, why: Failure) -> Failure {
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        match phase {
            Phase::Handshake { refused: Some(refused) } => refused,
            _ => why,
        }
    }

    /// A frame arrived at `now` (on this connection, or shared by the tab that leads).
    pub fn frame(&mut self, now: Millis, frame: Inbound<P>) {
        if let Phase::Open { heartbeat, .. } = &mut self.phase {
            heartbeat.heard();
        }
        match frame {
            Inbound::Welcome { heartbeat_ms } => self.welcomed(now, heartbeat_ms),
            Inbound::Answer { id, position, payload } => {
                if let Some(p) = position {
                    self.adopt_position(p);
                }
                if let Some(key) = self.outbox.answered(&id) {
                    self.outputs.push_back(Output::Answer { key, reply: Ok(payload) });
                }
            }
            Inbound::Error { id: Some(id), failure } => {
                if let Some(key) = self.outbox.answered(&id) {
                    self.outputs.push_back(Output::Answer { key, reply: Err(failure) });
                }
            }
            Inbound::Error { id: None, failure } => match &mut self.phase {
                // The server explains before it closes: keep the explanation for the close.
                Phase::Handshake { refused } => *refused = Some(failure),
                _ => self.outputs.push_back(Output::ServerError(failure)),
            },
            Inbound::Event { position, topic, payload } => self.on_event(position, &topic, payload),
            Inbound::Reset { position, payload } => {
                self.position = Some(position);
                self.resets += 1;
                self.outputs.push_back(Output::Changed);
                self.outputs.push_back(Output::Reset(payload));
            }
            Inbound::Message { id, from, broadcast, payload } => self.on_message(id, from, broadcast, payload),
            Inbound::Presence { payload } => self.outputs.push_back(Output::Presence(payload)),
            Inbound::Other => {}
        }
    }

    /// A heartbeat interval passed at `now` with nothing heard: pings, or
    /// returns why the connection counts as dead (close it).
    pub fn tick(&mut self, now: Millis) -> Result<(), Failure> {
        let Phase::Open { heartbeat, .. } = &mut self.phase else { return Ok(()) };
        let now_ms = now.as_u64() as f64;
        if heartbeat.tick(now_ms) == Tick::Dead {
            return Err(Failure::Timeout { after_ms: heartbeat.waited_ms(now_ms) as u64 });
        }
        self.pings += 1;
        let ping = Written::Ping(Ping { id: Id::Str(text!("hb-", self.pings)) });
        self.outbox.push(ping.text());
        Ok(())
    }

    /// The welcomed connection ended at `now` because of `why`. Requests wait
    /// to be sent again; frames tied to that connection go. Returns how long to
    /// wait before connecting again, taking the next delay of `backoff` for each
    /// connection in a row that lasted under [`SHORT_SESSION`]; `None` when the
    /// session must not reconnect (another connection took the agent's name).
    pub fn closed(&mut self, now: Millis, why: &Failure, backoff: impl Iterator<Item = Duration>) -> Option<Duration> {
        let lasted = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Open { since, .. } => now.saturating_since(since),
            _ => Duration::ZERO,
        };
        self.last_error = Some(why.describe());
        self.outbox.disconnected();
        if matches!(why, Failure::SocketClosed { code: crate::protocol::close::REPLACED, .. }) {
            self.replaced = true;
            self.refuse_all(Refusal::Replaced);
            self.set_state(SocketState::Stopped);
            return None;
        }
        self.set_state(SocketState::Reconnecting);
        self.short_sessions = if lasted < SHORT_SESSION { self.short_sessions + 1 } else { 0 };
        let pause = backoff.take(self.short_sessions as usize).last().unwrap_or_default();
        Some(pause)
    }

    /// This tab stopped leading: waiting requests are refused as
    /// [`Refusal::LeaderChanged`], to be tried again (same id) through the new leader.
    pub fn hand_over(&mut self) {
        self.phase = Phase::Idle;
        self.refuse_all(Refusal::LeaderChanged);
    }

    /// The session stops: waiting requests are refused.
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.refuse_all(Refusal::Stopped);
        self.set_state(SocketState::Stopped);
    }

    /// Starts again after a stop (a name taken by another connection may be taken back).
    pub fn restart(&mut self) {
        self.replaced = false;
    }

    // ---- inside ----

    fn set_state(&mut self, state: SocketState) {
        if self.state != state {
            self.state = state;
            self.outputs.push_back(Output::Changed);
        }
    }

    fn refuse_all(&mut self, refusal: Refusal) {
        for key in self.outbox.drain() {
            self.outputs.push_back(Output::Refused { key, refusal });
        }
    }

    /// Welcome: subscribe again from the last position or register the agent
    /// again, ahead of the waiting requests.
    fn welcomed(&mut self, now: Millis, heartbeat_ms: u64) {
        let interval = Duration::from_millis(heartbeat_ms.clamp(100, 60_000));
        self.phase = Phase::Open { since: now, heartbeat: Heartbeat::new(interval.as_secs_f64() * 1000.0), interval };
        self.connects += 1;
        self.last_error = None;
        let resume = match self.kind {
            Kind::Evolution => {
                let topics = self.all_patterns();
                (!topics.is_empty())
                    .then(|| Written::Subscribe(Subscribe { id: Id::Num(0), topics, since: self.position.clone() }))
            }
            Kind::Agents => self.agent.as_ref().map(|(agent, capabilities)| {
                Written::Register(Register {
                    id: Id::Num(0),
                    agent: agent.clone(),
                    capabilities: capabilities.clone(),
                    presence: true,
                    takeover: true,
                })
            }),
        };
        if let Some(mut frame) = resume {
            let id = self.new_id();
            match &mut frame {
                Written::Subscribe(s) => s.id = id,
                Written::Register(r) => r.id = id,
                _ => {}
            }
            self.outbox.push_first(frame.text());
        }
        // Connects and the last error changed too: one `Changed` whatever the state was.
        self.state = SocketState::Open;
        self.outputs.push_back(Output::Changed);
    }

    fn on_event(&mut self, position: Position, topic: &str, payload: P) {
        if let Some(p) = &self.position
            && p.epoch == position.epoch
            && position.seq <= p.seq
        {
            self.duplicates_dropped += 1;
            return;
        }
        self.position = Some(position);
        let subs: Vec<u32> = self
            .subs
            .iter()
            .filter(|(_, patterns)| patterns.iter().any(|p| crate::protocol::rules::pattern_matches(p, topic)))
            .map(|(id, _)| *id)
            .collect();
        self.outputs.push_back(Output::Event { subs, payload });
    }

    fn on_message(&mut self, id: Id, from: String, broadcast: bool, payload: P) {
        if broadcast {
            self.outputs.push_back(Output::Message { payload, ack: None });
            return;
        }
        let ack = Written::Ack(MessageAck { id: id.clone(), from: from.clone() }).text();
        let key = (from, id);
        if self.seen.contains(&key) {
            // Handled before and our ack was lost: ack again, do not hand it over twice.
            self.push(ack);
            return;
        }
        // A bounded FIFO, searched linearly: at most a thousand short keys.
        self.seen.push_back(key);
        if self.seen.len() > SEEN_MESSAGES {
            self.seen.pop_front();
        }
        self.outputs.push_back(Output::Message { payload, ack: Some(ack) });
    }
}
