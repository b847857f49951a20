//! Request/response between clients and handler daemons.
//!
//! A `request` is routed to one live handler of its action on this node (round
//! robin) under a server-chosen id, or, when this node has none, over the
//! store's bus to a handler on another node. It is answered exactly once: by the
//! handler's `response`, by `timeout`, or by `no_handler` (none registered, or
//! the handler left). Answers from handlers are remembered for a while by
//! (requester identity, request id): a client that re-sends the same id after a
//! reconnect gets the same answer instead of running the action twice, and one
//! that re-sends while the request is still running is attached to it.
//!
//! Requests from other nodes arrive as [`RemoteRequest`]s and are routed to this
//! node's handlers the same way; their answer goes back through the bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ErrorCode, ErrorFrame, FrameError, Id, Json, Request, Response, ServerFrame};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config;
use crate::dedup::DedupWindow;
use crate::mailbox::Mailbox;
use crate::store::requests::{Answer, RemoteRequest};
use crate::wire::encode;

/// Who waits for a request's answer.
#[derive(Debug)]
enum Requester {
    /// A connection of this node, and its request's (identity, id).
    Local { conn: Arc<dyn Mailbox>, key: (String, Id) },
    /// Another node, through the bus.
    Remote(oneshot::Sender<Answer>),
}

/// Who is working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// A handler connection of this node.
    Local(u64),
    /// A handler on another node, reached through the bus.
    Remote,
}

#[derive(Debug)]
struct Pending {
    requester: Requester,
    handler: Handler,
    timer: Option<AbortHandle>,
}

/// Handlers by action and requests in flight.
#[derive(Debug)]
pub(crate) struct Routes {
    handlers: HashMap<String, Vec<Arc<dyn Mailbox>>>,
    turn: HashMap<String, usize>,
    pending: HashMap<u64, Pending>,
    by_key: HashMap<(String, Id), u64>,
    per_requester: HashMap<u64, usize>,
    answered: DedupWindow<(String, Id), Utf8Bytes>,
    next_id: u64,
    max_pending: usize,
    default_timeout: Duration,
    max_timeout: Duration,
}

/// What became of a request.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Sent to a handler of this node; it times out after this long (the caller arms the timer).
    Sent { server_id: u64, timeout: Duration },
    /// No handler here: the caller forwards it to another node and reports the answer.
    Forward { server_id: u64, timeout: Duration },
    /// Already answered or already running; nothing more to do.
    Done,
}

impl Routes {
    pub(crate) fn new(config: &config::Evolution) -> Self {
        Self {
            handlers: HashMap::new(),
            turn: HashMap::new(),
            pending: HashMap::new(),
            by_key: HashMap::new(),
            per_requester: HashMap::new(),
            answered: DedupWindow::new(config.response_cache_entries, Duration::from_secs(600)),
            next_id: 0,
            max_pending: config.max_pending_requests,
            default_timeout: Duration::from_millis(config.request_timeout_ms),
            max_timeout: Duration::from_millis(config.max_request_timeout_ms),
        }
    }

    /// Registers `conn` as a handler of `actions`; returns the actions that had no handler here before.
    pub(crate) fn handle(&mut self, conn: &Arc<dyn Mailbox>, actions: &[String]) -> Vec<String> {
        let mut gained = Vec::new();
        for action in actions {
            let list = self.handlers.entry(action.clone()).or_default();
            if list.is_empty() {
                gained.push(action.clone());
            }
            if !list.iter().any(|p| p.id() == conn.id()) {
                list.push(Arc::clone(conn));
            }
        }
        gained
    }

    /// Actions handled by the connection `conn_id`.
    pub(crate) fn actions_of(&self, conn_id: u64) -> usize {
        self.handlers.values().filter(|l| l.iter().any(|p| p.id() == conn_id)).count()
    }

