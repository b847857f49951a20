//! `new Bridge(config)`: what a page may set, with defaults, validated with
//! errors that name the field.

use std::collections::BTreeMap;

use bridge_core::breaker::BreakerConfig;
use bridge_core::retry::{BudgetConfig, PolicyOverride, PolicySet};
use serde::Deserialize;

/// Default health poll and report interval.
pub(crate) const DEFAULT_HEALTH_INTERVAL_MS: u64 = 10_000;
/// Default outbox capacity per socket (requests not yet acknowledged).
pub(crate) const DEFAULT_OUTBOX_LIMIT: u32 = 256;
/// localStorage key holding the generated bridge id.
pub(crate) const BRIDGE_ID_KEY: &str = "bridge.id";

/// The agent a bridge registers on the agents socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AgentConfig {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
}

/// The page's settings, as given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    backend_url: Option<String>,
    bridge_id: Option<String>,
    token: Option<String>,
    health_interval_ms: Option<u64>,
    report_interval_ms: Option<u64>,
    policies: Option<BTreeMap<String, PolicyOverride>>,
    breaker: Option<BreakerConfig>,
    breakers: Option<BTreeMap<String, BreakerConfig>>,
    retry_budget: Option<BudgetConfig>,
    llm_endpoint: Option<String>,
    llm_model: Option<String>,
    outbox_limit: Option<u32>,
    sockets: Option<Vec<String>>,
    agent: Option<AgentConfig>,
    report: Option<bool>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `http(s)://host:port` of the backend, no trailing slash.
    pub(crate) backend_url: String,
    pub(crate) bridge_id: String,
    pub(crate) token: Option<String>,
    pub(crate) health_interval_ms: u64,
    pub(crate) report_interval_ms: u64,
    pub(crate) policies: PolicySet,
    pub(crate) breaker: BreakerConfig,
    pub(crate) breakers: BTreeMap<String, BreakerConfig>,
    pub(crate) retry_budget: BudgetConfig,
    pub(crate) llm_endpoint: String,
    /// Whether the page named an LLM endpoint (then it is health-checked).
    pub(crate) llm_configured: bool,
    pub(crate) llm_model: Option<String>,
    pub(crate) outbox_limit: u32,
    pub(crate) evolution: bool,
    pub(crate) agents: bool,
    pub(crate) agent: Option<AgentConfig>,
    pub(crate) report: bool,
}

/// An invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidConfig(pub(crate) String);

fn field(name: &str, problem: impl std::fmt::Display) -> InvalidConfig {
    InvalidConfig(format!("config.{name}: {problem}"))
}

