//! Every piece of state that outlives a frame sits behind one seam: a trait per
//! domain, and a store that implements them all.
//!
//! - [`events`]: the event stream (publish with deduplication) and this node's log of it.
//! - [`requests`]: reaching handlers on other nodes.
//! - [`agents`]: the agent directory, offline queues, send deduplication.
//! - [`reports`]: the bridges' latest reports and their history.
//! - [`members`]: the nodes of the cluster and whether each is up.
//! - `memory`: the embedded default, all in this process.
//!
//! Domains hold the traits, never an implementation: a new store touches only
//! this folder.

use std::fmt::Debug;
use std::sync::Arc;

use crate::config::{Config, StoreKind};

pub(crate) mod agents;
pub(crate) mod events;
pub(crate) mod history;
pub(crate) mod members;
mod memory;
mod nats;
pub(crate) mod reports;
pub(crate) mod requests;

/// A store could not do what was asked; nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// The store cannot be reached now (the message says why); retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// How the store is doing, for readiness, status and metrics.
#[derive(Debug, Clone)]
pub(crate) struct StoreStatus {
    /// `memory` or `nats`.
    pub(crate) kind: &'static str,
    /// Why the store cannot serve now, if it cannot.
    pub(crate) problem: Option<String>,
    /// What else an operator wants to see (a JSON object).
    pub(crate) details: serde_json::Value,
}

/// Reports the store's status.
pub(crate) trait StoreHealth: Send + Sync + Debug {
    fn status(&self) -> StoreStatus;
}

/// The store of one node: every domain's state.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    pub(crate) events: Arc<dyn events::EventStore>,
    pub(crate) requests: Arc<dyn requests::RequestBus>,
    pub(crate) agents: Arc<dyn agents::AgentStore>,
    pub(crate) reports: Arc<dyn reports::ReportStore>,
    pub(crate) members: Arc<dyn members::Members>,
    pub(crate) health: Arc<dyn StoreHealth>,
}

#[derive(Debug)]
struct InMemory;

impl StoreHealth for InMemory {
    fn status(&self) -> StoreStatus {
        StoreStatus { kind: "memory", problem: None, details: serde_json::json!({}) }
    }
}

/// Opens the configured store. Err says what is wrong in words an operator can act on.
pub(crate) async fn open(config: &Config, node_id: &str, incarnation: &str) -> Result<Stores, String> {
    if config.store == StoreKind::Nats {
        return nats::open(config, node_id, incarnation).await;
    }
    Ok(Stores {
        events: Arc::new(memory::MemoryEvents::new(&config.evolution)),
        requests: Arc::new(memory::OneNode),
        agents: Arc::new(memory::MemoryAgents::new(&config.agents)),
        reports: Arc::new(memory::MemoryReports::new(&config.reports, node_id)),
        members: Arc::new(memory::Alone::new(node_id, incarnation)),
        health: Arc::new(InMemory),
    })
}
