//! Evolution requests between nodes. A node routes a request to its own
//! handlers first; the bus is how it reaches a handler connected to another
//! node, and how other nodes reach this node's handlers. On one node (the
//! embedded store) there is nobody to reach: a request without a local
//! handler gets `no_handler`.

use std::fmt::Debug;
use std::time::Duration;

use bridge_core::protocol::{ErrorCode, Json, ResponseError};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// How a routed request ended: the handler's answer, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Answer {
    /// The handler's `response`.
    Response {
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Json>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ResponseError>,
    },
    /// No answer from a handler: `no_handler`, `timeout`, `unavailable`, with a message.
    Failed { code: ErrorCode, message: String },
}

/// A request from another node for one of this node's handlers.
#[derive(Debug)]
pub(crate) struct RemoteRequest {
    pub(crate) action: String,
    pub(crate) params: Option<Json>,
    pub(crate) timeout: Duration,
    /// Where the answer goes (dropping it answers `no_handler`).
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// See the module docs.
pub(crate) trait RequestBus: Send + Sync + Debug {
    /// Whether other nodes can be asked.
    fn reaches_other_nodes(&self) -> bool;
    /// This node now has a live handler for `action`; completes when other nodes can reach it.
    fn advertise(&self, action: &str) -> BoxFuture<'static, ()>;
    /// This node has no live handler for `action` any more.
    fn withdraw(&self, action: &str);
    /// Asks a handler on another node; resolves to its answer within `timeout`.
    fn forward(&self, action: &str, params: Option<&Json>, timeout: Duration) -> BoxFuture<'static, Answer>;
    /// Requests from other nodes for this node's handlers: handed out once, to
    /// whoever serves them (the evolution domain).
    fn incoming(&self) -> Option<mpsc::Receiver<RemoteRequest>>;
}
