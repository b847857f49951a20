//! Metrics kept in fixed memory: a latency histogram and retry metrics.

mod histogram;
mod retry;

pub use histogram::{Histogram, LatencySummary};
pub(crate) use retry::truncate;
pub use retry::{MAX_OPERATIONS, OVERFLOW_OPERATION, OperationSnapshot, RetryMetrics, RetryMetricsSnapshot};
