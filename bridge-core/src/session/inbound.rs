//! Server frames as a session reads them: only the fields it acts on, plus
//! the parsed frame itself (`P`) to hand to the page as is. Whoever owns the
//! socket parses the text (the bridge with the browser's `JSON.parse`).

use crate::protocol::{Id, Position};
use crate::retry::Failure;

/// A server frame, reduced to what the session needs; `P` is the whole parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<P> {
    /// `welcome`: the handshake is done.
    Welcome {
        /// The server's heartbeat interval.
        heartbeat_ms: u64,
    },
    /// `ack`, `response`, `agents`: the answer to request `id`.
    Answer {
        /// The request it answers.
        id: Id,
        /// The stream's head at a subscribe, when the answer carries it.
        position: Option<Position>,
        /// The whole frame.
        payload: P,
    },
    /// `error`: for request `id` when it has one, about the connection otherwise.
    Error {
        /// The request it answers, if any.
        id: Option<Id>,
        /// What the error means to a retry policy.
        failure: Failure,
    },
    /// `event` on an evolution topic.
    Event {
        /// Where it sits in the stream.
        position: Position,
        /// Its topic.
        topic: String,
        /// The whole frame.
        payload: P,
    },
    /// `reset`: history could not cover the resume position.
    Reset {
        /// Where the stream continues from.
        position: Position,
        /// The whole frame.
        payload: P,
    },
    /// `message` from another agent.
    Message {
        /// The sender's id for it (with `from`, what redeliveries share).
        id: Id,
        /// The sending agent, as the server stamped it.
        from: String,
        /// Sent to every agent; not acknowledged.
        broadcast: bool,
        /// The whole frame.
        payload: P,
    },
    /// `presence`: an agent came or went.
    Presence {
        /// The whole frame.
        payload: P,
    },
    /// `pong` and anything else: proof of life only.
    Other,
}

impl<P> Inbound<P> {
    /// What every tab sharing the connection gets too: events, resets, messages, presence.
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            Inbound::Event { .. } | Inbound::Reset { .. } | Inbound::Message { .. } | Inbound::Presence { .. }
        )
    }
}

/// The failure an `error` frame with `code` stands for.
pub fn error_failure(code: &str, message: &str, retryable: bool, retry_after_ms: Option<u64>) -> Failure {
    match code {
        "unauthorized" | "forbidden" => Failure::Auth { message: message.to_owned() },
        "unsupported_protocol" | "hello_required" | "already_hello" => {
            Failure::Protocol { message: message.to_owned() }
        }
        _ => Failure::Server { code: code.to_owned(), message: message.to_owned(), retryable, retry_after_ms },
    }
}
