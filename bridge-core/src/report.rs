//! A bridge's state report: the JSON of its `state()`, of the `get_os_state`
//! WebMCP tool, and of `PUT /api/bridges/{id}/report`. One type, so the
//! bridge that writes it and the backend that validates it cannot disagree.

use serde::{Deserialize, Serialize};

use crate::vecmap::VecMap;

use crate::breaker::BreakerSnapshot;
use crate::health::HealthSnapshot;
use crate::metrics::RetryMetricsSnapshot;
use crate::time::Millis;

/// A socket's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketState {
    /// Not started, or stopped by the page.
    Stopped,
    /// Opening or handshaking.
    Connecting,
    /// Connected and welcomed.
    Open,
    /// Lost; waiting to reconnect (possibly for an open breaker).
    Reconnecting,
}

/// One socket as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketSnapshot {
    /// Connection state.
    pub state: SocketState,
    /// The socket's URL.
    pub url: String,
    /// When the current connection opened, on the bridge's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<Millis>,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Requests waiting to be sent or acknowledged.
    pub outbox: u32,
    /// The outbox's capacity.
    pub outbox_limit: u32,
    /// Why the last connection ended or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Evolution: the last event position received (`epoch:seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Evolution: resets received (history could not cover a resume).
    #[serde(default)]
    pub resets: u64,
}

/// WebMCP as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebMcpSnapshot {
    /// A model context exists (see `provider`).
    pub available: bool,
    /// Which model context the tools are registered on; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<WebMcpProvider>,
    /// Tools the bridge registered.
    pub tools: Vec<String>,
}

/// Where the page's model context comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebMcpProvider {
    /// The browser's own `document.modelContext`.
    Native,
    /// The browser's own `navigator.modelContext` (Chromium builds before the
    /// getter moved to `Document`).
    Navigator,
    /// A script the page loaded provides `document.modelContext` (such as
    /// `@mcp-b/webmcp-polyfill`).
    Polyfill,
}

/// Everything a bridge knows about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeReport {
    /// The bridge's id (kept in the page's localStorage).
    pub bridge_id: String,
    /// Random per page load: a new instance restarts `seq`.
    pub instance: String,
    /// Report number within the instance; reports are idempotent by (instance, seq).
    pub seq: u64,
    /// When the report was made, ms since the Unix epoch (the page's clock).
    pub ts: u64,
    /// The bridge module's version.
    pub version: String,
    /// The page's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Time since `start()`, ms.
    pub uptime_ms: u64,
    /// Health of every component.
    pub health: HealthSnapshot,
    /// Every circuit breaker.
    pub breakers: Vec<BreakerSnapshot>,
    /// Retry metrics per tool.
    pub retry: RetryMetricsSnapshot,
    /// The sockets, by name (`evolution`, `agents`).
    pub sockets: VecMap<String, SocketSnapshot>,
    /// The backend nodes the page listed (one for a single URL), which one it talks to, and their breakers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<crate::nodes::NodeSnapshot>,
    /// WebMCP availability and registered tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webmcp: Option<WebMcpSnapshot>,
    /// The tabs sharing this bridge's connection, when it is shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tabs: Option<TabsSnapshot>,
}

/// The tabs of one origin sharing a connection (the reporting tab leads them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TabsSnapshot {
    /// This tab's id (its instance).
    pub tab: String,
    /// `leader`, `follower` or `alone`.
    pub role: String,
    /// The leading tab's id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Tabs in the group, this one included.
    pub count: u32,
}

crate::json_names!(SocketState {
    Stopped: "stopped",
    Connecting: "connecting",
    Open: "open",
    Reconnecting: "reconnecting",
});

crate::json_object!(SocketSnapshot, |s|
    "state": s.state,
    "url": s.url,
    "connectedSince"?: s.connected_since,
    "reconnects": s.reconnects,
    "outbox": s.outbox,
    "outboxLimit": s.outbox_limit,
    "lastError"?: s.last_error,
    "position"?: s.position,
    "resets": s.resets,
);

crate::json_object!(WebMcpSnapshot, |s| "available": s.available, "provider"?: s.provider, "tools": s.tools);

crate::json_names!(WebMcpProvider { Native: "native", Navigator: "navigator", Polyfill: "polyfill" });

crate::json_object!(BridgeReport, |s|
    "bridgeId": s.bridge_id,
    "instance": s.instance,
    "seq": s.seq,
    "ts": s.ts,
    "version": s.version,
    "page"?: s.page,
    "uptimeMs": s.uptime_ms,
    "health": s.health,
    "breakers": s.breakers,
    "retry": s.retry,
    "sockets": s.sockets,
    "nodes"?: s.nodes,
    "webmcp"?: s.webmcp,
    "tabs"?: s.tabs,
);

crate::json_object!(TabsSnapshot, |s| "tab": s.tab, "role": s.role, "leader"?: s.leader, "count": s.count);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{BreakerConfig, CircuitBreaker};
    use crate::health::HealthModel;
    use crate::metrics::RetryMetrics;

    #[test]
    fn round_trips_as_camel_case_json() {
        let mut breaker = CircuitBreaker::new("fetch", BreakerConfig::DEFAULT, Millis(0));
        let report = BridgeReport {
            bridge_id: "b1".into(),
            instance: "i1".into(),
            seq: 3,
            ts: 1_700_000_000_000,
            version: crate::VERSION.into(),
            page: Some("http://127.0.0.1:8765/demo/".into()),
            uptime_ms: 10,
            health: HealthModel::bridge_default().snapshot(),
            breakers: vec![breaker.snapshot(Millis(5), 10)],
            retry: RetryMetrics::default().snapshot(),
            sockets: VecMap::from([(
                "evolution".to_owned(),
                SocketSnapshot {
                    state: SocketState::Open,
                    url: "ws://x/evolution".into(),
                    connected_since: Some(Millis(1)),
                    reconnects: 0,
                    outbox: 0,
                    outbox_limit: 256,
                    last_error: None,
                    position: Some("e:4".into()),
                    resets: 0,
                },
            )]),
            nodes: crate::nodes::Nodes::new(
                &["http://a".into(), "http://b".into()],
                crate::nodes::NODE_BREAKER,
                Millis(0),
            )
            .snapshot(Millis(1), 0),
            webmcp: Some(WebMcpSnapshot { available: false, provider: None, tools: vec![] }),
            tabs: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            (json["nodes"][0]["current"].as_bool(), json["nodes"][1]["url"].as_str()),
            (Some(true), Some("http://b"))
        );
        assert_eq!(json["bridgeId"], "b1");
        assert_eq!(json["sockets"]["evolution"]["outboxLimit"], 256);
        assert_eq!(serde_json::from_value::<BridgeReport>(json).unwrap(), report);
    }
}
