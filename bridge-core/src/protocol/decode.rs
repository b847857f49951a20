//! Decoding frames from text. Any input gives a frame or a [`FrameError`]
//! with a stable code; nothing panics (serde_json's recursion limit turns
//! deeply nested input into an error too).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::error::Category;

use super::codes::ErrorCode;
use super::frames::{ClientFrame, ErrorFrame, Id, ServerFrame};
use super::rules::{self, clip};

/// A frame that could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FrameError {
    /// Stable code.
    pub code: ErrorCode,
    /// What was wrong, for a person.
    pub message: String,
    /// The frame's id, when it could be read.
    pub id: Option<Id>,
}

impl FrameError {
    /// A `bad_request` error.
    pub fn bad_request(id: Option<Id>, message: impl Into<String>) -> Self {
        Self { code: ErrorCode::BadRequest, message: message.into(), id }
    }

    /// As an `error` frame.
    pub fn to_frame(&self) -> ErrorFrame {
        ErrorFrame::new(self.id.clone(), self.code, self.message.clone())
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
}

fn read_envelope(text: &str) -> Result<(String, Option<Id>), FrameError> {
    if !text.trim_start().starts_with('{') {
        let message = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            "a frame must be a JSON object with a \"type\"".to_owned()
        } else {
            "the frame is not valid JSON".to_owned()
        };
        return Err(FrameError::bad_request(None, message));
    }
    if nesting_exceeds(text, rules::MAX_DEPTH) {
        return Err(FrameError::bad_request(None, format!("the frame nests deeper than {} levels", rules::MAX_DEPTH)));
    }
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        let message = match e.classify() {
            Category::Data => "a frame must be a JSON object with a \"type\"".to_owned(),
            _ => format!("the frame is not valid JSON ({e})"),
        };
        FrameError::bad_request(None, message)
    })?;
    let id = match env.id {
        Some(Value::String(s)) => Some(Id::Str(s)),
        Some(Value::Number(n)) => n.as_u64().map(Id::Num),
        _ => None,
    };
    match env.kind {
        Some(Value::String(kind)) => Ok((kind, id)),
        Some(_) => Err(FrameError::bad_request(id, "\"type\" must be a string")),
        None => Err(FrameError::bad_request(id, "the frame has no \"type\"")),
    }
}

/// True when `text` nests arrays/objects deeper than `max`. A byte scan:
/// payloads are forwarded untouched, so their depth is checked here, once,
/// rather than by whoever parses them later.
fn nesting_exceeds(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn body<T: DeserializeOwned>(text: &str, kind: &str, id: &Option<Id>) -> Result<T, FrameError> {
    serde_json::from_str(text)
        .map_err(|e| FrameError::bad_request(id.clone(), format!("invalid \"{kind}\" frame: {}", strip_position(&e))))
}

/// serde_json's messages end in " at line 1 column 57": noise for one-line frames.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Decodes and validates a client frame.
pub fn decode_client(text: &str) -> Result<ClientFrame, FrameError> {
    let (kind, id) = read_envelope(text)?;
    let frame = match kind.as_str() {
        "hello" => ClientFrame::Hello(body(text, &kind, &id)?),
        "ping" => ClientFrame::Ping(body(text, &kind, &id)?),
        "subscribe" => ClientFrame::Subscribe(body(text, &kind, &id)?),
        "unsubscribe" => ClientFrame::Unsubscribe(body(text, &kind, &id)?),
        "publish" => ClientFrame::Publish(body(text, &kind, &id)?),
        "handle" => ClientFrame::Handle(body(text, &kind, &id)?),
        "request" => ClientFrame::Request(body(text, &kind, &id)?),
        "response" => ClientFrame::Response(body(text, &kind, &id)?),
        "register" => ClientFrame::Register(body(text, &kind, &id)?),
        "send" => ClientFrame::Send(body(text, &kind, &id)?),
        "ack" => ClientFrame::Ack(body(text, &kind, &id)?),
        "broadcast" => ClientFrame::Broadcast(body(text, &kind, &id)?),
        "discover" => ClientFrame::Discover(body(text, &kind, &id)?),
        other => {
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: format!("unknown frame type \"{}\"", clip(other)),
                id,
            });
        }
    };
    validate(&frame).map_err(|message| FrameError::bad_request(id, message))?;
    Ok(frame)
}

