//! Server frames as the session takes them ([`Inbound`]): the driver parses
//! each with the engine's `JSON.parse` and hands over the few fields the
//! session acts on (`js/socket.js`, `fields`), and the parsed frame itself to
//! give the page. Field names are those of `bridge_core::protocol::frames`.

use super::edge::Value;
use bridge_core::protocol::{Id, Position};
use bridge_core::session::{Inbound, error_failure};

/// The fields of one frame, as [`Core::frame`](super::Core::frame) takes them.
pub(super) struct Fields {
    /// Its `type`.
    pub(super) kind: String,
    /// Its `id`, a string or a number.
    pub(super) sid: Option<String>,
    pub(super) nid: Option<f64>,
    /// Its texts: `epoch` and `topic`, `code` and `message`, or `from`.
    pub(super) a: Option<String>,
    pub(super) b: Option<String>,
    /// Its number: `seq`, `heartbeat_ms` or `retry_after_ms`.
    pub(super) n: Option<f64>,
    /// Its flag: `retryable` or `broadcast`.
    pub(super) flag: bool,
}

/// The session's input for a frame; `None` when a field it needs is missing.
pub(super) fn read(f: Fields, payload: Value) -> Option<Inbound<Value>> {
    let id = f.sid.map(Id::Str).or_else(|| f.nid.filter(|n| *n >= 0.0).map(|n| Id::Num(n as u64)));
    let n = f.n.filter(|n| *n >= 0.0).map(|n| n as u64);
    let position = || Some(Position { epoch: f.a.clone()?, seq: n? });
    Some(match f.kind.as_str() {
        "welcome" => Inbound::Welcome { heartbeat_ms: n.unwrap_or(15_000) },
        "ack" | "response" | "agents" => Inbound::Answer { id: id?, position: position(), payload },
        "error" => {
            let code = f.a.as_deref().unwrap_or("error");
            Inbound::Error { id, failure: error_failure(code, f.b.as_deref().unwrap_or(""), f.flag, n) }
        }
        "event" => Inbound::Event { position: position()?, topic: f.b?, payload },
        "reset" => Inbound::Reset { position: position()?, payload },
        "message" => Inbound::Message { id: id?, from: f.a?, broadcast: f.flag, payload },
        "presence" => Inbound::Presence { payload },
        _ => Inbound::Other,
    })
}