impl Config {
    /// Parses and validates `json` (the page's config object as JSON text). `origin` is the
    /// page's origin, the default backend; `stored_id` reads and `store_id` writes localStorage;
    /// `new_id` makes an id when none is given or stored.
    pub(crate) fn parse(
        json: &str,
        origin: Option<String>,
        stored_id: impl FnOnce() -> Option<String>,
        store_id: impl FnOnce(&str),
        new_id: impl FnOnce() -> String,
    ) -> Result<Config, InvalidConfig> {
        let raw: Raw = if json.trim().is_empty() || json.trim() == "null" || json.trim() == "undefined" {
            Raw::default()
        } else {
            serde_json::from_str(json).map_err(|e| InvalidConfig(format!("config: {}", strip_position(&e))))?
        };
        let backend_url = match raw.backend_url.or(origin) {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => return Err(field("backendUrl", "is required outside a page with an http(s) origin")),
        };
        if !(backend_url.starts_with("http://") || backend_url.starts_with("https://")) {
            return Err(field("backendUrl", format!("must start with http:// or https://, got \"{backend_url}\"")));
        }
        let bridge_id = match raw.bridge_id {
            Some(id) => id,
            None => stored_id().unwrap_or_else(|| {
                let id = new_id();
                store_id(&id);
                id
            }),
        };
        bridge_core::protocol::rules::check_agent(&bridge_id)
            .map_err(|m| field("bridgeId", m.replace("agent name", "id")))?;
        let health_interval_ms = raw.health_interval_ms.unwrap_or(DEFAULT_HEALTH_INTERVAL_MS);
        if !(100..=3_600_000).contains(&health_interval_ms) {
            return Err(field(
                "healthIntervalMs",
                format!("must be between 100 and 3600000, got {health_interval_ms}"),
            ));
        }
        let report_interval_ms = raw.report_interval_ms.unwrap_or(health_interval_ms);
        if !(100..=3_600_000).contains(&report_interval_ms) {
            return Err(field(
                "reportIntervalMs",
                format!("must be between 100 and 3600000, got {report_interval_ms}"),
            ));
        }
        let mut policies = PolicySet::default();
        if let Some(ov) = &raw.policies {
            policies.apply_overrides(ov.iter().map(|(k, v)| (k.as_str(), v))).map_err(|e| field("policies", e))?;
        }
        let breaker = raw.breaker.unwrap_or_default();
        breaker.validate().map_err(|e| field("breaker", e))?;
        let breakers = raw.breakers.unwrap_or_default();
        for (name, b) in &breakers {
            b.validate().map_err(|e| field(&format!("breakers.{name}"), e))?;
        }
        let retry_budget = raw.retry_budget.unwrap_or_default();
        retry_budget.validate().map_err(|e| field("retryBudget", e))?;
        let llm_configured = raw.llm_endpoint.is_some();
        let llm_endpoint = raw.llm_endpoint.unwrap_or_else(|| format!("{backend_url}/api/llm/chat/completions"));
        let outbox_limit = raw.outbox_limit.unwrap_or(DEFAULT_OUTBOX_LIMIT);
        if !(1..=100_000).contains(&outbox_limit) {
            return Err(field("outboxLimit", format!("must be between 1 and 100000, got {outbox_limit}")));
        }
        let sockets = raw.sockets.unwrap_or_else(|| vec!["evolution".into(), "agents".into()]);
        if let Some(bad) = sockets.iter().find(|s| *s != "evolution" && *s != "agents") {
            return Err(field("sockets", format!("\"{bad}\" is not a socket; use \"evolution\" and/or \"agents\"")));
        }
        if let Some(a) = &raw.agent {
            bridge_core::protocol::rules::check_agent(&a.name).map_err(|m| field("agent.name", m))?;
        }
        Ok(Config {
            backend_url,
            bridge_id,
            token: raw.token,
            health_interval_ms,
            report_interval_ms,
            policies,
            breaker,
            breakers,
            retry_budget,
            llm_endpoint,
            llm_configured,
            llm_model: raw.llm_model,
            outbox_limit,
            evolution: sockets.iter().any(|s| s == "evolution"),
            agents: sockets.iter().any(|s| s == "agents"),
            agent: raw.agent,
            report: raw.report.unwrap_or(true),
        })
    }

    /// `ws(s)://host:port/path`.
    pub(crate) fn socket_url(&self, path: &str) -> String {
        let ws = self.backend_url.replacen("http", "ws", 1);
        format!("{ws}{path}")
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    s.split(" at line ").next().unwrap_or(&s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, InvalidConfig> {
        Config::parse(json, Some("http://127.0.0.1:8765".into()), || Some("b-stored".into()), |_| {}, || unreachable!())
    }

    #[test]
    fn defaults_from_the_page() {
        let c = parse("{}").unwrap();
        assert_eq!(c.backend_url, "http://127.0.0.1:8765");
        assert_eq!(c.bridge_id, "b-stored");
        assert_eq!(c.health_interval_ms, 10_000);
        assert_eq!(c.socket_url("/evolution"), "ws://127.0.0.1:8765/evolution");
        assert_eq!(c.llm_endpoint, "http://127.0.0.1:8765/api/llm/chat/completions");
        assert!(c.evolution && c.agents && c.report);
        assert_eq!(c.policies.get("fetch").max_retries(), 3);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |j: &str| parse(j).unwrap_err().0;
        assert_eq!(e(r#"{"healthIntervalMs": 5}"#), "config.healthIntervalMs: must be between 100 and 3600000, got 5");
        assert_eq!(
            e(r#"{"backendUrl": "ftp://x"}"#),
            "config.backendUrl: must start with http:// or https://, got \"ftp://x\""
        );
        assert!(e(r#"{"healthIntervalMS": 5}"#).starts_with("config: unknown field `healthIntervalMS`"));
        assert!(
            e(r#"{"policies": {"fetch": {"baseDelayMs": 99999}}}"#).starts_with("config.policies: policy \"fetch\"")
        );
        assert!(
            e(r#"{"breakers": {"llm": {"failureThreshold": 0}}}"#).starts_with("config.breakers.llm: failureThreshold")
        );
        assert!(e(r#"{"bridgeId": "has space"}"#).starts_with("config.bridgeId:"));
        assert!(e(r#"{"sockets": ["evolution", "chat"]}"#).contains("\"chat\" is not a socket"));
    }

    #[test]
    fn generates_and_stores_an_id() {
        let mut stored = None;
        let c = Config::parse(
            "{}",
            Some("https://x".into()),
            || None,
            |id| stored = Some(id.to_owned()),
            || "b-new".into(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(stored.as_deref(), Some("b-new"));
        assert_eq!(c.bridge_id, "b-new");
        assert_eq!(c.socket_url("/agents"), "wss://x/agents");
    }
}
