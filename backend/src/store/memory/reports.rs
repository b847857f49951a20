//! The embedded report store: the latest report of every bridge, bounded: at
//! most `max_bridges`, the longest-silent forgotten first, and any bridge silent
//! for `forget_after` dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, ready};
use tokio::time::Instant;

use crate::config;
use crate::store::StoreError;
use crate::store::reports::{Accepted, BridgeView, Change, HISTORY_POINTS, Histories, Point, ReportStore};
use crate::sync::lock;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MemoryReports {
    reports: Mutex<Reports>,
    /// This node: where the reports it takes arrive.
    node: String,
}

impl MemoryReports {
    pub(crate) fn new(config: &config::Reports, node: &str) -> Self {
        Self { reports: Mutex::new(Reports::new(config)), node: node.to_owned() }
    }

    /// How a report (`instance`, `seq`) of bridge `id` would be taken now, without taking it.
    pub(crate) fn judge(&self, id: &str, instance: &str, seq: u64) -> Accepted {
        lock(&self.reports).judge(id, instance, seq)
    }

    /// Takes a report that reached node `node` (this one, or another node of the cluster).
    pub(crate) fn put_from(
        &self,
        node: &str,
        id: &str,
        instance: &str,
        seq: u64,
        report: serde_json::Value,
        unix_ms: u64,
    ) -> Accepted {
        lock(&self.reports).put(node, id, instance, seq, report, unix_ms)
    }

    /// Forgets bridge `id` (it is gone from the cluster's store).
    pub(crate) fn forget(&self, id: &str) {
        let mut reports = lock(&self.reports);
        if reports.bridges.remove(id).is_some() {
            let _ = reports.changes.send(Change::Gone(id.to_owned()));
        }
    }
}

impl ReportStore for MemoryReports {
    fn put(
        &self,
        id: &str,
        instance: &str,
        seq: u64,
        report: serde_json::Value,
        unix_ms: u64,
    ) -> BoxFuture<'static, Result<Accepted, StoreError>> {
        ready(Ok(self.put_from(&self.node.clone(), id, instance, seq, report, unix_ms))).boxed()
    }

    fn list(&self) -> BoxFuture<'static, Result<Vec<BridgeView>, StoreError>> {
        ready(Ok(lock(&self.reports).list())).boxed()
    }

    fn histories(&self) -> BoxFuture<'static, Result<Histories, StoreError>> {
        ready(Ok(lock(&self.reports).histories())).boxed()
    }

    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change> {
        lock(&self.reports).changes.subscribe()
    }
}

/// One bridge as the backend knows it.
#[derive(Debug, Clone)]
struct Entry {
    /// The node it reports to.
    node: String,
    instance: String,
    seq: u64,
    /// The report as received (validated), shared with readers.
    report: Arc<serde_json::Value>,
    last_seen: Instant,
    received_unix_ms: u64,
    reports: u64,
    history: VecDeque<Point>,
}

