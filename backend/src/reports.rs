//! Bridge reports: what a report must look like to be taken (the shared
//! `BridgeReport` type, a bridge id in the URL that matches its body), and the
//! store that keeps them.

use std::sync::Arc;

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
        let (report, value) = crate::input::report(id, body).map_err(ReportError::Invalid)?;
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
