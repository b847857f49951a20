//! Request/response between clients and handler daemons.
//!
//! A `request` is routed to one live handler of its action (round robin) under
//! a server-chosen id, and answered exactly once: by the handler's `response`,
//! by `timeout`, or by `no_handler` (none registered, or the handler left).
//! Answers from handlers are remembered for a while by (requester identity,
//! request id): a client that re-sends the same id after a reconnect gets the
//! same answer instead of running the action twice, and one that re-sends
//! while the request is still running is attached to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{ErrorCode, ErrorFrame, FrameError, Id, Request, Response, ServerFrame};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config;
use crate::dedup::DedupWindow;
use crate::ws::{Peer, encode};

#[derive(Debug)]
struct Pending {
    key: (String, Id),
    requester: Arc<Peer>,
    handler: u64,
    timer: Option<AbortHandle>,
}

/// Handlers by action and requests in flight.
#[derive(Debug)]
pub(crate) struct Routes {
    handlers: HashMap<String, Vec<Arc<Peer>>>,
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
    /// Sent to a handler; it times out after this long (the caller arms the timer).
    Sent { server_id: u64, timeout: Duration },
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

    /// Registers `peer` as a handler of `actions`.
    pub(crate) fn handle(&mut self, peer: &Arc<Peer>, actions: &[String]) {
        for action in actions {
            let list = self.handlers.entry(action.clone()).or_default();
            if !list.iter().any(|p| p.id == peer.id) {
                list.push(Arc::clone(peer));
            }
        }
    }

    /// Actions handled by the connection `peer_id`.
    pub(crate) fn actions_of(&self, peer_id: u64) -> usize {
        self.handlers.values().filter(|l| l.iter().any(|p| p.id == peer_id)).count()
    }

    /// Live handlers per action, for status.
    pub(crate) fn handler_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self.handlers.iter().map(|(a, l)| (a.clone(), l.len())).collect();
        v.sort();
        v
    }

    /// Routes `req` from `requester`.
    pub(crate) fn request(&mut self, requester: &Arc<Peer>, req: &Request) -> Result<Routed, FrameError> {
        let now = Instant::now();
        let key = (requester.identity(), req.id.clone());
        if let Some(answer) = self.answered.get(&key, now) {
            let _ = requester.push(answer.clone());
            return Ok(Routed::Done);
        }
        if let Some(server_id) = self.by_key.get(&key)
            && let Some(p) = self.pending.get_mut(server_id)
        {
            // The same request re-sent (typically after a reconnect): answer the new connection.
            self.per_requester.entry(p.requester.id).and_modify(|n| *n = n.saturating_sub(1));
            *self.per_requester.entry(requester.id).or_default() += 1;
            p.requester = Arc::clone(requester);
            return Ok(Routed::Done);
        }
        if self.per_requester.get(&requester.id).copied().unwrap_or(0) >= self.max_pending {
            return Err(FrameError {
                code: ErrorCode::LimitExceeded,
                message: format!("at most {} requests may wait for a response per connection", self.max_pending),
                id: Some(req.id.clone()),
            });
        }
        let timeout = req
            .timeout_ms
            .map_or(self.default_timeout, Duration::from_millis)
            .clamp(Duration::from_millis(1), self.max_timeout);
        self.next_id += 1;
        let server_id = self.next_id;
        let routed = ServerFrame::Request(Request {
            id: Id::Str(format!("r{server_id}")),
            action: req.action.clone(),
            params: req.params.clone(),
            timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        });
        let frame = encode(&routed);
        let handler = self.pick_handler(&req.action, &frame).ok_or_else(|| FrameError {
            code: ErrorCode::NoHandler,
            message: format!("no live handler for action \"{}\"", req.action),
            id: Some(req.id.clone()),
        })?;
        *self.per_requester.entry(requester.id).or_default() += 1;
        self.by_key.insert(key.clone(), server_id);
        self.pending.insert(server_id, Pending { key, requester: Arc::clone(requester), handler, timer: None });
        Ok(Routed::Sent { server_id, timeout })
    }

    /// Round robin over the action's handlers; the first that accepts the frame gets it.
    fn pick_handler(&mut self, action: &str, frame: &Utf8Bytes) -> Option<u64> {
        let list = self.handlers.get(action)?;
        let start = *self.turn.get(action).unwrap_or(&0);
        let n = list.len();
        for i in 0..n {
            let peer = &list[(start + i) % n];
            if !peer.is_closing() && peer.push(frame.clone()).is_ok() {
                self.turn.insert(action.to_owned(), (start + i + 1) % n);
                return Some(peer.id);
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
    pub(crate) fn respond(&mut self, handler: &Peer, resp: Response) -> Result<(), FrameError> {
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
        if self.pending.get(&server_id).is_none_or(|p| p.handler != handler.id) {
            return Err(stray());
        }
        let pending = self.finish(server_id).ok_or_else(stray)?;
        let answer = encode(&ServerFrame::Response(Response { id: pending.key.1.clone(), ..resp }));
        let _ = pending.requester.push(answer.clone());
        self.answered.insert(pending.key, answer, Instant::now());
        Ok(())
    }

    /// A request's timer fired.
    pub(crate) fn expire(&mut self, server_id: u64) {
        if let Some(p) = self.finish(server_id) {
            let mut e = ErrorFrame::new(
                Some(p.key.1.clone()),
                ErrorCode::Timeout,
                "the handler did not answer in time; it may still act on the request",
            );
            e.retryable = true;
            let _ = p.requester.push_frame(&ServerFrame::Error(e));
        }
    }

    /// A connection left: it handles nothing any more, and its unanswered routed requests fail.
    pub(crate) fn disconnect(&mut self, peer_id: u64) {
        for list in self.handlers.values_mut() {
            list.retain(|p| p.id != peer_id);
        }
        self.handlers.retain(|_, l| !l.is_empty());
        let orphaned: Vec<u64> = self.pending.iter().filter(|(_, p)| p.handler == peer_id).map(|(id, _)| *id).collect();
        for id in orphaned {
            if let Some(p) = self.finish(id) {
                let e = ErrorFrame::new(
                    Some(p.key.1.clone()),
                    ErrorCode::NoHandler,
                    "the handler disconnected before answering; it may have acted on the request",
                );
                let _ = p.requester.push_frame(&ServerFrame::Error(e));
            }
        }
        self.per_requester.remove(&peer_id);
    }

    fn finish(&mut self, server_id: u64) -> Option<Pending> {
        let mut p = self.pending.remove(&server_id)?;
        self.by_key.remove(&p.key);
        if let Some(n) = self.per_requester.get_mut(&p.requester.id) {
            *n = n.saturating_sub(1);
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
