//! The nodes of the cluster: each node announces itself every couple of
//! seconds with a summary of its state; a node that stops announcing is down.
//! The dashboard's cluster view reads this, and the agent directory uses it to
//! tell a live holder of a name from one whose node died.

use std::fmt::Debug;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a node announces itself.
pub(crate) const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);
/// A node silent for this long is down.
pub(crate) const DOWN_AFTER: Duration = Duration::from_secs(6);

/// What a node says of itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Member {
    pub(crate) id: String,
    /// New at every start of the node's process: a restarted node does not revive what its last run held.
    pub(crate) incarnation: String,
    pub(crate) version: String,
    /// `memory` or `nats`.
    pub(crate) store: String,
    /// Its address, as it listens (`127.0.0.1:8765`).
    pub(crate) addr: String,
    pub(crate) started_unix_ms: u64,
    /// When it said this (its own clock).
    pub(crate) unix_ms: u64,
    /// Whether it is ready (`/readyz` passes), and why not.
    pub(crate) ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) problem: Option<String>,
    pub(crate) evolution_connections: u64,
    pub(crate) agents_connections: u64,
    /// Bridges reporting to it.
    pub(crate) bridges: u64,
}

/// A member as seen from here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Seen {
    #[serde(flatten)]
    pub(crate) member: Member,
    /// It announced itself within [`DOWN_AFTER`].
    pub(crate) up: bool,
    /// Milliseconds since this node last heard from it.
    pub(crate) last_heard_ms_ago: u64,
}

/// Where the nodes of the cluster find each other.
pub(crate) trait Members: Send + Sync + Debug {
    /// Says what this node is now.
    fn announce(&self, me: Member);
    /// Every node known, this one included, by id.
    fn list(&self) -> Vec<Seen>;
    /// Whether node `id`, in its run `incarnation`, is up (this node always is).
    fn is_up(&self, id: &str, incarnation: &str) -> bool;
}
