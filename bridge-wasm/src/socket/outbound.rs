//! The request frames that carry page JSON (`send`, `broadcast`, `request`),
//! written as text. The payload is already JSON (from `JSON.stringify`), so it
//! is spliced in as is: wrapping it in `serde_json::RawValue` would re-parse it
//! and compile a JSON parser into the module. Field names are those of
//! `bridge_core::protocol::frames`.

use bridge_core::protocol::{Id, Priority};

/// `s` as a JSON string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn id(id: &Id) -> String {
    match id {
        Id::Num(n) => n.to_string(),
        Id::Str(s) => quote(s),
    }
}

/// `{"type":"send", ...}`.
pub(crate) fn send(
    frame_id: &Id,
    to: &str,
    message_type: &str,
    content: &str,
    priority: Option<Priority>,
    expires_in_ms: Option<u64>,
) -> String {
    let mut f = format!(
        r#"{{"type":"send","id":{},"to":{},"message_type":{},"content":{content}"#,
        id(frame_id),
        quote(to),
        quote(message_type)
    );
    if let Some(p) = priority {
        let p = match p {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        };
        f.push_str(&format!(r#","priority":"{p}""#));
    }
    if let Some(e) = expires_in_ms {
        f.push_str(&format!(r#","expires_in_ms":{e}"#));
    }
    f.push('}');
    f
}

/// `{"type":"broadcast", ...}`.
pub(crate) fn broadcast(frame_id: &Id, message_type: &str, content: &str) -> String {
    format!(
        r#"{{"type":"broadcast","id":{},"message_type":{},"content":{content}}}"#,
        id(frame_id),
        quote(message_type)
    )
}

/// `{"type":"request", ...}`.
pub(crate) fn request(frame_id: &Id, action: &str, params: Option<&str>, timeout_ms: Option<u64>) -> String {
    let mut f = format!(r#"{{"type":"request","id":{},"action":{}"#, id(frame_id), quote(action));
    if let Some(p) = params {
        f.push_str(&format!(r#","params":{p}"#));
    }
    if let Some(t) = timeout_ms {
        f.push_str(&format!(r#","timeout_ms":{t}"#));
    }
    f.push('}');
    f
}

#[cfg(test)]
mod tests {
    use bridge_core::protocol::{ClientFrame, decode_client};

    use super::*;

    #[test]
    fn frames_decode_as_the_protocol_says() {
        let id = Id::Str("i-1".into());
        let Ok(ClientFrame::Send(s)) =
            decode_client(&send(&id, "bob", "note", r#"{"a":[1,"x\"y"]}"#, Some(Priority::High), Some(5)))
        else {
            panic!("not a send")
        };
        assert_eq!(
            (s.to.as_str(), s.message_type.as_str(), s.priority, s.expires_in_ms),
            ("bob", "note", Some(Priority::High), Some(5))
        );
        assert_eq!(s.content.get(), r#"{"a":[1,"x\"y"]}"#);
        assert!(matches!(decode_client(&broadcast(&Id::Num(3), "hi", "null")), Ok(ClientFrame::Broadcast(_))));
        let Ok(ClientFrame::Request(r)) = decode_client(&request(&id, "evolve", Some("{}"), Some(9))) else { panic!() };
        assert_eq!((r.action.as_str(), r.timeout_ms), ("evolve", Some(9)));
        assert_eq!(quote("a\u{1}b\\\n"), r#""a\u0001b\\\n""#);
    }
}