    /// Live handlers per action on this node, for status.
    pub(crate) fn handler_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self.handlers.iter().map(|(a, l)| (a.clone(), l.len())).collect();
        v.sort();
        v
    }

    /// The effective timeout of a request that asked for `ms`.
    fn timeout(&self, ms: Option<u64>) -> Duration {
        ms.map_or(self.default_timeout, Duration::from_millis).clamp(Duration::from_millis(1), self.max_timeout)
    }

    /// Routes `req` from `requester`. `forward`: other nodes can be asked when this one has no handler.
    pub(crate) fn request(
        &mut self,
        requester: &Arc<dyn Mailbox>,
        req: &Request,
        forward: bool,
    ) -> Result<Routed, FrameError> {
        let now = Instant::now();
        let key = (requester.identity(), req.id.clone());
        if let Some(answer) = self.answered.get(&key, now) {
            let _ = requester.push(answer.clone());
            return Ok(Routed::Done);
        }
        if let Some(server_id) = self.by_key.get(&key)
            && let Some(p) = self.pending.get_mut(server_id)
            && let Requester::Local { conn, .. } = &mut p.requester
        {
            // The same request re-sent (typically after a reconnect): answer the new connection.
            self.per_requester.entry(conn.id()).and_modify(|n| *n = n.saturating_sub(1));
            *self.per_requester.entry(requester.id()).or_default() += 1;
            *conn = Arc::clone(requester);
            return Ok(Routed::Done);
        }
        if self.per_requester.get(&requester.id()).copied().unwrap_or(0) >= self.max_pending {
            return Err(FrameError {
                code: ErrorCode::LimitExceeded,
                message: format!("at most {} requests may wait for a response per connection", self.max_pending),
                id: Some(req.id.clone()),
            });
        }
        let timeout = self.timeout(req.timeout_ms);
        self.next_id += 1;
        let server_id = self.next_id;
        let handler = match self.pick_handler(server_id, &req.action, req.params.as_ref(), timeout) {
            Some(h) => Handler::Local(h),
            None if forward => Handler::Remote,
            None => {
                return Err(FrameError {
                    code: ErrorCode::NoHandler,
                    message: format!("no live handler for action \"{}\"", req.action),
                    id: Some(req.id.clone()),
                });
            }
        };
        *self.per_requester.entry(requester.id()).or_default() += 1;
        self.by_key.insert(key.clone(), server_id);
        let requester = Requester::Local { conn: Arc::clone(requester), key };
        self.pending.insert(server_id, Pending { requester, handler, timer: None });
        Ok(match handler {
            Handler::Local(_) => Routed::Sent { server_id, timeout },
            Handler::Remote => Routed::Forward { server_id, timeout },
        })
    }

    /// Routes a request from another node to a handler of this node; `Err` gives the
    /// request back when there is none (the caller answers `no_handler`).
    pub(crate) fn request_from_node(&mut self, req: RemoteRequest) -> Result<(u64, Duration), RemoteRequest> {
        let timeout = self.timeout(Some(u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX)));
        self.next_id += 1;
        let server_id = self.next_id;
        let Some(handler) = self.pick_handler(server_id, &req.action, req.params.as_ref(), timeout) else {
            return Err(req);
        };
        let pending =
            Pending { requester: Requester::Remote(req.reply), handler: Handler::Local(handler), timer: None };
        self.pending.insert(server_id, pending);
        Ok((server_id, timeout))
    }

    /// Round robin over the action's handlers; the first that accepts the routed request gets it.
    fn pick_handler(&mut self, server_id: u64, action: &str, params: Option<&Json>, timeout: Duration) -> Option<u64> {
        let list = self.handlers.get(action)?;
        let frame = encode(&ServerFrame::Request(Request {
            id: Id::Str(format!("r{server_id}")),
            action: action.to_owned(),
            params: params.cloned(),
            timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        }));
        let start = *self.turn.get(action).unwrap_or(&0);
        let n = list.len();
        for i in 0..n {
            let conn = &list[(start + i) % n];
            if !conn.is_closing() && conn.push(frame.clone()).is_ok() {
                self.turn.insert(action.to_owned(), (start + i + 1) % n);
                return Some(conn.id());
            }
        }
        None
    }

    /// Remembers the timer of a routed request, so an answer can cancel it.
    pub(crate) fn set_timer(&mut self, server_id: u64, timer: AbortHandle) {
        match self.pending.get_mut(&server_id) {
            Some(p) => p.timer = Some(timer),
            None => timer.abort(),
        }
    }

    /// A handler's `response`.
    pub(crate) fn respond(&mut self, handler: u64, resp: Response) -> Result<(), FrameError> {
        let server_id = match &resp.id {
            Id::Str(s) => s.strip_prefix('r').and_then(|n| n.parse::<u64>().ok()),
            Id::Num(_) => None,
        };
        let stray = || FrameError {
            code: ErrorCode::UnknownMessage,
            message: format!(
                "no request \"{}\" is waiting for this connection's response (answered, timed out, or never sent)",
                resp.id
            ),
            id: Some(resp.id.clone()),
        };
        let server_id = server_id.ok_or_else(stray)?;
        if self.pending.get(&server_id).is_none_or(|p| p.handler != Handler::Local(handler)) {
            return Err(stray());
        }
        let pending = self.finish(server_id).ok_or_else(stray)?;
        self.answer(pending, Answer::Response { ok: resp.ok, result: resp.result, error: resp.error });
        Ok(())
    }

    /// A handler on another node answered the forwarded request `server_id` (or could not).
    pub(crate) fn forwarded(&mut self, server_id: u64, answer: Answer) {
        if let Some(p) = self.finish(server_id) {
            self.answer(p, answer);
        }
    }

    /// A request's timer fired.
    pub(crate) fn expire(&mut self, server_id: u64) {
        if let Some(p) = self.finish(server_id) {
            let message = "the handler did not answer in time; it may still act on the request".to_owned();
            self.answer(p, Answer::Failed { code: ErrorCode::Timeout, message });
        }
    }

    /// A connection left: it handles nothing any more, and its unanswered routed
    /// requests fail. Returns the actions this node no longer handles.
    pub(crate) fn disconnect(&mut self, conn_id: u64) -> Vec<String> {
        let mut lost = Vec::new();
        for (action, list) in &mut self.handlers {
            let before = list.len();
            list.retain(|p| p.id() != conn_id);
            if before > 0 && list.is_empty() {
                lost.push(action.clone());
            }
        }
        self.handlers.retain(|_, l| !l.is_empty());
        let orphaned: Vec<u64> =
            self.pending.iter().filter(|(_, p)| p.handler == Handler::Local(conn_id)).map(|(id, _)| *id).collect();
        for id in orphaned {
            if let Some(p) = self.finish(id) {
                let message = "the handler disconnected before answering; it may have acted on the request".to_owned();
                self.answer(p, Answer::Failed { code: ErrorCode::NoHandler, message });
            }
        }
        self.per_requester.remove(&conn_id);
        lost.sort();
        lost
    }

    /// Delivers `answer` to whoever waits. Handlers' answers to this node's
    /// clients are remembered for re-sent ids; server-made errors are not.
    fn answer(&mut self, pending: Pending, answer: Answer) {
        match pending.requester {
            Requester::Remote(reply) => {
                let _ = reply.send(answer);
            }
            Requester::Local { conn, key } => {
                let id = key.1.clone();
                match answer {
                    Answer::Response { ok, result, error } => {
                        let frame = encode(&ServerFrame::Response(Response { id, ok, result, error }));
                        let _ = conn.push(frame.clone());
                        self.answered.insert(key, frame, Instant::now());
                    }
                    Answer::Failed { code, message } => {
                        let e = ErrorFrame::new(Some(id), code, message);
                        let _ = conn.push_frame(&ServerFrame::Error(e));
                    }
                }
            }
        }
    }

    fn finish(&mut self, server_id: u64) -> Option<Pending> {
        let mut p = self.pending.remove(&server_id)?;
        if let Requester::Local { conn, key } = &p.requester {
            self.by_key.remove(key);
            if let Some(n) = self.per_requester.get_mut(&conn.id()) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(t) = p.timer.take() {
            t.abort();
        }
        Some(p)
    }

    /// Requests waiting for an answer.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }
}
