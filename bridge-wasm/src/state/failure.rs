//! Failures across the JS edge. Here a failure is the [`Failure`] the retry
//! machinery classifies; in the driver it is that enum's JSON
//! (`{kind: "http", status: 503}`). The driver hands one over with
//! [`Core::failure`] (its few values: `kind`, one number (`after_ms`, `status`
//! or the close `code`), the server's `code`, one text (`message` or
//! `reason`), `retryable` and `retry_after_ms`), and the call that follows
//! (`failed`, `dropped`, `nodeFailed`...) acts on it.

use bridge_core::retry::Failure;

use super::Core;
use super::edge::json;

/// The short code of a failure's kind, as the page sees it in an error's `cause.code`.
pub(super) fn failure_code(f: &Failure) -> &'static str {
    match f {
        Failure::Network { .. } => "network",
        Failure::Timeout { .. } => "timeout",
        Failure::Http { .. } => "http",
        Failure::SocketClosed { .. } => "socket_closed",
        Failure::Server { .. } => "server_error",
        Failure::Auth { .. } => "unauthorized",
        Failure::Protocol { .. } => "protocol",
        Failure::Validation { .. } => "invalid",
        _ => "error",
    }
}

impl Core {
    /// The failure at hand, for the call that follows (see the module docs).
    pub fn failure(
        &mut self,
        kind: &str,
        n: f64,
        code: &str,
        text: &str,
        retryable: bool,
        retry_after_ms: Option<f64>,
    ) {
        let message = text.to_owned();
        let retry_after_ms = retry_after_ms.map(|v| v as u64);
        self.failure = match kind {
            "network" => Failure::Network { message },
            "timeout" => Failure::Timeout { after_ms: n as u64 },
            "http" => Failure::Http { status: n as u16, retry_after_ms },
            "socket_closed" => Failure::SocketClosed { code: n as u16, reason: message },
            "server" => Failure::Server { code: code.to_owned(), message, retryable, retry_after_ms },
            "auth" => Failure::Auth { message },
            "protocol" => Failure::Protocol { message },
            "validation" => Failure::Validation { message },
            _ => Failure::Other { message, retryable },
        };
    }

    /// One line for a person about the failure at hand.
    pub fn describe(&self) -> String {
        self.failure.describe()
    }

    /// Whether an HTTP response with `status` is a failure worth retrying (408, 425, 429, 5xx).
    pub fn is_transient_status(&self, status: u16) -> bool {
        bridge_core::retry::is_transient_status(status)
    }

    /// The failure at hand as a follower tab gets it from the leader, as JSON `[code,
    /// message, retryable]`: the bridge's own `refusal` code if it refused, a server's code,
    /// or the failure's.
    pub fn shared(&self, refusal: Option<String>) -> String {
        let f = &self.failure;
        let triple = match (refusal, f) {
            (Some(code), f) => (code, f.describe(), f.is_transient()),
            (None, Failure::Server { code, message, retryable, .. }) => (code.clone(), message.clone(), *retryable),
            (None, f) => (failure_code(f).to_owned(), f.describe(), f.is_transient()),
        };
        json(&triple)
    }
}
