//! Bridge reports as the domains see them: the latest report of every bridge,
//! a short history of each for the dashboard's charts, and a stream of changes.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;

use super::StoreError;

/// Each bridge's history points, by bridge id.
pub(crate) type Histories = Vec<(String, Vec<Point>)>;

/// Where bridge reports are kept.
pub(crate) trait ReportStore: Send + Sync + Debug {
    /// Takes `report` (already validated) from bridge `id`, received at `unix_ms`.
    fn put(
        &self,
        id: &str,
        instance: &str,
        seq: u64,
        report: serde_json::Value,
        unix_ms: u64,
    ) -> BoxFuture<'static, Result<Accepted, StoreError>>;
    /// Every bridge, by id.
    fn list(&self) -> BoxFuture<'static, Result<Vec<BridgeView>, StoreError>>;
    /// Each bridge's history, by id.
    fn histories(&self) -> BoxFuture<'static, Result<Histories, StoreError>>;
    /// Changes from now on (bounded: a receiver that falls behind is told it lagged).
    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change>;
}

/// Points of history kept per bridge (10 minutes of reports every second, or
/// much longer at the default 10 s interval).
pub(crate) const HISTORY_POINTS: usize = 600;

/// One point of a bridge's history: what the dashboard charts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Point {
    pub(crate) ts: u64,
    pub(crate) health: String,
    /// Breaker name → state.
    pub(crate) breakers: std::collections::BTreeMap<String, String>,
    /// Tool name → [calls, successes, retries, totalDelayMs, p50Ms, p99Ms].
    pub(crate) ops: std::collections::BTreeMap<String, [f64; 6]>,
}

impl Point {
    /// The point a report makes, received at `ts`.
    pub(crate) fn of(report: &serde_json::Value, ts: u64) -> Point {
        let breakers = report["breakers"]
            .as_array()
            .map(|bs| {
                bs.iter()
                    .filter_map(|b| Some((b["name"].as_str()?.to_owned(), b["state"].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let ops = report["retry"]["operations"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let f = |x: &serde_json::Value| x.as_f64().unwrap_or(0.0);
                        let point = [
                            f(&v["calls"]),
                            f(&v["successes"]),
                            f(&v["retries"]),
                            f(&v["totalDelayMs"]),
                            f(&v["latency"]["p50Ms"]),
                            f(&v["latency"]["p99Ms"]),
                        ];
                        (k.clone(), point)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Point { ts, health: report["health"]["status"].as_str().unwrap_or("unknown").to_owned(), breakers, ops }
    }
}

/// What the dashboard stream is told as it happens.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A report was stored.
    Report(BridgeView, Point),
    /// A bridge was forgotten (too long silent, or evicted).
    Gone(String),
}

/// How a report was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Accepted {
    /// A new report.
    Stored,
    /// The same (instance, seq) again: nothing changed.
    Duplicate,
    /// An older seq of the current instance: ignored (a newer one is held).
    Stale,
}

/// A bridge in `GET /api/bridges`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BridgeView {
    pub(crate) bridge_id: String,
    /// The node it reports to.
    pub(crate) node: String,
    pub(crate) last_seen_ms_ago: u64,
    pub(crate) last_report_unix_ms: u64,
    pub(crate) stale: bool,
    pub(crate) reports: u64,
    pub(crate) report: Arc<serde_json::Value>,
}
