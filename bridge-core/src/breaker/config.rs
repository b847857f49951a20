//! Breaker settings and their documented defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::text;
use crate::time::serde_ms;

/// Consecutive failures that open a closed breaker.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// How long an open breaker rejects before letting trial calls through.
pub const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(30);
/// Trial calls a half-open breaker lets run at once.
pub const DEFAULT_HALF_OPEN_MAX_CALLS: u32 = 3;
/// Successful trial calls that close a half-open breaker.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
/// Largest failure-rate window, in calls (the window is a fixed bitset).
pub const MAX_RATE_WINDOW: u32 = 1024;

/// Settings of one circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (default 5).
    #[serde(default = "d_failure_threshold", alias = "failure_threshold")]
    pub failure_threshold: u32,
    /// How long it stays open before half-opening (default 30 s).
    #[serde(default = "d_reset_timeout", rename = "resetTimeoutMs", alias = "reset_timeout_ms", with = "serde_ms")]
    pub reset_timeout: Duration,
    /// Concurrent trial calls while half-open (default 3).
    #[serde(default = "d_half_open_max_calls", alias = "half_open_max_calls")]
    pub half_open_max_calls: u32,
    /// Trial successes that close it again (default 2).
    #[serde(default = "d_success_threshold", alias = "success_threshold")]
    pub success_threshold: u32,
    /// Optional second trigger: open when too large a share of recent calls failed.
    #[serde(default, alias = "failure_rate")]
    pub failure_rate: Option<FailureRateTrigger>,
}

/// Opens the breaker when, over the last `window` calls (at least
/// `min_calls` of them), the share of failures reaches `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureRateTrigger {
    /// Calls remembered (1..=1024).
    pub window: u32,
    /// Calls needed before the rate is trusted.
    #[serde(alias = "min_calls")]
    pub min_calls: u32,
    /// Failure share that trips, in `(0, 1]`.
    pub threshold: f64,
}

crate::json_object!(BreakerConfig, |s|
    "failureThreshold": s.failure_threshold,
    "resetTimeoutMs": s.reset_timeout,
    "halfOpenMaxCalls": s.half_open_max_calls,
    "successThreshold": s.success_threshold,
    "failureRate": s.failure_rate,
);

crate::json_object!(FailureRateTrigger, |s| "window": s.window, "minCalls": s.min_calls, "threshold": s.threshold);

fn d_failure_threshold() -> u32 {
    DEFAULT_FAILURE_THRESHOLD
}
fn d_reset_timeout() -> Duration {
    DEFAULT_RESET_TIMEOUT
}
fn d_half_open_max_calls() -> u32 {
    DEFAULT_HALF_OPEN_MAX_CALLS
}
fn d_success_threshold() -> u32 {
    DEFAULT_SUCCESS_THRESHOLD
}

impl BreakerConfig {
    /// 5 failures, 30 s reset, 3 trial calls, 2 successes, no rate trigger.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: DEFAULT_FAILURE_THRESHOLD,
        reset_timeout: DEFAULT_RESET_TIMEOUT,
        half_open_max_calls: DEFAULT_HALF_OPEN_MAX_CALLS,
        success_threshold: DEFAULT_SUCCESS_THRESHOLD,
        failure_rate: None,
    };

    /// Checks every field.
    pub fn validate(&self) -> Result<(), InvalidBreaker> {
        let positive = [
            ("failureThreshold", self.failure_threshold),
            ("halfOpenMaxCalls", self.half_open_max_calls),
            ("successThreshold", self.success_threshold),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(InvalidBreaker::Zero { field });
        }
        if let Some(rate) = self.failure_rate {
            if !(1..=MAX_RATE_WINDOW).contains(&rate.window) {
                return Err(InvalidBreaker::RateWindow(rate.window));
            }
            if rate.min_calls == 0 || rate.min_calls > rate.window {
                return Err(InvalidBreaker::RateMinCalls { min_calls: rate.min_calls, window: rate.window });
            }
            if !(rate.threshold > 0.0 && rate.threshold <= 1.0) {
                return Err(InvalidBreaker::RateThreshold(rate.threshold));
            }
        }
        Ok(())
    }
}

impl Default for BreakerConfig {
    /// See [`BreakerConfig::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why breaker settings were refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidBreaker {
    /// A count that must be at least 1 is 0.
    Zero {
        /// The field.
        field: &'static str,
    },
    /// The rate window is out of range.
    RateWindow(u32),
    /// `min_calls` is 0 or larger than the window.
    RateMinCalls {
        /// The given min calls.
        min_calls: u32,
        /// The window.
        window: u32,
    },
    /// The threshold is not in `(0, 1]`.
    RateThreshold(f64),
}

impl InvalidBreaker {
    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            InvalidBreaker::Zero { field } => text!(field, " must be at least 1"),
            InvalidBreaker::RateWindow(w) => {
                text!("failureRate.window must be between 1 and ", MAX_RATE_WINDOW, ", got ", w)
            }
            InvalidBreaker::RateMinCalls { min_calls, window } => {
                text!("failureRate.minCalls must be between 1 and the window (", window, "), got ", min_calls)
            }
            InvalidBreaker::RateThreshold(t) => {
                text!("failureRate.threshold must be in (0, 1], got ", crate::show_f64(*t))
            }
        }
    }
}

impl std::fmt::Display for InvalidBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InvalidBreaker {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = BreakerConfig::default();
        assert_eq!(c.failure_threshold, 5);
        assert_eq!(c.reset_timeout, Duration::from_secs(30));
        assert_eq!(c.half_open_max_calls, 3);
        assert_eq!(c.success_threshold, 2);
        assert_eq!(c.failure_rate, None);
        let parsed: BreakerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, c, "missing fields take the defaults");
    }

    #[test]
    fn validation() {
        let bad = BreakerConfig { half_open_max_calls: 0, ..BreakerConfig::DEFAULT };
        assert_eq!(bad.validate().unwrap_err().to_string(), "halfOpenMaxCalls must be at least 1");
        let rate = |window, min_calls, threshold| BreakerConfig {
            failure_rate: Some(FailureRateTrigger { window, min_calls, threshold }),
            ..BreakerConfig::DEFAULT
        };
        assert!(rate(20, 10, 0.5).validate().is_ok());
        assert!(rate(0, 1, 0.5).validate().is_err());
        assert!(rate(2000, 1, 0.5).validate().is_err());
        assert!(rate(20, 21, 0.5).validate().is_err());
        assert!(rate(20, 10, 0.0).validate().is_err());
        assert!(rate(20, 10, f64::NAN).validate().is_err());
    }
}