/// Decodes a server frame (what clients read).
pub fn decode_server(text: &str) -> Result<ServerFrame, FrameError> {
    let (kind, id) = read_envelope(text)?;
    Ok(match kind.as_str() {
        "welcome" => ServerFrame::Welcome(body(text, &kind, &id)?),
        "pong" => ServerFrame::Pong(body(text, &kind, &id)?),
        "ack" => ServerFrame::Ack(body(text, &kind, &id)?),
        "error" => ServerFrame::Error(body(text, &kind, &id)?),
        "event" => ServerFrame::Event(body(text, &kind, &id)?),
        "reset" => ServerFrame::Reset(body(text, &kind, &id)?),
        "request" => ServerFrame::Request(body(text, &kind, &id)?),
        "response" => ServerFrame::Response(body(text, &kind, &id)?),
        "message" => ServerFrame::Message(body(text, &kind, &id)?),
        "agents" => ServerFrame::Agents(body(text, &kind, &id)?),
        "presence" => ServerFrame::Presence(body(text, &kind, &id)?),
        other => {
            return Err(FrameError {
                code: ErrorCode::UnknownType,
                message: format!("unknown frame type \"{}\"", clip(other)),
                id,
            });
        }
    })
}

fn check_id(id: &Id) -> Result<(), String> {
    match id {
        Id::Str(s) if s.is_empty() || s.len() > rules::MAX_ID_BYTES => {
            Err(format!("\"id\" must be 1 to {} bytes", rules::MAX_ID_BYTES))
        }
        _ => Ok(()),
    }
}

fn check_names(what: &str, names: &[String], check: fn(&str) -> Result<(), String>) -> Result<(), String> {
    if names.is_empty() || names.len() > rules::MAX_NAMES_PER_FRAME {
        return Err(format!("\"{what}\" must list 1 to {} names, got {}", rules::MAX_NAMES_PER_FRAME, names.len()));
    }
    names.iter().try_for_each(|n| check(n))
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("\"{what}\" must be at most {max} bytes"));
    }
    Ok(())
}

