//! The one place that decides whether a failure is worth retrying.
//!
//! Transient: the same request may well succeed later (network errors,
//! timeouts, HTTP 408/425/429/5xx, abnormal WebSocket closes, server `error`
//! frames marked `retryable`). Permanent: retrying sends the same wrong thing
//! again (other 4xx, auth failures, protocol and validation errors).

use std::time::Duration;

use crate::text;
use serde::{Deserialize, Serialize};

/// A failed attempt, as seen by the retry machinery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// The request never got an answer: DNS, refused, reset, offline.
    Network {
        /// What the platform said.
        message: String,
    },
    /// The attempt ran past its timeout.
    Timeout {
        /// The timeout that fired, in ms.
        after_ms: u64,
    },
    /// An HTTP response with a non-success status.
    Http {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, already parsed to a delay.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A WebSocket closed, or failed to open, with this close code.
    SocketClosed {
        /// The close code (1006 when the connection simply dropped).
        code: u16,
        /// The close reason, possibly empty.
        #[serde(default)]
        reason: String,
    },
    /// The server answered with an `error` frame.
    Server {
        /// The frame's stable code (`rate_limited`, `no_handler`, ...).
        code: String,
        /// The frame's message.
        #[serde(default)]
        message: String,
        /// The frame's `retryable` flag.
        retryable: bool,
        /// The frame's `retry_after_ms`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Credentials missing, wrong or not allowed.
    Auth {
        /// What was refused.
        message: String,
    },
    /// The peer broke the protocol (unparseable or unexpected answer).
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// The caller's own input is invalid; sending it again cannot help.
    Validation {
        /// What was wrong.
        message: String,
    },
    /// Any other error, with the thrower's own opinion on retrying.
    Other {
        /// What happened.
        message: String,
        /// Whether it is worth another try.
        retryable: bool,
    },
}

/// Tagged by `kind`, as serde writes it.
impl crate::json::ToJson for Failure {
    fn write_json(&self, out: &mut crate::json::Out) {
        out.object(self);
    }
}

impl crate::json::Fields for Failure {
    fn write_fields(&self, out: &mut crate::json::Out) {
        use crate::json_fields;
        match self {
            Failure::Network { message } => json_fields!(out; "kind": "network", "message": message),
            Failure::Timeout { after_ms } => json_fields!(out; "kind": "timeout", "after_ms": after_ms),
            Failure::Http { status, retry_after_ms } => {
                json_fields!(out; "kind": "http", "status": status, "retry_after_ms"?: retry_after_ms)
            }
            Failure::SocketClosed { code, reason } => {
                json_fields!(out; "kind": "socket_closed", "code": code, "reason": reason)
            }
            Failure::Server { code, message, retryable, retry_after_ms } => json_fields!(out;
                "kind": "server",
                "code": code,
                "message": message,
                "retryable": retryable,
                "retry_after_ms"?: retry_after_ms,
            ),
            Failure::Auth { message } => json_fields!(out; "kind": "auth", "message": message),
            Failure::Protocol { message } => json_fields!(out; "kind": "protocol", "message": message),
            Failure::Validation { message } => json_fields!(out; "kind": "validation", "message": message),
            Failure::Other { message, retryable } => {
                json_fields!(out; "kind": "other", "message": message, "retryable": retryable)
            }
        }
    }
}

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// May succeed if tried again later.
    Transient,
    /// Will fail the same way again.
    Permanent,
}

impl Failure {
    /// The classification: the single source of truth for "should we retry".
    pub fn class(&self) -> FailureClass {
        let transient = match self {
            Failure::Network { .. } | Failure::Timeout { .. } => true,
            Failure::Http { status, .. } => is_transient_status(*status),
            Failure::SocketClosed { code, .. } => crate::protocol::close::is_transient(*code),
            Failure::Server { retryable, .. } | Failure::Other { retryable, .. } => *retryable,
            Failure::Auth { .. } | Failure::Protocol { .. } | Failure::Validation { .. } => false,
        };
        if transient { FailureClass::Transient } else { FailureClass::Permanent }
    }

    /// True when [`Failure::class`] is transient.
    pub fn is_transient(&self) -> bool {
        self.class() == FailureClass::Transient
    }

