//! Server frames as the bridge reads them: `JSON.parse` in the engine, then
//! only the fields the session uses ([`Inbound`]). The backend and native clients decode with
//! `bridge_core::protocol` (serde); doing that here would compile a decoder for
//! every frame type into the module, several times the size of this file.
//! Field names are those of `bridge_core::protocol::frames`.

use bridge_core::protocol::{Id, Position};
use bridge_core::session::{Inbound, error_failure};
use wasm_bindgen::JsValue;

use super::edge::{get, parse};

fn text(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key)?.as_string()
}

fn number(obj: &JsValue, key: &str) -> Option<u64> {
    get(obj, key)?.as_f64().filter(|n| *n >= 0.0).map(|n| n as u64)
}

fn id(obj: &JsValue) -> Option<Id> {
    let v = get(obj, "id")?;
    v.as_string().map(Id::Str).or_else(|| v.as_f64().filter(|n| *n >= 0.0).map(|n| Id::Num(n as u64)))
}

fn position(obj: &JsValue) -> Option<Position> {
    Some(Position { epoch: text(obj, "epoch")?, seq: number(obj, "seq")? })
}

/// Reads one frame; `None` when it is not a JSON object with a known shape.
pub(super) fn read(frame: &str) -> Option<Inbound<JsValue>> {
    let obj = Some(parse(frame)).filter(JsValue::is_object)?;
    Some(match text(&obj, "type")?.as_str() {
        "welcome" => Inbound::Welcome { heartbeat_ms: number(&obj, "heartbeat_ms").unwrap_or(15_000) },
        "ack" | "response" | "agents" => {
            let position = get(&obj, "position").and_then(|p| position(&p));
            Inbound::Answer { id: id(&obj)?, position, payload: obj }
        }
        "error" => {
            let code = text(&obj, "code").unwrap_or_else(|| "error".into());
            let message = text(&obj, "message").unwrap_or_default();
            let retryable = get(&obj, "retryable").and_then(|r| r.as_bool()).unwrap_or(false);
            let failure = error_failure(&code, &message, retryable, number(&obj, "retry_after_ms"));
            Inbound::Error { id: id(&obj), failure }
        }
        "event" => Inbound::Event { position: position(&obj)?, topic: text(&obj, "topic")?, payload: obj },
        "reset" => Inbound::Reset { position: position(&obj)?, payload: obj },
        "message" => Inbound::Message {
            id: id(&obj)?,
            from: text(&obj, "from")?,
            broadcast: get(&obj, "broadcast").and_then(|b| b.as_bool()).unwrap_or(false),
            payload: obj,
        },
        "presence" => Inbound::Presence { payload: obj },
        _ => Inbound::Other,
    })
}
