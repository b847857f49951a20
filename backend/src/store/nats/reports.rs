//! Bridge reports for the whole cluster: a JetStream key-value bucket holds
//! each bridge's latest report (with the node it reports to), and every node
//! watches the bucket into its own embedded store, which serves the list, the
//! history the dashboard charts, and the change stream. So any node shows every
//! bridge of the cluster; a bridge whose node died goes stale, and comes back
//! when it reports to another node.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::Context;
use async_nats::jetstream::kv;
use axum::body::Bytes;
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, ready};
use serde::{Deserialize, Serialize};

use super::health::NatsHealth;
use crate::config::Config;
use crate::store::StoreError;
use crate::store::memory::MemoryReports;
use crate::store::reports::{Accepted, BridgeView, Change, Histories, ReportStore};

/// What the bucket holds per bridge.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    node: String,
    instance: String,
    seq: u64,
    unix_ms: u64,
    report: serde_json::Value,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsReports {
    bucket: kv::Store,
    mirror: Arc<MemoryReports>,
    node: String,
    health: Arc<NatsHealth>,
}

impl NatsReports {
    /// Opens (or creates) the bucket and starts mirroring it.
    pub(super) async fn start(
        js: &Context,
        config: &Config,
        node: &str,
        health: Arc<NatsHealth>,
    ) -> Result<Self, String> {
        let name = format!("{}_REPORTS", config.nats.stream);
        let wanted = kv::Config {
            bucket: name.clone(),
            description: "bridge-backend: every bridge's latest report".into(),
            history: 1,
            max_age: Duration::from_millis(config.reports.forget_after_ms),
            max_value_size: i32::try_from(config.reports.max_report_bytes + 1024).unwrap_or(i32::MAX),
            max_bytes: i64::try_from(config.reports.max_bridges.saturating_mul(config.reports.max_report_bytes))
                .unwrap_or(i64::MAX),
            num_replicas: config.nats.replicas,
            ..Default::default()
        };
        let bucket = super::members::bucket(js, wanted).await?;
        let mirror = Arc::new(MemoryReports::new(&config.reports, node));
        let watched = bucket.watch_with_history(">").await.map_err(|e| format!("cannot watch {name}: {e}"))?;
        tokio::spawn(mirror_bucket(watched, Arc::clone(&mirror), bucket.clone(), Arc::clone(&health)));
        Ok(Self { bucket, mirror, node: node.to_owned(), health })
    }
}

/// Applies every report put in the bucket, by any node, to this node's mirror; watches again after a failure.
async fn mirror_bucket(mut watched: kv::Watch, mirror: Arc<MemoryReports>, bucket: kv::Store, health: Arc<NatsHealth>) {
    loop {
        while let Some(entry) = watched.next().await {
            let Ok(entry) = entry else { break };
            match entry.operation {
                kv::Operation::Put => match serde_json::from_slice::<Stored>(&entry.value) {
                    Ok(s) => {
                        mirror.put_from(&s.node, &entry.key, &s.instance, s.seq, s.report, s.unix_ms);
                    }
                    Err(e) => tracing::warn!(key = %entry.key, error = %e, "a report in the bucket is not readable"),
                },
                kv::Operation::Delete | kv::Operation::Purge => mirror.forget(&entry.key),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match bucket.watch_with_history(">").await {
            Ok(w) => watched = w,
            Err(e) => health.tail_failed(&format!("the reports bucket cannot be watched: {e}")),
        }
    }
}

impl ReportStore for NatsReports {
    fn put(
        &self,
        id: &str,
        instance: &str,
        seq: u64,
        report: serde_json::Value,
        unix_ms: u64,
    ) -> BoxFuture<'static, Result<Accepted, StoreError>> {
        let judged = self.mirror.judge(id, instance, seq);
        if judged != Accepted::Stored {
            return ready(Ok(judged)).boxed();
        }
        if let Some(why) = self.health.unreachable() {
            return ready(Err(StoreError::Unavailable(why))).boxed();
        }
        let stored = Stored { node: self.node.clone(), instance: instance.to_owned(), seq, unix_ms, report };
        let value = Bytes::from(serde_json::to_vec(&stored).expect("reports serialize"));
        let (bucket, key, mirror) = (self.bucket.clone(), id.to_owned(), Arc::clone(&self.mirror));
        async move {
            bucket
                .put(&key, value)
                .await
                .map_err(|e| StoreError::Unavailable(format!("the report was not stored: {e}")))?;
            // Seen here at once; the bucket's echo of it is then a duplicate.
            mirror.put_from(&stored.node, &key, &stored.instance, stored.seq, stored.report, stored.unix_ms);
            Ok(Accepted::Stored)
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'static, Result<Vec<BridgeView>, StoreError>> {
        self.mirror.list()
    }

    fn histories(&self) -> BoxFuture<'static, Result<Histories, StoreError>> {
        self.mirror.histories()
    }

    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.mirror.watch()
    }
}
