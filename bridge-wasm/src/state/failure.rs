//! Failures across the JS edge. Here a failure is the [`Failure`] the retry
//! machinery classifies; in the driver it is that enum's JSON
//! (`{kind: "http", status: 503}`), and it comes back as its few values:
//! `kind`, one number (`after_ms`, `status` or the close `code`), the server's
//! `code`, one text (`message` or `reason`), `retryable` and `retry_after_ms`.

use bridge_core::retry::Failure;
use wasm_bindgen::prelude::*;

use super::Core;
use super::edge::json;

/// The failure the driver describes (see the module docs).
pub(super) fn failure(
    kind: &str,
    n: f64,
    code: &str,
    text: &str,
    retryable: bool,
    retry_after_ms: Option<f64>,
) -> Failure {
    let message = text.to_owned();
    let retry_after_ms = retry_after_ms.map(|v| v as u64);
    match kind {
        "network" => Failure::Network { message },
        "timeout" => Failure::Timeout { after_ms: n as u64 },
        "http" => Failure::Http { status: n as u16, retry_after_ms },
        "socket_closed" => Failure::SocketClosed { code: n as u16, reason: message },
        "server" => Failure::Server { code: code.to_owned(), message, retryable, retry_after_ms },
        "auth" => Failure::Auth { message },
        "protocol" => Failure::Protocol { message },
        "validation" => Failure::Validation { message },
        _ => Failure::Other { message, retryable },
    }
}

/// `failure` as JSON text for the driver.
pub(super) fn to_json(failure: &Failure) -> String {
    json(failure)
}

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

#[wasm_bindgen]
impl Core {
    /// One line for a person about the failure given (see the module docs).
    pub fn describe(
        &self,
        kind: &str,
        n: f64,
        code: &str,
        text: &str,
        retryable: bool,
        retry_after_ms: Option<f64>,
    ) -> String {
        failure(kind, n, code, text, retryable, retry_after_ms).describe()
    }

    /// Whether an HTTP response with `status` is a failure worth retrying (408, 425, 429, 5xx).
    #[wasm_bindgen(js_name = isTransientStatus)]
    pub fn is_transient_status(&self, status: u16) -> bool {
        bridge_core::retry::is_transient_status(status)
    }

    /// A `Retry-After` header's delay in ms (seconds, or an HTTP date read against
    /// `now_unix_ms`); none when it says nothing usable.
    #[wasm_bindgen(js_name = retryAfterMs)]
    pub fn retry_after_ms(&self, header: &str, now_unix_ms: f64) -> Option<f64> {
        bridge_core::retry::parse_retry_after(header, now_unix_ms as u64).map(|d| d.as_millis() as f64)
    }
}

#[wasm_bindgen]
impl Core {
    /// A leader tab's failure as a follower gets it, as JSON `[code, message, retryable]`:
    /// the bridge's own `refusal` code if it refused, a server's code, or the failure's.
    #[allow(clippy::too_many_arguments)]
    pub fn shared(
        &self,
        refusal: Option<String>,
        kind: &str,
        n: f64,
        code: &str,
        text: &str,
        retryable: bool,
        retry_after_ms: Option<f64>,
    ) -> String {
        let f = failure(kind, n, code, text, retryable, retry_after_ms);
        let triple = match (refusal, &f) {
            (Some(code), f) => (code, f.describe(), f.is_transient()),
            (None, Failure::Server { code, message, retryable, .. }) => (code.clone(), message.clone(), *retryable),
            (None, f) => (failure_code(f).to_owned(), f.describe(), f.is_transient()),
        };
        json(&triple)
    }
}
