//! The state report: what `state()`, the `get_os_state` tool and
//! `PUT /api/bridges/{id}/report` carry (bridge-core's [`BridgeReport`]), with
//! the few parts only the page knows passed in by the driver.

use bridge_core::report::{BridgeReport, SocketState, TabsSnapshot, WebMcpProvider, WebMcpSnapshot};
use bridge_core::time::Millis;
use bridge_core::vecmap::VecMap;
use wasm_bindgen::prelude::*;

use super::Core;
use super::edge::json;

/// Transitions per breaker in reports (the dashboard's timeline); `state()` has them all.
const REPORT_TRANSITIONS: usize = 20;

fn socket_state(name: &str) -> SocketState {
    match name {
        "open" => SocketState::Open,
        "connecting" => SocketState::Connecting,
        "reconnecting" => SocketState::Reconnecting,
        _ => SocketState::Stopped,
    }
}

#[wasm_bindgen]
impl Core {
    /// The report as JSON. `urls[k]` is socket k's URL; `leader_states[k]` the state the
    /// leading tab last told of it (empty: this tab's own); `provider` the model context's
    /// (`native`, `navigator`, `polyfill`; none: no WebMCP) and `tools` what was registered
    /// on it; `tabs` `[tab, role, leader]` with `tab_count` when tabs share the connection
    /// (empty: alone). Breakers carry their last 20 transitions, or with `full` all they keep.
    #[allow(clippy::too_many_arguments)]
    pub fn report(
        &mut self,
        bridge_id: String,
        instance: String,
        seq: f64,
        ts: f64,
        page: Option<String>,
        uptime_ms: f64,
        urls: Vec<String>,
        leader_states: Vec<String>,
        provider: Option<String>,
        tools: Vec<String>,
        tabs: Vec<String>,
        tab_count: u32,
        full: bool,
        now: f64,
    ) -> String {
        let now = Millis(now as u64);
        let max_transitions = if full { bridge_core::breaker::TRANSITION_HISTORY } else { REPORT_TRANSITIONS };
        let mut sockets = VecMap::new();
        for (k, s) in self.sessions.iter().enumerate() {
            let Some(s) = s else { continue };
            let mut snapshot = s.snapshot(urls.get(k).cloned().unwrap_or_default());
            if let Some(led) = leader_states.get(k).filter(|l| !l.is_empty()) {
                snapshot.state = socket_state(led);
            }
            sockets.insert(s.kind().name().to_owned(), snapshot);
        }
        let provider = provider.map(|p| match p.as_str() {
            "native" => WebMcpProvider::Native,
            "navigator" => WebMcpProvider::Navigator,
            _ => WebMcpProvider::Polyfill,
        });
        let tabs = match &tabs[..] {
            [tab, role, leader, ..] => Some(TabsSnapshot {
                tab: tab.clone(),
                role: role.clone(),
                leader: (!leader.is_empty()).then(|| leader.clone()),
                count: tab_count,
            }),
            _ => None,
        };
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
            webmcp: Some(WebMcpSnapshot { available: provider.is_some(), provider, tools }),
            tabs,
        };
        json(&report)
    }

    /// Every policy (`{default, named}`), as JSON.
    #[wasm_bindgen(js_name = policiesJson)]
    pub fn policies_json(&self) -> String {
        json(&self.policies)
    }

    /// The policy a tool named `name` gets, as JSON.
    #[wasm_bindgen(js_name = policyJson)]
    pub fn policy_json(&self, name: &str) -> String {
        json(self.policies.get(name))
    }
}
