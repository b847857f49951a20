//! The evolution (0) and agents (1) sockets' sessions: bridge-core's
//! [`Session`], which decides what to send and what the page gets. The driver
//! opens the socket, feeds in what happens ([`Core::frame`], [`Core::dropped`],
//! [`Core::tick`], the page's calls), then writes what [`Core::transmit`]
//! gives and acts on each [`Core::output`].

use bridge_core::protocol::{Id, Position};
use bridge_core::session::{Output, Refusal, Session};
use bridge_core::time::Millis;

use super::Core;
use super::edge::{Value, json};
use super::inbound::{Fields, read};

/// What an output is (`js/core.js` names them in this order): see [`Core::output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OutKind {
    /// Request `key` has its answer `value`.
    Answer,
    /// The server refused request `key`: `text` is the failure as JSON.
    Failed,
    /// An event `value` for subscriptions `subs`.
    Event,
    /// The server's event stream restarted (`value`).
    Reset,
    /// Who is online changed (`value`).
    Presence,
    /// A message `value`; `text` is the ack to push once it is handled.
    Message,
    /// The server reported an error about no request: `text`.
    Error,
    /// The socket's state changed.
    Changed,
    /// Request `key` refused, the outbox being full (`text` says so).
    OutboxFull,
    /// Request `key` refused: this tab stopped leading.
    LeaderChanged,
    /// Request `key` refused: the bridge stopped.
    Stopped,
}

/// One thing to do for the page (see [`Core::output`]).
#[derive(Debug)]
pub struct Out {
    /// What it is.
    pub kind: OutKind,
    /// The request it answers or refuses.
    pub key: f64,
    /// The frame it carries.
    pub value: Option<Value>,
    /// Its text (see [`OutKind`]).
    pub text: Option<String>,
    /// An event's subscriptions.
    pub subs: Vec<u32>,
}

impl Out {
    fn new(kind: OutKind, key: f64, value: Option<Value>, text: Option<String>) -> Out {
        Out { kind, key, value, text, subs: Vec::new() }
    }
}

/// What a refused request is told: the bridge's own code (its kind) and a sentence.
fn refused(kind: bridge_core::session::Kind, key: f64, r: Refusal) -> Out {
    let code = match r {
        Refusal::OutboxFull { .. } => OutKind::OutboxFull,
        Refusal::LeaderChanged => OutKind::LeaderChanged,
        _ => OutKind::Stopped,
    };
    Out::new(code, key, None, Some(r.describe(kind)))
}

impl Core {
    fn session(&mut self, k: usize) -> Option<&mut Session<Value>> {
        self.sessions.get_mut(k)?.as_mut()
    }
    /// The name of socket `k`'s policy, breaker and metrics (`connectEvolutionSocket`, `connectAgentSocket`).
    pub fn socket_tool(&self, k: usize) -> String {
        self.sessions.get(k).and_then(Option::as_ref).map_or("", |s| s.kind().tool()).to_owned()
    }

    // ---- the page's calls ----

    /// A new request id for socket `k`, unique across page loads.
    pub fn new_id(&mut self, k: usize) -> String {
        match self.session(k).map(|s| s.new_id()) {
            Some(Id::Str(s)) => s,
            Some(Id::Num(n)) => bridge_core::text!(n),
            None => String::new(),
        }
    }

    /// Queues request `frame` (carrying `id`): its key (its answer comes as an output with
    /// it), or a refusal when it cannot wait.
    pub fn request(&mut self, k: usize, id: String, frame: String) -> Result<u64, Out> {
        let Some(s) = self.session(k) else { return Err(Out::new(OutKind::Stopped, -1.0, None, None)) };
        let kind = s.kind();
        s.request(Id::Str(id), frame).map_err(|r| refused(kind, -1.0, r))
    }

    /// The caller of request `key` stopped waiting.
    pub fn cancel(&mut self, k: usize, key: f64) {
        if let Some(s) = self.session(k) {
            s.cancel(key as u64);
        }
    }

    /// Sends `frame` (an ack) on the current connection, if one is open.
    pub fn push(&mut self, k: usize, frame: String) {
        if let Some(s) = self.session(k) {
            s.push(frame);
        }
    }

