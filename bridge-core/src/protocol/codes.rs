//! Stable error codes and WebSocket close codes: what programs switch on.

use serde::{Deserialize, Serialize};

/// The `code` of an `error` frame. Stable: never renamed, only added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON, or a field is missing or of the wrong type.
    BadRequest,
    /// The `type` is not one this socket knows.
    UnknownType,
    /// The frame is larger than the server accepts.
    TooLarge,
    /// A binary frame; only text frames are accepted.
    UnsupportedFrame,
    /// Too many frames too fast; wait `retry_after_ms`.
    RateLimited,
    /// Missing or wrong token.
    Unauthorized,
    /// The token lacks the role this action needs.
    Forbidden,
    /// The first frame must be `hello`.
    HelloRequired,
    /// `hello` was already received on this connection.
    AlreadyHello,
    /// The client's protocol version is not supported.
    UnsupportedProtocol,
    /// No live handler for the requested action.
    NoHandler,
    /// The handler did not answer in time.
    Timeout,
    /// The agent name is held by another live connection.
    NameTaken,
    /// The agent was never registered on this server.
    UnknownAgent,
    /// Agent actions need `register` first.
    NotRegistered,
    /// The recipient's offline queue is full.
    QueueFull,
    /// An `ack` or `response` for something not pending (stray or duplicate).
    UnknownMessage,
    /// Too many subscriptions, handlers or pending requests on this connection.
    LimitExceeded,
    /// The server is shutting down.
    ShuttingDown,
    /// Something broke on the server; the message says what.
    Internal,
    /// The server's store (NATS, in cluster mode) cannot be reached: nothing was done; retry.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for documentation tests.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownType,
        ErrorCode::TooLarge,
        ErrorCode::UnsupportedFrame,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::HelloRequired,
        ErrorCode::AlreadyHello,
        ErrorCode::UnsupportedProtocol,
        ErrorCode::NoHandler,
        ErrorCode::Timeout,
        ErrorCode::NameTaken,
        ErrorCode::UnknownAgent,
        ErrorCode::NotRegistered,
        ErrorCode::QueueFull,
        ErrorCode::UnknownMessage,
        ErrorCode::LimitExceeded,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedFrame => "unsupported_frame",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::AlreadyHello => "already_hello",
            ErrorCode::UnsupportedProtocol => "unsupported_protocol",
            ErrorCode::NoHandler => "no_handler",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// Whether the same request may succeed later: `rate_limited`,
    /// `no_handler`, `timeout`, `queue_full`, `shutting_down`, `internal`, `unavailable`.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::NoHandler
                | ErrorCode::Timeout
                | ErrorCode::QueueFull
                | ErrorCode::ShuttingDown
                | ErrorCode::Internal
                | ErrorCode::Unavailable
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes the server uses, and which of them are worth reconnecting after.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down (or the page is leaving).
    pub const GOING_AWAY: u16 = 1001;
    /// The connection dropped without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// Policy violation.
    pub const POLICY: u16 = 1008;
    /// The server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The server is restarting.
    pub const SERVICE_RESTART: u16 = 1012;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The client could not keep up with its outbound queue; reconnect and resume from the last seq.
    pub const SLOW_CONSUMER: u16 = 4000;
    /// Protocol violation: the first frame was not `hello`.
    pub const PROTOCOL_ERROR: u16 = 4400;
    /// Bad or missing token.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Unsupported protocol version.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4406;
    /// No frame (not even a pong) within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4408;
    /// Another connection took over this agent name.
    pub const REPLACED: u16 = 4409;
    /// Too many bad frames: the client keeps misbehaving.
    pub const TOO_MANY_ERRORS: u16 = 4429;

    /// Whether reconnecting after this close code may help. Abnormal and
    /// server-side closes are transient; protocol, auth and policy closes are
    /// not (the same client would be refused again); a normal close is not a failure.
    pub const fn is_transient(code: u16) -> bool {
        matches!(
            code,
            GOING_AWAY
                | ABNORMAL
                | INTERNAL_ERROR
                | SERVICE_RESTART
                | TRY_AGAIN_LATER
                | 1014
                | SLOW_CONSUMER
                | HEARTBEAT_TIMEOUT
                | TOO_MANY_ERRORS
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn close_code_classes() {
        for c in [1001, 1006, 1011, 1012, 1013, 1014, 4000, 4408, 4429] {
            assert!(close::is_transient(c), "{c}");
        }
        for c in [1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401, 4406, 4409] {
            assert!(!close::is_transient(c), "{c}");
        }
    }
}
