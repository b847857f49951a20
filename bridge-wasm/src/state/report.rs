//! The state report: what `state()`, the `get_os_state` tool and
//! `PUT /api/bridges/{id}/report` carry (bridge-core's [`BridgeReport`]); the
//! driver adds the few parts only the page knows.

use bridge_core::report::BridgeReport;
use bridge_core::time::Millis;
use bridge_core::vecmap::VecMap;

use super::Core;
use super::edge::json;

/// Transitions per breaker in reports (the dashboard's timeline); `state()` has them all.
const REPORT_TRANSITIONS: usize = 20;

impl Core {
    /// The report as JSON, without what only the page knows: each socket's `url` is empty
    /// and its state this tab's own, and `webmcp` and `tabs` are absent (the driver sets
    /// them). Breakers carry their last 20 transitions, or with `full` all they keep.
    #[allow(clippy::too_many_arguments)]
    pub fn report(
        &mut self,
        bridge_id: String,
        instance: String,
        seq: f64,
        ts: f64,
        page: Option<String>,
        uptime_ms: f64,
        full: bool,
        now: f64,
    ) -> String {
        let now = Millis(now as u64);
        let max_transitions = if full { bridge_core::breaker::TRANSITION_HISTORY } else { REPORT_TRANSITIONS };
        let mut sockets = VecMap::new();
        for s in self.sessions.iter().flatten() {
            sockets.insert(s.kind().name().to_owned(), s.snapshot(String::new()));
        }
        let report = BridgeReport {
            bridge_id,
            instance,
            seq: seq as u64,
            ts: ts as u64,
            version: bridge_core::VERSION.to_owned(),
            page,
            uptime_ms: uptime_ms as u64,
            health: self.health.snapshot(),
            breakers: self.breakers.snapshots(now, max_transitions),
            retry: self.metrics.snapshot(),
            sockets,
            nodes: self.nodes.snapshot(now, max_transitions),
            webmcp: None,
            tabs: None,
        };
        json(&report)
    }

    /// Every policy (`{default, named}`), as JSON.
    pub fn policies_json(&self) -> String {
        json(&self.policies)
    }

    /// The policy a tool named `name` gets, as JSON.
    pub fn policy_json(&self, name: &str) -> String {
        json(self.policies.get(name))
    }
}
