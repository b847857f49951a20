//! Retry metrics: what retrying did, per operation and in total.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::vecmap::VecMap;

use super::histogram::{Histogram, LatencySummary};
use crate::retry::Outcome;
use crate::retry::driver::RunSummary;
use crate::text;
use crate::time::duration_ms;

/// Operations tracked by name; further names share one "(other)" row so a
/// page inventing names cannot grow memory.
pub const MAX_OPERATIONS: usize = 128;
/// The row that collects operations past [`MAX_OPERATIONS`].
pub const OVERFLOW_OPERATION: &str = "(other)";

#[derive(Debug, Clone, Default)]
struct Operation {
    calls: u64,
    attempts: u64,
    successes: u64,
    failures: u64,
    retries: u64,
    total_delay: Duration,
    /// Count per outcome, in `Outcome::ALL` order.
    outcomes: [u64; Outcome::ALL.len()],
    latency: Histogram,
    last_error: Option<String>,
}

/// Retry metrics for many named operations. See [`RetryMetrics::record`].
#[derive(Debug, Clone, Default)]
pub struct RetryMetrics {
    ops: VecMap<String, Operation>,
    latency: Histogram,
    total_retries: u64,
    successful_retries: u64,
    failed_retries: u64,
    successes: u64,
    calls: u64,
}

/// One operation's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSnapshot {
    /// Operations run.
    pub calls: u64,
    /// Attempts made, retries included.
    pub attempts: u64,
    /// Operations that succeeded.
    pub successes: u64,
    /// Operations that failed.
    pub failures: u64,
    /// Retries made.
    pub retries: u64,
    /// Time spent waiting between attempts, ms.
    pub total_delay_ms: u64,
    /// successes / calls (1 when nothing ran yet).
    pub success_rate: f64,
    /// Count per outcome code.
    pub outcomes: VecMap<String, u64>,
    /// Latency of whole operations.
    pub latency: LatencySummary,
    /// The most recent failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// All retry metrics at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryMetricsSnapshot {
    /// Retries made, all operations.
    pub total_retries: u64,
    /// Operations that succeeded after at least one retry.
    pub successful_retries: u64,
    /// Operations that retried at least once and still failed.
    pub failed_retries: u64,
    /// Succeeded operations / all operations (1 when nothing ran yet).
    pub success_rate: f64,
    /// Latency of all operations.
    pub latency: LatencySummary,
    /// Per operation name.
    pub operations: VecMap<String, OperationSnapshot>,
}

crate::json_object!(OperationSnapshot, |s|
    "calls": s.calls,
    "attempts": s.attempts,
    "successes": s.successes,
    "failures": s.failures,
    "retries": s.retries,
    "totalDelayMs": s.total_delay_ms,
    "successRate": s.success_rate,
    "outcomes": s.outcomes,
    "latency": s.latency,
    "lastError"?: s.last_error,
);

crate::json_object!(RetryMetricsSnapshot, |s|
    "totalRetries": s.total_retries,
    "successfulRetries": s.successful_retries,
    "failedRetries": s.failed_retries,
    "successRate": s.success_rate,
    "latency": s.latency,
    "operations": s.operations,
);

fn rate(successes: u64, calls: u64) -> f64 {
    if calls == 0 { 1.0 } else { successes as f64 / calls as f64 }
}

