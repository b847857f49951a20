//! The demo fault switch (`--demo`, loopback only): make a backend path fail,
//! hang or answer a chosen status for a while, or drop the sockets, so anyone
//! can watch breakers open, half-open and close. Off by default; the routes do
//! not exist without it.
//!
//! `POST /api/demo/faults` `{"target", "mode", "status"?, "retry_after_s"?, "duration_ms"?, "count"?}`
//! - targets: `echo` (`GET /api/demo/echo`), `readyz`, `reports`, `publish`, `llm`, `evolution`, `agents`
//! - modes: `fail` (503), `status` (any status), `hang` (no answer until the fault ends, max 60 s),
//!   `drop` (sockets only: cut every connection now, no close frame),
//!   `cut_after_accept` (sockets only: the next `send` or `publish` is accepted, then its
//!   connection is cut before the ack: the client must re-send the same id)
//! - a fault ends after `duration_ms` (default 10 s) or after `count` requests, whichever comes first.
//!
//! `GET /api/demo/faults` lists them, `DELETE /api/demo/faults` clears them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::sync::lock;

const TARGETS: [&str; 7] = ["echo", "readyz", "reports", "publish", "llm", "evolution", "agents"];
const MAX_HANG: Duration = Duration::from_secs(60);

/// How a faulty target behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Fail,
    Status,
    Hang,
    Drop,
    CutAfterAccept,
}

/// `POST /api/demo/faults`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    pub(crate) target: String,
    pub(crate) mode: Mode,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    retry_after_s: Option<u64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    count: Option<u32>,
}

#[derive(Debug, Clone)]
struct Fault {
    mode: Mode,
    status: u16,
    retry_after_s: Option<u64>,
    until: Instant,
    remaining: Option<u32>,
}

/// Active faults by target.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Mutex<HashMap<String, Fault>>,
    echoes: std::sync::atomic::AtomicU64,
}

/// What a request to a faulty target gets.
pub(crate) enum Effect {
    Status(u16, Option<u64>),
    Hang(Instant),
}

impl Faults {
    /// True (once) when the next accepted request on `target` must lose its ack.
    pub(crate) fn cut_after_accept(&self, target: &str) -> bool {
        let mut active = lock(&self.active);
        let cut = active.get(target).is_some_and(|f| f.mode == Mode::CutAfterAccept && Instant::now() < f.until);
        if cut {
            active.remove(target);
        }
        cut
    }

    /// The effect on the next request to `target`, if a fault is active (counts it).
    pub(crate) fn take(&self, target: &str) -> Option<Effect> {
        let mut active = lock(&self.active);
        let now = Instant::now();
        let f = active.get_mut(target).filter(|f| f.mode != Mode::CutAfterAccept)?;
        if now >= f.until || f.remaining == Some(0) {
            active.remove(target);
            return None;
        }
        if let Some(n) = &mut f.remaining {
            *n -= 1;
        }
        Some(match f.mode {
            Mode::Hang => Effect::Hang(f.until.min(now + MAX_HANG)),
            _ => Effect::Status(f.status, f.retry_after_s),
        })
    }

    /// The status a socket upgrade on `target` is refused with, if faulty.
    pub(crate) fn refuse_upgrade(&self, target: &str) -> Option<u16> {
        match self.take(target)? {
            Effect::Status(s, _) => Some(s),
            Effect::Hang(_) => Some(503),
        }
    }

    /// What `refuse_upgrade` would answer now, without counting it (for a probe).
    pub(crate) fn would_refuse_upgrade(&self, target: &str) -> Option<u16> {
        let active = lock(&self.active);
        let f = active.get(target).filter(|f| f.mode != Mode::CutAfterAccept)?;
        (Instant::now() < f.until && f.remaining != Some(0)).then_some(if f.mode == Mode::Hang {
            503
        } else {
            f.status
        })
    }

    /// The active faults.
    pub(crate) fn list(&self) -> Value {
        let now = Instant::now();
        let active = lock(&self.active);
        let mut v: Vec<Value> = active
            .iter()
            .filter(|(_, f)| now < f.until && f.remaining != Some(0))
            .map(|(t, f)| {
                json!({"target": t, "mode": f.mode, "status": f.status, "remaining": f.remaining,
                       "endsInMs": f.until.saturating_duration_since(now).as_millis() as u64})
            })
            .collect();
        v.sort_by(|a, b| a["target"].as_str().cmp(&b["target"].as_str()));
        Value::Array(v)
    }
}

/// What [`Faults::set`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Nothing more.
    Set,
    /// Cut the target socket's connections now (`drop`, or a fault on a socket, so clients notice at once).
    DropConnections,
    /// Only cut the target socket's connections: nothing is remembered.
    DropOnly,
}

impl Faults {
    /// Sets the fault `req` asks for; Err says what is wrong with it.
    pub(crate) fn set(&self, req: &FaultRequest) -> Result<Applied, String> {
        if !TARGETS.contains(&req.target.as_str()) {
            return Err(format!("unknown target \"{}\"; use one of {}", req.target, TARGETS.join(", ")));
        }
        let socket = self.is_socket(&req.target);
        if req.mode == Mode::Drop {
            if !socket {
                return Err("mode \"drop\" applies to the evolution and agents sockets only".into());
            }
            return Ok(Applied::DropOnly);
        }
        if req.mode == Mode::CutAfterAccept && !socket {
            return Err("mode \"cut_after_accept\" applies to the evolution and agents sockets only".into());
        }
        let status = match req.mode {
            Mode::Status => req
                .status
                .filter(|s| (100..=599).contains(s))
                .ok_or("mode \"status\" needs a status between 100 and 599")?,
            _ => 503,
        };
        let fault = Fault {
            mode: req.mode,
            status,
            retry_after_s: req.retry_after_s,
            until: Instant::now() + Duration::from_millis(req.duration_ms.unwrap_or(10_000).min(600_000)),
            remaining: req.count,
        };
        lock(&self.active).insert(req.target.clone(), fault);
        tracing::info!(target = %req.target, mode = ?req.mode, "demo fault set");
        // Existing connections go too, so clients notice the outage now.
        Ok(if socket && req.mode != Mode::CutAfterAccept { Applied::DropConnections } else { Applied::Set })
    }

    fn is_socket(&self, target: &str) -> bool {
        matches!(target, "evolution" | "agents")
    }

    /// Ends every fault.
    pub(crate) fn clear(&self) {
        lock(&self.active).clear();
    }

    /// Counts a call of the echo endpoint; returns how many so far.
    pub(crate) fn echo(&self) -> u64 {
        self.echoes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}
