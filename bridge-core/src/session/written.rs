//! The frames a session writes: six of [`ClientFrame`](crate::protocol::ClientFrame)'s
//! variants, written as it writes them (the session's tests decode every frame
//! written), so the browser module carries the writers of these six only.

use serde::Serialize;

use crate::json::{Fields, Out, ToJson};
use crate::protocol::{Hello, MessageAck, Ping, Register, Subscribe, Unsubscribe};

/// Serialize only for the test that compares the two.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Written {
    Hello(Hello),
    Ping(Ping),
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Register(Register),
    Ack(MessageAck),
}

impl ToJson for Written {
    fn write_json(&self, out: &mut Out) {
        let (kind, fields): (&str, &dyn Fields) = match self {
            Written::Hello(f) => ("hello", f),
            Written::Ping(f) => ("ping", f),
            Written::Subscribe(f) => ("subscribe", f),
            Written::Unsubscribe(f) => ("unsubscribe", f),
            Written::Register(f) => ("register", f),
            Written::Ack(f) => ("ack", f),
        };
        out.tagged("type", kind, fields);
    }
}

impl Written {
    /// The frame as JSON text (client frames carry no floats).
    pub(super) fn text(&self) -> String {
        crate::json::to_text(self, crate::json::no_floats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Id, Position};

    #[test]
    fn frames_are_written_as_serde_json_writes_them() {
        let frames = [
            Written::Hello(Hello { protocol: 1, client: "bridge \"x\"".into(), token: None }),
            Written::Hello(Hello { protocol: 1, client: "b".into(), token: Some("t\n".into()) }),
            Written::Ping(Ping { id: Id::Str("hb-1".into()) }),
            Written::Subscribe(Subscribe { id: Id::Num(0), topics: vec![], since: None }),
            Written::Subscribe(Subscribe {
                id: Id::Str("i-2".into()),
                topics: vec!["a".into(), "b.*".into()],
                since: Some(Position { epoch: "e".into(), seq: 7 }),
            }),
            Written::Unsubscribe(Unsubscribe { id: Id::Num(3), topics: vec!["a".into()] }),
            Written::Register(Register {
                id: Id::Num(1),
                agent: "me".into(),
                capabilities: vec![],
                presence: false,
                takeover: false,
            }),
            Written::Register(Register {
                id: Id::Num(1),
                agent: "me".into(),
                capabilities: vec!["c".into()],
                presence: true,
                takeover: true,
            }),
            Written::Ack(MessageAck { id: Id::Str("m".into()), from: "bob".into() }),
        ];
        for f in &frames {
            assert_eq!(f.text(), serde_json::to_string(f).unwrap());
        }
    }
}