impl RetryMetrics {
    /// Records one finished operation named `name`; `error` is its message when it failed.
    pub fn record(&mut self, name: &str, run: &RunSummary, error: Option<&str>) {
        let key =
            if self.ops.contains_key(name) || self.ops.len() < MAX_OPERATIONS { name } else { OVERFLOW_OPERATION };
        let op = self.ops.get_or_insert_with(key.to_owned(), Operation::default);
        let ok = run.outcome == Outcome::Succeeded;
        op.calls += 1;
        op.attempts += u64::from(run.attempts);
        op.retries += u64::from(run.retries);
        op.total_delay += run.total_delay;
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == run.outcome) {
            op.outcomes[i] += 1;
        }
        op.latency.record(run.latency_us);
        if ok {
            op.successes += 1;
        } else {
            op.failures += 1;
            op.last_error = error.map(|e| truncate(e, 200));
        }
        self.calls += 1;
        self.latency.record(run.latency_us);
        self.total_retries += u64::from(run.retries);
        if ok {
            self.successes += 1;
        }
        if run.retries > 0 {
            if ok {
                self.successful_retries += 1;
            } else {
                self.failed_retries += 1;
            }
        }
    }

    /// `count` operations of `name` that succeeded at their first attempt, of which the
    /// `latencies_us` were timed (hot paths time a sample of their calls: clocks are not free).
    pub fn record_first_tries(&mut self, name: &str, count: u64, latencies_us: &[u64]) {
        let key =
            if self.ops.contains_key(name) || self.ops.len() < MAX_OPERATIONS { name } else { OVERFLOW_OPERATION };
        let op = self.ops.get_or_insert_with(key.to_owned(), Operation::default);
        op.calls += count;
        op.attempts += count;
        op.successes += count;
        op.outcomes[0] += count;
        for &us in latencies_us {
            op.latency.record(us);
            self.latency.record(us);
        }
        self.calls += count;
        self.successes += count;
    }

    /// Names with metrics.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.ops.keys().map(String::as_str)
    }

    /// Everything, for reports.
    pub fn snapshot(&self) -> RetryMetricsSnapshot {
        RetryMetricsSnapshot {
            total_retries: self.total_retries,
            successful_retries: self.successful_retries,
            failed_retries: self.failed_retries,
            success_rate: rate(self.successes, self.calls),
            latency: self.latency.summary(),
            operations: self
                .ops
                .iter()
                .map(|(name, op)| {
                    let snap = OperationSnapshot {
                        calls: op.calls,
                        attempts: op.attempts,
                        successes: op.successes,
                        failures: op.failures,
                        retries: op.retries,
                        total_delay_ms: duration_ms(op.total_delay),
                        success_rate: rate(op.successes, op.calls),
                        outcomes: Outcome::ALL
                            .iter()
                            .zip(op.outcomes)
                            .filter(|(_, n)| *n > 0)
                            .map(|(o, n)| (o.code().to_owned(), n))
                            .collect(),
                        latency: op.latency.summary(),
                        last_error: op.last_error.clone(),
                    };
                    (name.clone(), snap)
                })
                .collect(),
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    text!(&s[..end], '…')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(attempts: u32, outcome: Outcome, latency_ms: u64) -> RunSummary {
        RunSummary {
            attempts,
            retries: attempts - 1,
            total_delay: Duration::from_millis(100 * u64::from(attempts - 1)),
            latency_us: latency_ms * 1000,
            outcome,
        }
    }

    #[test]
    fn counts_per_operation_and_overall() {
        let mut m = RetryMetrics::default();
        m.record("fetch", &run(1, Outcome::Succeeded, 10), None);
        m.record("fetch", &run(3, Outcome::Succeeded, 30), None);
        m.record("fetch", &run(4, Outcome::RetriesExhausted, 50), Some("HTTP 503"));
        m.record("sendLLMPrompt", &run(1, Outcome::Permanent, 5), Some("HTTP 400"));
        let s = m.snapshot();
        assert_eq!((s.total_retries, s.successful_retries, s.failed_retries), (5, 1, 1));
        assert_eq!(s.success_rate, 0.5);
        let f = &s.operations["fetch"];
        assert_eq!((f.calls, f.attempts, f.successes, f.failures, f.total_delay_ms), (3, 8, 2, 1, 500));
        assert_eq!(f.outcomes["retries_exhausted"], 1);
        assert_eq!(f.last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(f.latency.count, 3);
        assert_eq!(s.latency.count, 4);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["operations"]["fetch"]["totalDelayMs"], 500);
        assert!(v["latency"]["p99Ms"].is_number());
    }

    #[test]
    fn first_try_successes_count_and_sample_latency() {
        let mut m = RetryMetrics::default();
        m.record_first_tries("call", 1, &[1500]);
        m.record_first_tries("call", 1, &[]);
        let s = m.snapshot();
        let op = &s.operations["call"];
        assert_eq!((op.calls, op.attempts, op.successes, op.retries), (2, 2, 2, 0));
        assert_eq!(op.outcomes["succeeded"], 2);
        assert_eq!(op.latency.count, 1, "only the measured call is in the histogram");
        assert_eq!(s.success_rate, 1.0);
    }

    #[test]
    fn operation_names_are_bounded() {
        let mut m = RetryMetrics::default();
        for i in 0..MAX_OPERATIONS + 50 {
            m.record(&format!("op{i}"), &run(1, Outcome::Succeeded, 1), None);
        }
        let s = m.snapshot();
        assert_eq!(s.operations.len(), MAX_OPERATIONS + 1);
        assert_eq!(s.operations[OVERFLOW_OPERATION].calls, 50);
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