    /// Subscribes `patterns`: its id, and whether this tab's pattern set grew.
    pub fn subscribe(&mut self, k: usize, patterns: Vec<String>) -> Option<(u32, bool)> {
        Some(self.session(k)?.subscribe(patterns))
    }

    /// Ends subscription `id`: -1 if there is none, 1 if this tab's pattern set shrank, else 0.
    pub fn unsubscribe(&mut self, k: usize, id: u32) -> i32 {
        match self.session(k).and_then(|s| s.unsubscribe(id)) {
            None => -1,
            Some(shrank) => i32::from(shrank),
        }
    }

    /// This tab's own patterns.
    pub fn own_patterns(&mut self, k: usize) -> Vec<String> {
        self.session(k).map(|s| s.own_patterns()).unwrap_or_default()
    }

    /// Every pattern the connection serves (this tab's and the other tabs'), each once.
    pub fn all_patterns(&mut self, k: usize) -> Vec<String> {
        self.session(k).map(|s| s.all_patterns()).unwrap_or_default()
    }

    /// The patterns other tabs want through this connection.
    pub fn set_remote_patterns(&mut self, k: usize, wanted: Vec<String>) {
        if let Some(s) = self.session(k) {
            s.set_remote_patterns(wanted);
        }
    }

    /// Resumes from `epoch:seq` (where another tab's connection was) if nothing was seen yet.
    pub fn adopt_position(&mut self, k: usize, epoch: String, seq: f64) {
        if let Some(s) = self.session(k) {
            s.adopt_position(Position { epoch, seq: seq as u64 });
        }
    }

    /// The agent registered on every connect.
    pub fn set_agent(&mut self, k: usize, name: String, capabilities: Vec<String>) {
        if let Some(s) = self.session(k) {
            s.set_agent(name, capabilities);
        }
    }

    /// The registered agent's name.
    pub fn agent_name(&mut self, k: usize) -> Option<String> {
        self.session(k).and_then(|s| s.agent_name().map(str::to_owned))
    }

    /// What went wrong last, for `state()`.
    pub fn note_error(&mut self, k: usize, error: String) {
        if let Some(s) = self.session(k) {
            s.note_error(error);
        }
    }

    // ---- the connection's life ----

    /// A moment in the connection's life: `connecting` (about to connect), `following`
    /// (another tab holds the connection), `handOver` (this tab stopped leading: waiting
    /// requests are refused as `leader_changed`), `stop` (the bridge stopped: they are
    /// refused as `stopped`), `restart` (starting again after a stop).
    pub fn life(&mut self, k: usize, moment: &str) {
        let Some(s) = self.session(k) else { return };
        match moment {
            "connecting" => s.connecting(),
            "following" => s.following(),
            "handOver" => s.hand_over(),
            "stop" => s.stop(),
            _ => s.restart(),
        }
    }

    /// The socket opened: the `hello` to send.
    pub fn opened(&mut self, k: usize) -> String {
        self.session(k).map(|s| s.opened()).unwrap_or_default()
    }

    /// The socket closed before the welcome, because of the failure at hand: what the
    /// attempt failed with, as JSON (the server's explanation when it sent one).
    pub fn handshake_failed(&mut self, k: usize) -> String {
        let why = self.failure.clone();
        let why = match self.session(k) {
            Some(s) => s.handshake_failed(why),
            None => why,
        };
        json(&why)
    }

    /// A frame arrived at `now` (on this tab's connection, or shared by the tab that
    /// leads), read by the driver: its `type`, its `id` (a string, or a number), its texts
    /// `a` (`epoch`, `code` or `from`) and `b` (`topic` or `message`), its number `n`
    /// (`seq`, `heartbeat_ms` or `retry_after_ms`; an answer's position gives `a` and `n`),
    /// its flag (`retryable`, `broadcast`), and the whole parsed frame. -1 when it lacks a
    /// field the session needs, 1 when every tab sharing the connection gets it too
    /// (events, resets, messages, presence), else 0.
    #[allow(clippy::too_many_arguments)]
    pub fn frame(
        &mut self,
        k: usize,
        now: f64,
        kind: String,
        sid: Option<String>,
        nid: Option<f64>,
        a: Option<String>,
        b: Option<String>,
        n: Option<f64>,
        flag: bool,
        payload: Value,
    ) -> i32 {
        let Some(frame) = read(Fields { kind, sid, nid, a, b, n, flag }, payload) else { return -1 };
        let shared = i32::from(frame.is_shared());
        if let Some(s) = self.session(k) {
            s.frame(Millis(now as u64), frame);
        }
        shared
    }

