//! The frames a session writes: six of [`ClientFrame`](crate::protocol::ClientFrame)'s
//! variants, serialized as it serializes them (the session's tests decode every frame
//! written), so the browser module carries the serializers of these six only.

use serde::Serialize;

use crate::protocol::{Hello, MessageAck, Ping, Register, Subscribe, Unsubscribe};

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

impl Written {
    /// The frame as JSON text (client frames carry no floats).
    pub(super) fn text(&self) -> String {
        crate::json::to_string::<crate::json::RustFloats, _>(self)
    }
}
