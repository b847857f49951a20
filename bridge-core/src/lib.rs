//! Pure resilience logic shared by the browser bridge and the backend.
//!
//! No I/O, no clock reads, no randomness of its own: time is a [`time::Millis`]
//! the caller passes in and jitter comes from a [`random::RandomSource`] the
//! caller owns, so the same code runs in the browser (wasm32), on the server,
//! and in deterministic tests.
//!
//! # Layout
//!
//! - [`time`]: [`time::Millis`], time as a value.
//! - [`random`]: the injected jitter source.
//! - [`backoff`]: exponential backoff with jitter, as an iterator of delays.
//! - [`retry`]: policies (per tool), failure classification, the retry
//!   budget, outcomes, the retry state machine and the async retry driver.
//! - [`breaker`]: circuit breakers and their registry.
//! - [`nodes`]: the backend nodes a bridge may talk to, a breaker each, and failover.
//! - [`metrics`]: a fixed-size latency histogram and retry metrics.
//! - [`health`]: components, aggregate health and change detection.
//! - [`protocol`]: wire contract v1 (frames, codes, rules, decoding).
//! - [`report`]: a bridge's state report, shared by bridge and backend.
//! - [`json`]: JSON text written for size (client frames; the browser module's reports).
//! - [`session`]: a bridge socket's session (outbox, resume, de-duplication) as a state machine without I/O.
//! - [`vecmap`]: a small sorted-vector map (compact in the browser module).
//! - [`text`]: messages without `core::fmt` (compact in the browser module).
//!
//! # Example
//!
//! A call guarded by a breaker, retried by a policy, driven by hand:
//!
//! ```
//! use bridge_core::breaker::{BreakerConfig, CircuitBreaker};
//! use bridge_core::random::SeededRandom;
//! use bridge_core::retry::{Decision, Failure, PolicySet, RetryRun};
//! use bridge_core::time::Millis;
//!
//! let policies = PolicySet::default();
//! let mut breaker = CircuitBreaker::new("backend", BreakerConfig::default(), Millis(0));
//! let mut run = RetryRun::start(policies.get("fetch"), Millis(0), SeededRandom::new(1));
//! let mut now = Millis(0);
//! let result = loop {
//!     run.begin_attempt(now).expect("within the deadline");
//!     let permit = breaker.try_acquire(now).expect("closed");
//!     // ... perform the request; pretend the first two get HTTP 503 ...
//!     if run.attempts() < 3 {
//!         breaker.on_failure(permit, now);
//!         let failure = Failure::http(503, None, 0);
//!         match run.after_failure(now, failure.class(), failure.retry_after(), || true) {
//!             Decision::Retry { delay, .. } => now = now + delay,
//!             Decision::Stop(reason) => break Err(reason),
//!         }
//!     } else {
//!         breaker.on_success(permit, now);
//!         break Ok("done");
//!     }
//! };
//! assert_eq!(result, Ok("done"));
//! assert_eq!(run.retries(), 2);
//! ```

pub mod backoff;
pub mod breaker;
pub mod health;
pub mod heartbeat;
pub mod json;
pub mod metrics;
pub mod nodes;
pub mod protocol;
pub mod random;
pub mod report;
pub mod retry;
pub mod session;
pub mod text;
pub mod time;
pub mod vecmap;

/// Shows `x` with up to three decimals without core's float formatting, which
/// would add ~17 KB to the browser module for a few error messages.
pub(crate) fn show_f64(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let milli = (x.abs() * 1000.0).round() as u64;
    let sign = if x < 0.0 && milli > 0 { "-" } else { "" };
    let (int, frac) = (milli / 1000, milli % 1000);
    if frac == 0 {
        text!(sign, int)
    } else {
        // 1000 + frac has the three digits after its leading 1.
        let digits = text!(1000 + frac);
        text!(sign, int, '.', digits[1..].trim_end_matches('0'))
    }
}

/// This crate's version, as reported by the bridge and the backend.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
