//! The bridge's state, shared by the JS API, the sockets, the health poller,
//! the reporter and the WebMCP tools.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bridge_core::health::HealthModel;
use bridge_core::protocol::Id;
use bridge_core::report::{BridgeReport, TabsSnapshot, WebMcpSnapshot};
use bridge_core::retry::RetryError;
use bridge_core::time::Millis;
use wasm_bindgen::JsValue;

use crate::backends::Backends;
use crate::config::Config;
use crate::events::Events;
use crate::js::Code;
use crate::lifecycle::PageLife;
use crate::model_context::WebMcp;
use crate::persist::{Entry, KeptStats, Persist};
use crate::platform::{self, Lifetime, Signal};
use crate::resilience::{self, Attempt, Resilience, Shared, local_refusal};
use crate::share::{Incoming, Role, Share};
use crate::socket::{Kind, Socket, Wiring};

/// Transitions per breaker included in reports (the dashboard's timeline).
pub(crate) const REPORT_TRANSITIONS: usize = 20;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    /// Random per page load: request ids and reports are unique per instance.
    pub(crate) instance: String,
    pub(crate) resilience: Shared,
    /// The node talked to now.
    pub(crate) backends: Rc<Backends>,
    pub(crate) health: RefCell<HealthModel>,
    pub(crate) events: Rc<Events>,
    pub(crate) evolution: Option<Rc<Socket>>,
    pub(crate) agents: Option<Rc<Socket>>,
    pub(crate) lifetime: RefCell<Lifetime>,
    pub(crate) started_at: Cell<Option<Millis>>,
    /// Something worth reporting changed.
    pub(crate) changed: Signal,
    pub(crate) report_seq: Cell<u64>,
    pub(crate) reports_sent: Cell<u64>,
    pub(crate) webmcp: RefCell<WebMcp>,
    pub(crate) call_tools: RefCell<crate::call::CallTools>,
    /// Online or offline, frozen, restored; and the signals of the health poller and the reporter.
    pub(crate) page: Rc<PageLife>,
    /// Waiting requests kept across reloads.
    pub(crate) persist: Persist,
    /// The tabs sharing this connection.
    pub(crate) share: Rc<Share>,
    /// Leader: followers' request ids being served now (each once).
    serving: RefCell<Vec<String>>,
    /// Notified when this tab's role changes (a new leader claims what the old one left).
    pub(crate) role_changed: Signal,
    /// Page loads whose end this one waits for, to claim what they leave (a few tabs at most).
    pub(crate) watched_owners: RefCell<Vec<String>>,
    pub(crate) health_page: Signal,
    pub(crate) report_page: Signal,
}

/// Shared handle.
pub(crate) type Bridge = Rc<Inner>;