/// The protocol's field rules (names, lengths, counts) for a decoded frame.
pub fn validate(frame: &ClientFrame) -> Result<(), String> {
    match frame {
        ClientFrame::Hello(h) => {
            check_len("client", &h.client, rules::MAX_CLIENT_BYTES)?;
            h.token.as_deref().map_or(Ok(()), |t| check_len("token", t, rules::MAX_TOKEN_BYTES))
        }
        ClientFrame::Ping(p) => check_id(&p.id),
        ClientFrame::Subscribe(s) => {
            check_id(&s.id)?;
            check_names("topics", &s.topics, rules::check_pattern)?;
            s.since.as_ref().map_or(Ok(()), |p| check_len("since.epoch", &p.epoch, rules::MAX_EPOCH_BYTES))
        }
        ClientFrame::Unsubscribe(u) => {
            check_id(&u.id)?;
            check_names("topics", &u.topics, rules::check_pattern)
        }
        ClientFrame::Publish(p) => {
            check_id(&p.id)?;
            rules::check_topic(&p.topic)
        }
        ClientFrame::Handle(h) => {
            check_id(&h.id)?;
            check_names("actions", &h.actions, rules::check_topic)
        }
        ClientFrame::Request(r) => {
            check_id(&r.id)?;
            rules::check_topic(&r.action)
        }
        ClientFrame::Response(r) => {
            check_id(&r.id)?;
            if r.ok && r.error.is_some() {
                return Err("a response with \"ok\": true must not carry \"error\"".to_owned());
            }
            Ok(())
        }
        ClientFrame::Register(r) => {
            check_id(&r.id)?;
            rules::check_agent(&r.agent)?;
            if r.capabilities.len() > rules::MAX_CAPABILITIES {
                return Err(format!("at most {} capabilities are allowed", rules::MAX_CAPABILITIES));
            }
            r.capabilities.iter().try_for_each(|c| rules::check_label("capability", c))
        }
        ClientFrame::Send(s) => {
            check_id(&s.id)?;
            rules::check_agent(&s.to)?;
            rules::check_label("message_type", &s.message_type)
        }
        ClientFrame::Ack(a) => {
            check_id(&a.id)?;
            rules::check_agent(&a.from)
        }
        ClientFrame::Broadcast(b) => {
            check_id(&b.id)?;
            rules::check_label("message_type", &b.message_type)
        }
        ClientFrame::Discover(d) => {
            check_id(&d.id)?;
            d.capability.as_deref().map_or(Ok(()), |c| rules::check_label("capability", c))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frames::*;
    use crate::protocol::json::Json;

    fn err(text: &str) -> FrameError {
        decode_client(text).expect_err(text)
    }

    #[test]
    fn decodes_every_client_frame_and_round_trips() {
        let frames = [
            r#"{"type":"hello","protocol":1,"client":"t","token":"x"}"#,
            r#"{"type":"ping","id":1}"#,
            r#"{"type":"subscribe","id":"s","topics":["a","b.*"],"since":{"epoch":"e1","seq":4}}"#,
            r#"{"type":"unsubscribe","id":"u","topics":["a"]}"#,
            r#"{"type":"publish","id":"p","topic":"a","data":{"x":[1,2]}}"#,
            r#"{"type":"handle","id":"h","actions":["evolve"]}"#,
            r#"{"type":"request","id":"r","action":"evolve","params":{"k":1},"timeout_ms":500}"#,
            r#"{"type":"response","id":"r","ok":false,"error":{"code":"nope","message":"m"}}"#,
            r#"{"type":"register","id":"g","agent":"a1","capabilities":["plan"],"presence":true}"#,
            r#"{"type":"send","id":"m","to":"a2","message_type":"note","content":"hi","priority":"high","expires_in_ms":9}"#,
            r#"{"type":"ack","id":"m","from":"a1"}"#,
            r#"{"type":"broadcast","id":"b","message_type":"note","content":null}"#,
            r#"{"type":"discover","id":"d","capability":"plan"}"#,
        ];
        for text in frames {
            let frame = decode_client(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again = decode_client(&frame.to_json()).unwrap();
            assert_eq!(frame, again, "{text}");
            assert_eq!(serde_json::from_str::<Value>(&frame.to_json()).unwrap()["type"], frame.kind());
        }
    }

    #[test]
    fn data_is_kept_verbatim() {
        let Ok(ClientFrame::Publish(p)) =
            decode_client(r#"{"type":"publish","id":1,"topic":"t","data":{"b":1, "a":2}}"#)
        else {
            panic!()
        };
        assert_eq!(p.data.get(), r#"{"b":1, "a":2}"#);
    }

    #[test]
    fn stable_codes_for_bad_frames() {
        let e = err("not json");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.starts_with("the frame is not valid JSON"), "{}", e.message);
        assert_eq!(err("  [1,2]").message, "a frame must be a JSON object with a \"type\"");
        assert_eq!(err(r#"{"id":"x"}"#), FrameError::bad_request(Some("x".into()), "the frame has no \"type\""));
        assert_eq!(err(r#"{"type":5}"#).message, "\"type\" must be a string");
        let e = err(r#"{"type":"teleport","id":7}"#);
        assert_eq!((e.code, e.id), (ErrorCode::UnknownType, Some(Id::Num(7))));
        let e = err(r#"{"type":"publish","id":"p","topic":3,"data":1}"#);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(e.id, Some("p".into()), "the id is echoed even when the body is wrong");
        assert!(e.message.starts_with("invalid \"publish\" frame: invalid type"), "{}", e.message);
        assert_eq!(err(r#"{"type":"ping"}"#).message, "invalid \"ping\" frame: missing field `id`");
        assert!(err(r#"{"type":"ping","id":""}"#).message.contains("\"id\" must be 1 to 128 bytes"));
        assert!(err(r#"{"type":"ping","id":1.5}"#).message.starts_with("invalid \"ping\" frame"));
    }

    #[test]
    fn field_rules() {
        let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let text = serde_json::json!({"type":"subscribe","id":1,"topics":many}).to_string();
        assert_eq!(err(&text).message, "\"topics\" must list 1 to 64 names, got 65");
        assert!(err(r#"{"type":"subscribe","id":1,"topics":[]}"#).message.contains("got 0"));
        assert!(err(r#"{"type":"publish","id":1,"topic":"a.*","data":1}"#).message.contains("not a valid name"));
        assert!(err(r#"{"type":"register","id":1,"agent":"bad name"}"#).message.contains("not a valid agent name"));
        assert!(err(r#"{"type":"response","id":1,"ok":true,"error":{"code":"x"}}"#).message.contains("must not carry"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let nested =
            |n: usize| format!(r#"{{"type":"publish","id":1,"topic":"t","data":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        // The frame object itself is one level.
        assert!(decode_client(&nested(63)).is_ok());
        let e = decode_client(&nested(100_000)).expect_err("too deep");
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::BadRequest, "the frame nests deeper than 64 levels"));
        let in_string = format!(r#"{{"type":"publish","id":1,"topic":"t","data":"{}\\\""}}"#, "[".repeat(1000));
        assert!(decode_client(&in_string).is_ok(), "brackets inside strings do not count");
    }

    #[test]
    fn decodes_server_frames() {
        let event = ServerFrame::Event(Event {
            topic: "t".into(),
            epoch: "e".into(),
            seq: 3,
            ts: 1,
            publisher: "p".into(),
            data: Json::from_value(&serde_json::json!({"a":1})),
        });
        assert_eq!(decode_server(&event.to_json()).unwrap(), event);
        let e = ServerFrame::Error(ErrorFrame::new(Some(Id::Num(1)), ErrorCode::NoHandler, "no handler for evolve"));
        let json: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"error","id":1,"code":"no_handler","message":"no handler for evolve","retryable":true})
        );
        assert_eq!(decode_server(r#"{"type":"bogus"}"#).unwrap_err().code, ErrorCode::UnknownType);
    }
}