    /// Welcomed and open.
    pub fn is_open(&mut self, k: usize) -> bool {
        self.session(k).is_some_and(|s| s.is_open())
    }

    /// Another connection took the agent's name: no reconnect until `restart`.
    pub fn is_replaced(&mut self, k: usize) -> bool {
        self.session(k).is_some_and(|s| s.is_replaced())
    }

    /// How long to wait for a frame before the next `tick`, while open; -1 otherwise.
    pub fn heartbeat_ms(&mut self, k: usize) -> f64 {
        self.session(k).and_then(|s| s.heartbeat_interval()).map_or(-1.0, |d| d.as_millis() as f64)
    }

    /// A heartbeat interval passed at `now`: a ping goes out, or the connection counts as
    /// dead (close it), then the failure as JSON.
    pub fn tick(&mut self, k: usize, now: f64) -> Option<String> {
        self.session(k)?.tick(Millis(now as u64)).err().map(|f| json(&f))
    }

    /// The welcomed connection ended at `now` with the failure at hand: its breaker hears
    /// of it (repeated drops open it), and the session keeps the requests for the next
    /// one. How many ms to wait before connecting again, or -1 when this socket must not
    /// reconnect (another connection took the agent's name).
    pub fn dropped(&mut self, k: usize, now: f64, online: bool) -> f64 {
        let why = self.failure.clone();
        let now = Millis(now as u64);
        let tool = self.socket_tool(k);
        if let Ok(b) = self.breakers.get_or_create(&tool, now)
            && let Ok(p) = b.try_acquire(now)
        {
            if why.is_transient() && online { b.on_failure(p, now) } else { b.on_abandoned(p, now) }
        }
        let rng = self.jitter();
        let backoff = self.policies.get(&tool).backoff(rng);
        match self.session(k).and_then(|s| s.closed(now, &why, backoff)) {
            Some(pause) => pause.as_millis() as f64,
            None => -1.0,
        }
    }

    // ---- what the driver does ----

    /// The next frame to write on the connection, while open.
    pub fn transmit(&mut self, k: usize) -> Option<String> {
        self.session(k)?.poll_transmit()
    }

    /// The next thing to do for the page, if any (see [`OutKind`]).
    pub fn output(&mut self, k: usize) -> Option<Out> {
        let s = self.session(k)?;
        let kind = s.kind();
        Some(match s.poll_output()? {
            Output::Answer { key, reply: Ok(v) } => Out::new(OutKind::Answer, key as f64, Some(v), None),
            Output::Answer { key, reply: Err(f) } => Out::new(OutKind::Failed, key as f64, None, Some(json(&f))),
            Output::Refused { key, refusal } => refused(kind, key as f64, refusal),
            Output::Event { subs, payload } => Out { subs, ..Out::new(OutKind::Event, 0.0, Some(payload), None) },
            Output::Reset(v) => Out::new(OutKind::Reset, 0.0, Some(v), None),
            Output::Presence(v) => Out::new(OutKind::Presence, 0.0, Some(v), None),
            Output::Message { payload, ack } => Out::new(OutKind::Message, 0.0, Some(payload), ack),
            Output::ServerError(f) => Out::new(OutKind::Error, 0.0, None, Some(f.describe())),
            _ => Out::new(OutKind::Changed, 0.0, None, None),
        })
    }

    /// Socket `k` as `state()` shows it, as JSON (its `url` empty: the driver knows it).
    pub fn socket_json(&mut self, k: usize) -> String {
        self.session(k).map(|s| json(&s.snapshot(String::new()))).unwrap_or_default()
    }
}