impl Inner {
    pub(crate) fn new(config: Config) -> Bridge {
        let instance = platform::random_id(8);
        let resilience = Rc::new(RefCell::new(Resilience::new(
            config.policies.clone(),
            config.breaker,
            &config.breakers,
            config.retry_budget,
        )));
        let events = Rc::new(Events::default());
        let changed = Signal::default();
        let lifetime = Lifetime::default();
        let backends = Backends::new(&config, Rc::clone(&events), changed.clone());
        let page = Rc::new(PageLife::default());
        let persist = config.persist;
        let share = Share::new(config.share_group(), &instance);
        let client = format!("bridge-wasm/{} {}", bridge_core::VERSION, config.bridge_id);
        let socket = |kind: Kind| {
            let wiring = Wiring {
                backends: Rc::clone(&backends),
                client: client.clone(),
                token: config.token.clone(),
                instance: instance.clone(),
                outbox_limit: config.outbox_limit,
                resilience: Rc::clone(&resilience),
                events: Rc::clone(&events),
                changed: changed.clone(),
                page: page.watch(),
                share: Rc::clone(&share),
                role: share.watch(),
            };
            Socket::new(kind, wiring, lifetime.clone())
        };
        let evolution = config.evolution.then(|| socket(Kind::Evolution));
        let agents = config.agents.then(|| socket(Kind::Agents));
        if let (Some(a), Some(s)) = (&config.agent, &agents) {
            s.set_agent(a.clone());
        }
        Rc::new(Inner {
            config,
            instance,
            resilience,
            backends,
            health: RefCell::new(HealthModel::bridge_default()),
            events,
            evolution,
            agents,
            lifetime: RefCell::new(lifetime),
            started_at: Cell::new(None),
            changed,
            report_seq: Cell::new(0),
            reports_sent: Cell::new(0),
            webmcp: RefCell::new(WebMcp::default()),
            call_tools: RefCell::new(crate::call::CallTools::default()),
            persist: Persist::new(persist),
            role_changed: share.watch(),
            share,
            serving: RefCell::new(Vec::new()),
            watched_owners: RefCell::new(Vec::new()),
            health_page: page.watch(),
            report_page: page.watch(),
            page,
        })
    }

    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime.borrow().clone()
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started_at.get().is_some()
    }

    /// The whole state: what `state()`, `get_os_state` and reports carry.
    pub(crate) fn report(&self, max_transitions: usize) -> BridgeReport {
        let now = platform::now();
        let (breakers, retry) = {
            let mut r = self.resilience.borrow_mut();
            (r.breakers.snapshots(now, max_transitions), r.metrics.snapshot())
        };
        let mut sockets = bridge_core::vecmap::VecMap::new();
        for s in [&self.evolution, &self.agents].into_iter().flatten() {
            sockets.insert(s.kind.name().to_owned(), s.snapshot());
        }
        let webmcp = self.webmcp.borrow();
        BridgeReport {
            bridge_id: self.config.bridge_id.clone(),
            instance: self.instance.clone(),
            seq: self.report_seq.get(),
            ts: platform::unix_ms(),
            version: bridge_core::VERSION.to_owned(),
            page: web_sys::window().and_then(|w| w.location().href().ok()),
            uptime_ms: self.started_at.get().map_or(0, |t| now.saturating_since(t).as_millis() as u64),
            health: self.health.borrow().snapshot(),
            breakers,
            retry,
            sockets,
            nodes: self.backends.snapshot(max_transitions),
            webmcp: Some({
                let provider = crate::model_context::model_context().map(|(_, p)| p);
                WebMcpSnapshot { available: provider.is_some(), provider, tools: webmcp.names() }
            }),
            tabs: (self.share.role() != Role::Alone).then(|| {
                let (role, leader, count) = self.share.snapshot();
                TabsSnapshot { tab: self.share.tab().to_owned(), role: role.name().to_owned(), leader, count }
            }),
        }
    }

    fn socket_named(&self, name: &str) -> Option<&Rc<Socket>> {
        [&self.evolution, &self.agents].into_iter().flatten().find(|s| s.kind.name() == name)
    }

    /// What another tab's message means here (see `share`).
    pub(crate) fn from_other_tab(self: &Rc<Self>, incoming: Incoming) {
        match incoming {
            Incoming::Frame { socket, text } => {
                if let Some(s) = self.socket_named(&socket) {
                    s.receive_shared(&text);
                }
            }
            Incoming::Request { tab, socket, id, frame } => {
                let Some(s) = self.socket_named(&socket).cloned() else {
                    let refusal = ("not_configured".into(), format!("the leading tab has no {socket} socket"), false);
                    return self.share.reply(&tab, &id, Err(refusal));
                };
                // Posted again after a leader change or a retry: the one in flight answers it.
                if self.serving.borrow().contains(&id) {
                    return;
                }
                if self.serving.borrow().len() >= 2 * self.config.outbox_limit as usize {
                    let refusal = ("outbox_full".into(), "the leading tab serves too many requests".into(), false);
                    return self.share.reply(&tab, &id, Err(refusal));
                }
                self.serving.borrow_mut().push(id.clone());
                let b = Rc::clone(self);
                self.lifetime().spawn(async move {
                    let result = s.local_request(Id::Str(id.clone()), frame).await;
                    b.serving.borrow_mut().retain(|i| i != &id);
                    b.share.reply(&tab, &id, result.map_err(|a| shared_failure(&a)));
                });
            }
            Incoming::Patterns => {
                if let Some(s) = &self.evolution {
                    s.set_remote_patterns(self.share.followers_patterns());
                }
                self.changed.notify();
            }
            Incoming::Joined => self.changed.notify(),
            Incoming::NewLeader => self.post_patterns(),
        }
    }

    /// Follower: tells the leader which patterns this tab subscribes.
    pub(crate) fn post_patterns(&self) {
        if let Some(s) = &self.evolution {
            self.share.post_patterns(&s.own_patterns());
        }
    }

    /// Leader: tells the other tabs how its sockets are and what it subscribes.
    pub(crate) async fn announce(&self) {
        let sockets = js_sys::Object::new();
        for s in [&self.evolution, &self.agents].into_iter().flatten() {
            if let Ok(v) = crate::js::to_js(&s.snapshot()) {
                let _ = js_sys::Reflect::set(&sockets, &s.kind.name().into(), &v);
            }
        }
        let union = self.evolution.as_ref().map(|s| s.all_patterns()).unwrap_or_default();
        self.share.announce(sockets.into(), &union).await;
    }

    /// The state as a JS object, with extra fields only the page sees.
    pub(crate) fn state_js(&self) -> Result<JsValue, JsValue> {
        /// The report plus what only the page sees.
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct PageState<'a> {
            #[serde(flatten)]
            report: &'a BridgeReport,
            /// The node talked to now.
            node: String,
            live_timers: u32,
            started: bool,
            /// `navigator.onLine`: while false the bridge attempts nothing.
            online: bool,
            /// Times the page came back from the back/forward cache.
            restored: u32,
            /// The outbox kept across reloads; absent when `persistOutbox` is off.
            #[serde(skip_serializing_if = "Option::is_none")]
            kept: Option<KeptStats>,
            reports_sent: u64,
            policies: &'a bridge_core::retry::PolicySet,
        }
        let report = self.report(bridge_core::breaker::TRANSITION_HISTORY);
        let resilience = self.resilience.borrow();
        crate::js::to_js(&PageState {
            report: &report,
            node: self.backends.url(),
            live_timers: platform::live_timers(),
            started: self.is_started(),
            online: crate::lifecycle::online(),
            restored: self.page.restored(),
            kept: self.persist.stats(),
            reports_sent: self.reports_sent.get(),
            policies: &resilience.policies,
        })
    }

    pub(crate) fn evolution(&self) -> Result<&Rc<Socket>, Attempt> {
        self.evolution
            .as_ref()
            .ok_or_else(|| local_refusal(Code::NotConfigured, "this bridge has no evolution socket (config.sockets)"))
    }

    pub(crate) fn agents(&self) -> Result<&Rc<Socket>, Attempt> {
        self.agents
            .as_ref()
            .ok_or_else(|| local_refusal(Code::NotConfigured, "this bridge has no agents socket (config.sockets)"))
    }

    /// A request over a socket, under `tool`'s policy and breaker, with one id for every
    /// attempt (the server deduplicates, so it takes effect once). With `keep`, the request is
    /// also kept in IndexedDB until it settles, so that a reload or a crash does not lose it
    /// (agent messages, evolution requests).
    pub(crate) async fn socket_request(
        self: &Rc<Self>,
        socket: &Rc<Socket>,
        tool: &str,
        policy: &str,
        keep: bool,
        make: &dyn Fn(&Id) -> String,
    ) -> Result<JsValue, RetryError<Attempt>> {
        let id = socket.new_id();
        let frame = make(&id);
        let kept = match &id {
            Id::Str(key) if keep => self
                .persist
                .keep(&Entry {
                    id: key.clone(),
                    bridge: self.config.bridge_id.clone(),
                    agent: socket.agent_name().unwrap_or_default(),
                    instance: self.instance.clone(),
                    socket: socket.kind.name().to_owned(),
                    tool: tool.to_owned(),
                    frame: frame.clone(),
                    created: platform::unix_ms() as f64,
                })
                .then(|| key.clone()),
            _ => None,
        };
        let result = self.run_request(socket, tool, policy, id, frame).await;
        if let Some(key) = kept {
            self.persist.forget(&key);
        }
        result
    }

    /// Claims what earlier page loads (or a leader tab that went) left waiting, and re-sends it.
    /// Entries of a page load that still looks alive are claimed when it goes (a reloading page
    /// may hold its lock a moment longer than it takes the new one to start).
    pub(crate) async fn claim_and_recover(self: &Rc<Self>) {
        let agent = self.agents.as_ref().and_then(|s| s.agent_name());
        let claim = match self.persist.start(&self.config.bridge_id, agent.as_deref(), &self.instance).await {
            Ok(claim) => claim,
            Err(e) => return crate::js::warn("reading the kept outbox failed", &JsValue::from(e)),
        };
        self.recover(claim.claimed, claim.expired);
        for owner in claim.alive_owners {
            if !self.watched_owners.borrow().contains(&owner) {
                self.watched_owners.borrow_mut().push(owner.clone());
                let b = Rc::clone(self);
                self.lifetime().spawn(async move {
                    crate::persist::owner_gone(&owner).await;
                    b.watched_owners.borrow_mut().retain(|o| o != &owner);
                    Box::pin(b.claim_and_recover()).await;
                });
            }
        }
    }

    /// Re-sends what an earlier page load left waiting; each one ends in a `recovered` event.
    pub(crate) fn recover(self: &Rc<Self>, claimed: Vec<Entry>, expired: Vec<Entry>) {
        for e in expired {
            self.events.emit("recovered", &recovered(&e, "expired", None));
        }
        for e in claimed {
            let socket = match e.socket.as_str() {
                "agents" => self.agents.clone(),
                _ => self.evolution.clone(),
            };
            let Some(socket) = socket else { continue };
            let b = Rc::clone(self);
            self.lifetime().spawn(async move {
                // Kept operations (sends, requests) run under a policy of their own name.
                let result = b.run_request(&socket, &e.tool, &e.tool, Id::Str(e.id.clone()), e.frame.clone()).await;
                b.persist.forget(&e.id);
                let detail = match result {
                    Ok(reply) => recovered(&e, "delivered", Some(("reply", reply))),
                    Err(err) => recovered(&e, "failed", Some(("error", resilience::to_js_error(&e.tool, &err)))),
                };
                b.events.emit("recovered", &detail);
            });
        }
    }

    async fn run_request(
        self: &Rc<Self>,
        socket: &Rc<Socket>,
        tool: &str,
        policy: &str,
        id: Id,
        frame: String,
    ) -> Result<JsValue, RetryError<Attempt>> {
        let policy = Some(*self.resilience.borrow().policies.get(policy));
        let stopped = Box::pin(self.lifetime().stopped());
        let (result, ran) = resilience::run(&self.resilience, tool, tool, policy, stopped, &mut |_| {
            let (socket, id, frame) = (Rc::clone(socket), id.clone(), frame.clone());
            Box::pin(async move { socket.request(id, frame).await })
        })
        .await;
        if ran.breaker_moved {
            self.changed.notify();
        }
        result
    }
}

/// A `recovered` event's detail: `{id, tool, socket, outcome, reply? | error?}`.
fn recovered(e: &Entry, outcome: &str, extra: Option<(&str, JsValue)>) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in
        [("id", e.id.as_str()), ("tool", e.tool.as_str()), ("socket", e.socket.as_str()), ("outcome", outcome)]
    {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v.into());
    }
    let _ = js_sys::Reflect::set(&o, &"createdAt".into(), &e.created.into());
    if let Some((k, v)) = extra {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    }
    o.into()
}

/// A leader's failure as a follower gets it: `(code, message, retryable)`.
fn shared_failure(a: &Attempt) -> (String, String, bool) {
    use bridge_core::retry::Failure;
    match (&a.failure, a.refusal) {
        (f, Some(code)) => (code.as_str().to_owned(), f.describe(), f.is_transient()),
        (Failure::Server { code, message, retryable, .. }, None) => (code.clone(), message.clone(), *retryable),
        (f, None) => (resilience::failure_code(f).to_owned(), f.describe(), f.is_transient()),
    }
}
