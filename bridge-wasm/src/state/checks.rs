//! Health checks and the backend nodes: the driver probes and connects, and
//! says here what it saw; the health model decides what changed, and the
//! nodes which one to talk to now (bridge-core's [`HealthModel`] and
//! [`Nodes`](bridge_core::nodes::Nodes)).

use bridge_core::health::CheckResult;
use bridge_core::retry::Failure;
use bridge_core::time::Millis;

use super::Core;
use super::edge::json;

/// Whether `failure` says the node cannot serve us: it did not answer, dropped
/// the connection, is shutting down or is full. (A node that refuses a
/// handshake for now, `too_many_handshakes`, gave a turn to come back at.)
fn unreachable(failure: &Failure) -> bool {
    match failure {
        Failure::Network { .. } | Failure::Timeout { .. } => true,
        Failure::SocketClosed { .. } => failure.is_transient(),
        Failure::Server { code, .. } => code == "shutting_down" || code == "too_many_connections",
        _ => false,
    }
}

impl Core {
    /// Records a check of `component` at `now`: `result` is `pass`, `warn` or `fail`
    /// (`detail` says why). The change as JSON when its status or the whole changed.
    pub fn health(
        &mut self,
        component: &str,
        result: &str,
        detail: String,
        latency_ms: Option<f64>,
        now: f64,
    ) -> Option<String> {
        let result = match result {
            "pass" => CheckResult::Pass,
            "warn" => CheckResult::Warn(detail),
            _ => CheckResult::Fail(detail),
        };
        let change = self.health.record(component, result, latency_ms, Millis(now as u64)).ok()??;
        Some(json(&change))
    }

    /// The health of every component and the whole, as JSON.
    pub fn health_json(&self) -> String {
        json(&self.health.snapshot())
    }

    /// `http(s)://host:port` of the node to talk to now.
    pub fn node(&self) -> String {
        self.nodes.current().to_owned()
    }

    /// A connection to `url` succeeded at `now`.
    pub fn node_succeeded(&mut self, url: &str, now: f64) {
        self.nodes.succeeded(url, Millis(now as u64));
    }

    /// A connection to `url` failed at `now` with the failure at hand. If the node did not
    /// answer at all it counts against it, and the bridge may move to another node: the
    /// move as JSON (`{from, to}`).
    pub fn node_failed(&mut self, url: &str, now: f64) -> Option<String> {
        if !unreachable(&self.failure) {
            return None; // The node answered (a refusal, an error): it is alive.
        }
        let moved = self.nodes.failed(url, Millis(now as u64))?;
        Some(json(&moved))
    }
}
