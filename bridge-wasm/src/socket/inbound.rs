//! Server frames as the bridge reads them: `JSON.parse` in the engine, then
//! only the fields the bridge uses. The backend and native clients decode with
//! `bridge_core::protocol` (serde); doing that here would compile a decoder for
//! every frame type into the module, several times the size of this file.
//! Field names are those of `bridge_core::protocol::frames`.

use bridge_core::protocol::{Id, Position};
use bridge_core::retry::Failure;
use wasm_bindgen::JsValue;

use crate::js::get;

/// A frame the bridge acts on; `obj` is the parsed frame, handed to the page as is.
pub(crate) enum Inbound {
    Welcome {
        heartbeat_ms: u64,
    },
    /// `ack`, `response`, `agents`: the answer to request `id`.
    Answer {
        id: Id,
        obj: JsValue,
        position: Option<Position>,
    },
    /// `error`: for request `id` when it has one.
    Error {
        id: Option<Id>,
        failure: Failure,
        message: String,
    },
    Event {
        position: Position,
        topic: String,
        obj: JsValue,
    },
    Reset {
        position: Position,
        obj: JsValue,
    },
    Message {
        id: Id,
        from: String,
        broadcast: bool,
        obj: JsValue,
    },
    Presence {
        obj: JsValue,
    },
    /// `pong` and anything else: proof of life only.
    Other,
}

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

/// The failure an `error` frame stands for.
pub(crate) fn error_failure(code: &str, message: &str, retryable: bool, retry_after_ms: Option<u64>) -> Failure {
    match code {
        "unauthorized" | "forbidden" => Failure::Auth { message: message.to_owned() },
        "unsupported_protocol" | "hello_required" | "already_hello" => {
            Failure::Protocol { message: message.to_owned() }
        }
        _ => Failure::Server { code: code.to_owned(), message: message.to_owned(), retryable, retry_after_ms },
    }
}

/// Reads one frame; `None` when it is not a JSON object with a known shape.
pub(crate) fn read(frame: &str) -> Option<Inbound> {
    let obj = js_sys::JSON::parse(frame).ok().filter(JsValue::is_object)?;
    Some(match text(&obj, "type")?.as_str() {
        "welcome" => Inbound::Welcome { heartbeat_ms: number(&obj, "heartbeat_ms").unwrap_or(15_000) },
        "ack" | "response" | "agents" => {
            let position = get(&obj, "position").and_then(|p| position(&p));
            Inbound::Answer { id: id(&obj)?, obj, position }
        }
        "error" => {
            let code = text(&obj, "code").unwrap_or_else(|| "error".into());
            let message = text(&obj, "message").unwrap_or_default();
            let retryable = get(&obj, "retryable").and_then(|r| r.as_bool()).unwrap_or(false);
            let failure = error_failure(&code, &message, retryable, number(&obj, "retry_after_ms"));
            Inbound::Error { id: id(&obj), failure, message }
        }
        "event" => Inbound::Event { position: position(&obj)?, topic: text(&obj, "topic")?, obj },
        "reset" => Inbound::Reset { position: position(&obj)?, obj },
        "message" => Inbound::Message {
            id: id(&obj)?,
            from: text(&obj, "from")?,
            broadcast: get(&obj, "broadcast").and_then(|b| b.as_bool()).unwrap_or(false),
            obj,
        },
        "presence" => Inbound::Presence { obj },
        _ => Inbound::Other,
    })
}