    /// The delay the server asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Http { retry_after_ms, .. } | Failure::Server { retry_after_ms, .. } => {
                retry_after_ms.map(Duration::from_millis)
            }
            _ => None,
        }
    }

    /// An HTTP failure for `status`, parsing `Retry-After` when present.
    /// `now_unix_ms` is the wall clock, needed only for the HTTP-date form.
    pub fn http(status: u16, retry_after: Option<&str>, now_unix_ms: u64) -> Self {
        let retry_after_ms = retry_after.and_then(|v| parse_retry_after(v, now_unix_ms)).map(crate::time::duration_ms);
        Failure::Http { status, retry_after_ms }
    }

    /// A short human description, for logs and error messages.
    pub fn describe(&self) -> String {
        match self {
            Failure::Network { message } => text!("network error: ", message),
            Failure::Timeout { after_ms } => text!("timed out after ", after_ms, " ms"),
            Failure::Http { status, .. } => text!("HTTP ", status),
            Failure::SocketClosed { code, reason } if reason.is_empty() => text!("socket closed (", code, ")"),
            Failure::SocketClosed { code, reason } => text!("socket closed (", code, ": ", reason, ")"),
            Failure::Server { code, message, .. } => text!("server error ", code, ": ", message),
            Failure::Auth { message } => text!("not authorized: ", message),
            Failure::Protocol { message } => text!("protocol error: ", message),
            Failure::Validation { message } => text!("invalid input: ", message),
            Failure::Other { message, .. } => message.clone(),
        }
    }
}

/// HTTP statuses worth retrying: 408 Request Timeout, 425 Too Early,
/// 429 Too Many Requests and every 5xx.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// Parses a `Retry-After` value: delay-seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the obsolete RFC 850 and asctime
/// forms). A date in the past means "now". Returns `None` when unparseable.
pub fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Very long digit strings saturate rather than fail: "wait a long time".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at_secs = parse_http_date(value)?;
    let at_ms = at_secs.saturating_mul(1000);
    Some(Duration::from_millis(at_ms.saturating_sub(now_unix_ms)))
}

/// Parses an HTTP date (RFC 9110 §5.6.7) to seconds since the Unix epoch.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    let (day, month, year, time) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, day, month, year, time, "GMT"] if year.len() == 4 => (*day, *month, year.parse().ok()?, *time),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, date, time, "GMT"] => {
            let mut it = date.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y: u64 = y.parse().ok()?;
            // Two-digit years: RFC 9110 says pick the most recent past century; 70 is the usual pivot.
            let year = if y < 70 {
                2000 + y
            } else if y < 100 {
                1900 + y
            } else {
                y
            };
            (d, m, year, *time)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, month, day, time, year] => (*day, *month, year.parse().ok()?, *time),
        _ => return None,
    };
    let day: u64 = day.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month)? as u64
        + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> Failure {
        Failure::Http { status, retry_after_ms: None }
    }

    #[test]
    fn transient_http_statuses() {
        for s in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(http(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 422, 300, 600] {
            assert!(!http(s).is_transient(), "{s}");
        }
    }

    #[test]
    fn classes_of_every_kind() {
        let m = || "x".to_string();
        assert!(Failure::Network { message: m() }.is_transient());
        assert!(Failure::Timeout { after_ms: 1 }.is_transient());
        assert!(Failure::SocketClosed { code: 1006, reason: String::new() }.is_transient());
        assert!(!Failure::SocketClosed { code: 1008, reason: String::new() }.is_transient());
        assert!(
            Failure::Server { code: "no_handler".into(), message: m(), retryable: true, retry_after_ms: None }
                .is_transient()
        );
        assert!(
            !Failure::Server { code: "bad_request".into(), message: m(), retryable: false, retry_after_ms: None }
                .is_transient()
        );
        assert!(!Failure::Auth { message: m() }.is_transient());
        assert!(!Failure::Protocol { message: m() }.is_transient());
        assert!(!Failure::Validation { message: m() }.is_transient());
        assert!(Failure::Other { message: m(), retryable: true }.is_transient());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 ", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999999999999999999", 0), Some(Duration::from_secs(u64::MAX)));
        // 1994-11-06T08:49:37Z = 784111777
        let at = 784_111_777_000;
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 5000), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", at), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", at - 1000), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 60_000), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT"] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn http_constructor_parses_header() {
        assert_eq!(Failure::http(503, Some("2"), 0).retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(Failure::http(503, Some("nonsense"), 0).retry_after(), None);
    }

    #[test]
    fn epoch_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
    }
}
