//! Bridge reports: what a report must look like to be taken (the shared
//! `BridgeReport` type, a bridge id in the URL that matches its body), and the
//! store that keeps them.

use std::sync::Arc;

use bridge_core::protocol::rules;
use bridge_core::report::BridgeReport;
use serde_json::Value;

use crate::config;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::reports::{Accepted, BridgeView, Change, Histories, ReportStore};

/// Why a report was not taken.
#[derive(Debug)]
pub(crate) enum ReportError {
    /// The report is not valid; the message says what is wrong.
    Invalid(String),
    /// The store could not take it.
    Store(StoreError),
}

/// The reports domain of one node.
#[derive(Debug)]
pub(crate) struct Reports {
    store: Arc<dyn ReportStore>,
    metrics: Arc<Metrics>,
    config: config::Reports,
}

impl Reports {
    pub(crate) fn new(store: Arc<dyn ReportStore>, metrics: Arc<Metrics>, config: &config::Reports) -> Self {
        Self { store, metrics, config: config.clone() }
    }

    pub(crate) fn config(&self) -> &config::Reports {
        &self.config
    }

    /// Validates and stores the report `body` of bridge `id`; returns how it was taken and its seq.
    pub(crate) async fn put(&self, id: &str, body: &[u8]) -> Result<(Accepted, u64), ReportError> {
        let invalid = |m: String| ReportError::Invalid(m);
        rules::check_agent(id).map_err(|m| invalid(m.replace("agent name", "bridge id")))?;
        let value: Value =
            serde_json::from_slice(body).map_err(|e| invalid(format!("the report is not valid JSON: {e}")))?;
        let report: BridgeReport = serde_json::from_value(value.clone())
            .map_err(|e| invalid(format!("the report does not match the report format: {e}")))?;
        if report.bridge_id != id {
            return Err(invalid(format!(
                "the report's bridgeId \"{}\" does not match the URL's \"{id}\"",
                report.bridge_id
            )));
        }
        if report.instance.is_empty() || report.instance.len() > rules::MAX_ID_BYTES {
            return Err(invalid(format!("instance must be 1 to {} bytes", rules::MAX_ID_BYTES)));
        }
        let accepted = self
            .store
            .put(id, &report.instance, report.seq, value, crate::clock::unix_ms())
            .await
            .map_err(ReportError::Store)?;
        if accepted == Accepted::Stored {
            self.metrics.report();
        }
        Ok((accepted, report.seq))
    }

    /// Every bridge, by id.
    pub(crate) async fn list(&self) -> Result<Vec<BridgeView>, StoreError> {
        self.store.list().await
    }

    /// Each bridge's history, by id.
    pub(crate) async fn histories(&self) -> Result<Histories, StoreError> {
        self.store.histories().await
    }

    /// Changes from now on.
    pub(crate) fn watch(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.store.watch()
    }
}