/// The store's state, behind its lock.
#[derive(Debug)]
struct Reports {
    bridges: HashMap<String, Entry>,
    config: config::Reports,
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Reports {
    fn new(config: &config::Reports) -> Self {
        // Bounded: a dashboard that falls 256 changes behind gets a fresh snapshot instead.
        let (changes, _) = tokio::sync::broadcast::channel(256);
        Self { bridges: HashMap::new(), config: config.clone(), changes }
    }

    fn forget_old(&mut self, now: Instant) {
        let forget = Duration::from_millis(self.config.forget_after_ms);
        let changes = &self.changes;
        self.bridges.retain(|id, e| {
            let keep = now.saturating_duration_since(e.last_seen) < forget;
            if !keep {
                let _ = changes.send(Change::Gone(id.clone()));
            }
            keep
        });
    }

    /// Each bridge's history, by id.
    fn histories(&mut self) -> Vec<(String, Vec<Point>)> {
        self.forget_old(Instant::now());
        self.bridges.iter().map(|(id, e)| (id.clone(), e.history.iter().cloned().collect())).collect()
    }

    /// How (`instance`, `seq`) of bridge `id` compares with what is held.
    fn judge(&self, id: &str, instance: &str, seq: u64) -> Accepted {
        match self.bridges.get(id) {
            Some(e) if e.instance == instance && seq == e.seq => Accepted::Duplicate,
            Some(e) if e.instance == instance && seq < e.seq => Accepted::Stale,
            _ => Accepted::Stored,
        }
    }

    /// Takes `report` (already validated) from bridge `id`, which reports to `node`.
    fn put(
        &mut self,
        node: &str,
        id: &str,
        instance: &str,
        seq: u64,
        report: serde_json::Value,
        unix_ms: u64,
    ) -> Accepted {
        let now = Instant::now();
        self.forget_old(now);
        if let Some(e) = self.bridges.get_mut(id) {
            e.last_seen = now;
        }
        let judged = self.judge(id, instance, seq);
        if judged != Accepted::Stored {
            return judged;
        }
        if !self.bridges.contains_key(id)
            && self.bridges.len() >= self.config.max_bridges
            && let Some(oldest) = self.bridges.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| k.clone())
        {
            self.bridges.remove(&oldest);
            let _ = self.changes.send(Change::Gone(oldest));
        }
        let (reports, mut history) = self.bridges.remove(id).map_or((0, VecDeque::new()), |e| (e.reports, e.history));
        let point = Point::of(&report, unix_ms);
        if history.len() == HISTORY_POINTS {
            history.pop_front();
        }
        history.push_back(point.clone());
        let entry = Entry {
            node: node.to_owned(),
            instance: instance.to_owned(),
            seq,
            report: Arc::new(report),
            last_seen: now,
            received_unix_ms: unix_ms,
            reports: reports + 1,
            history,
        };
        let view = BridgeView {
            bridge_id: id.to_owned(),
            node: node.to_owned(),
            last_seen_ms_ago: 0,
            last_report_unix_ms: unix_ms,
            stale: false,
            reports: entry.reports,
            report: Arc::clone(&entry.report),
        };
        self.bridges.insert(id.to_owned(), entry);
        let _ = self.changes.send(Change::Report(view, point));
        Accepted::Stored
    }

    /// Every bridge, by id.
    fn list(&mut self) -> Vec<BridgeView> {
        let now = Instant::now();
        self.forget_old(now);
        let stale = Duration::from_millis(self.config.stale_after_ms);
        let mut v: Vec<BridgeView> = self
            .bridges
            .iter()
            .map(|(id, e)| {
                let ago = now.saturating_duration_since(e.last_seen);
                BridgeView {
                    bridge_id: id.clone(),
                    node: e.node.clone(),
                    last_seen_ms_ago: ago.as_millis() as u64,
                    last_report_unix_ms: e.received_unix_ms,
                    stale: ago >= stale,
                    reports: e.reports,
                    report: Arc::clone(&e.report),
                }
            })
            .collect();
        v.sort_by(|a, b| a.bridge_id.cmp(&b.bridge_id));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> Reports {
        Reports::new(&config::Reports { max_bridges: max, ..Default::default() })
    }

    #[tokio::test]
    async fn idempotent_by_instance_and_seq() {
        let mut s = store(10);
        let r = || serde_json::json!({});
        assert_eq!(s.put("n1", "b", "i1", 1, r(), 0), Accepted::Stored);
        assert_eq!(s.put("n1", "b", "i1", 1, r(), 0), Accepted::Duplicate);
        assert_eq!(s.put("n1", "b", "i1", 3, r(), 0), Accepted::Stored);
        assert_eq!(s.put("n1", "b", "i1", 2, r(), 0), Accepted::Stale);
        assert_eq!(s.put("n1", "b", "i2", 1, r(), 0), Accepted::Stored, "a reloaded page starts over");
        assert_eq!(s.list()[0].reports, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_and_ageing() {
        let mut s = store(2);
        s.put("n1", "a", "i", 1, serde_json::json!({}), 0);
        tokio::time::advance(Duration::from_millis(10)).await;
        s.put("n1", "b", "i", 1, serde_json::json!({}), 0);
        s.put("n1", "c", "i", 1, serde_json::json!({}), 0);
        let ids: Vec<_> = s.list().into_iter().map(|b| b.bridge_id).collect();
        assert_eq!(ids, ["b", "c"], "the longest-silent is forgotten");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(s.list().iter().all(|b| b.stale));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(s.list().is_empty());
    }
}
