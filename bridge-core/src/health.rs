//! The health model: components, their status, an aggregate, and change
//! detection that yields an event only when something actually changed.

use serde::{Deserialize, Serialize};

use crate::vecmap::VecMap;

use crate::metrics::truncate;
use crate::time::Millis;

/// Names of the built-in components.
pub mod components {
    /// The backend's HTTP API (`/readyz`).
    pub const BACKEND: &str = "backend";
    /// The evolution socket.
    pub const EVOLUTION_SOCKET: &str = "evolutionSocket";
    /// The agents socket.
    pub const AGENT_SOCKET: &str = "agentSocket";
    /// The page's WebMCP API (`document.modelContext`).
    pub const WEBMCP: &str = "webmcp";
    /// The LLM endpoint.
    pub const LLM: &str = "llm";
}

/// Failed checks in a row after which a component is unhealthy rather than degraded.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 2;
/// Most components a model tracks (users may name their own).
pub const MAX_COMPONENTS: usize = 32;

/// A component's (or the whole system's) health. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Not checked yet.
    Unknown,
    /// Working.
    Healthy,
    /// Working with problems, or failing but not for long.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// `unknown`, `healthy`, `degraded`, `unhealthy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// It works.
    Pass,
    /// It works, with a problem worth showing.
    Warn(String),
    /// It does not work.
    Fail(String),
}

/// One component's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    /// Current status.
    pub status: HealthStatus,
    /// Whether its failure makes the whole system unhealthy (else only degraded).
    pub critical: bool,
    /// Last check, on the caller's clock.
    pub last_check: Option<Millis>,
    /// Last passing check.
    pub last_success: Option<Millis>,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// What the last non-passing check said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long the last check took, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// A change worth telling the page about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthChange {
    /// The component whose check caused it.
    pub component: String,
    /// Its status before.
    pub from: HealthStatus,
    /// Its status now.
    pub to: HealthStatus,
    /// The aggregate before.
    pub aggregate_from: HealthStatus,
    /// The aggregate now.
    pub aggregate_to: HealthStatus,
    /// When.
    pub at: Millis,
    /// The check's message, if it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The whole picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSnapshot {
    /// The aggregate.
    pub status: HealthStatus,
    /// Every component by name.
    pub components: VecMap<String, ComponentHealth>,
}

impl crate::json::ToJson for HealthStatus {
    fn write_json(&self, out: &mut crate::json::Out) {
        out.str(self.as_str());
    }
}

crate::json_object!(ComponentHealth, |s|
    "status": s.status,
    "critical": s.critical,
    "lastCheck": s.last_check,
    "lastSuccess": s.last_success,
    "consecutiveFailures": s.consecutive_failures,
    "detail"?: s.detail,
    "latencyMs"?: s.latency_ms,
);

crate::json_object!(HealthChange, |s|
    "component": s.component,
    "from": s.from,
    "to": s.to,
    "aggregateFrom": s.aggregate_from,
    "aggregateTo": s.aggregate_to,
    "at": s.at,
    "detail"?: s.detail,
);

crate::json_object!(HealthSnapshot, |s| "status": s.status, "components": s.components);

/// Why a component could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at most {MAX_COMPONENTS} health components are allowed")]
pub struct TooManyComponents;

/// Components and their health.
#[derive(Debug, Clone)]
pub struct HealthModel {
    components: VecMap<String, ComponentHealth>,
    unhealthy_after: u32,
}

impl Default for HealthModel {
    /// No components; unhealthy after [`DEFAULT_UNHEALTHY_AFTER`] failures.
    fn default() -> Self {
        Self::new(DEFAULT_UNHEALTHY_AFTER)
    }
}

impl HealthModel {
    /// An empty model; a component is unhealthy after `unhealthy_after` failed checks in a row.
    pub fn new(unhealthy_after: u32) -> Self {
        Self { components: VecMap::new(), unhealthy_after: unhealthy_after.max(1) }
    }

    /// The model a bridge starts with: backend and both sockets critical;
    /// WebMCP and the LLM endpoint not (a page works without them).
    pub fn bridge_default() -> Self {
        let mut m = Self::default();
        for (name, critical) in [
            (components::BACKEND, true),
            (components::EVOLUTION_SOCKET, true),
            (components::AGENT_SOCKET, true),
            (components::WEBMCP, false),
            (components::LLM, false),
        ] {
            m.add(name, critical).expect("five components fit");
        }
        m
    }

    /// Adds a component (status unknown). Adding an existing one changes only its criticality.
    pub fn add(&mut self, name: &str, critical: bool) -> Result<(), TooManyComponents> {
        if let Some(c) = self.components.get_mut(name) {
            c.critical = critical;
            return Ok(());
        }
        if self.components.len() >= MAX_COMPONENTS {
            return Err(TooManyComponents);
        }
        let c = ComponentHealth {
            status: HealthStatus::Unknown,
            critical,
            last_check: None,
            last_success: None,
            consecutive_failures: 0,
            detail: None,
            latency_ms: None,
        };
        self.components.insert(name.to_owned(), c);
        Ok(())
    }

    /// Removes a component; returns the change in aggregate, if any.
    pub fn remove(&mut self, name: &str, now: Millis) -> Option<HealthChange> {
        let before = self.aggregate();
        let removed = self.components.remove(name)?;
        let after = self.aggregate();
        (before != after).then(|| HealthChange {
            component: name.to_owned(),
            from: removed.status,
            to: HealthStatus::Unknown,
            aggregate_from: before,
            aggregate_to: after,
            at: now,
            detail: None,
        })
    }

    /// One component, if known.
    pub fn component(&self, name: &str) -> Option<&ComponentHealth> {
        self.components.get(name)
    }

    /// Records a check of `name` (adding it as non-critical if new) and
    /// returns a change only when its status or the aggregate changed.
    pub fn record(
        &mut self,
        name: &str,
        result: CheckResult,
        latency_ms: Option<f64>,
        now: Millis,
    ) -> Result<Option<HealthChange>, TooManyComponents> {
        if !self.components.contains_key(name) {
            self.add(name, false)?;
        }
        let before = self.aggregate();
        let unhealthy_after = self.unhealthy_after;
        let c = self.components.get_mut(name).expect("added above");
        let from = c.status;
        c.last_check = Some(now);
        c.latency_ms = latency_ms;
        let detail = match result {
            CheckResult::Pass => {
                c.consecutive_failures = 0;
                c.last_success = Some(now);
                c.status = HealthStatus::Healthy;
                None
            }
            CheckResult::Warn(msg) => {
                c.consecutive_failures = 0;
                c.last_success = Some(now);
                c.status = HealthStatus::Degraded;
                Some(truncate(&msg, 200))
            }
            CheckResult::Fail(msg) => {
                c.consecutive_failures = c.consecutive_failures.saturating_add(1);
                c.status = if c.consecutive_failures >= unhealthy_after {
                    HealthStatus::Unhealthy
                } else {
                    HealthStatus::Degraded
                };
                Some(truncate(&msg, 200))
            }
        };
        c.detail = detail.clone();
        let to = c.status;
        let after = self.aggregate();
        Ok((from != to || before != after).then(|| HealthChange {
            component: name.to_owned(),
            from,
            to,
            aggregate_from: before,
            aggregate_to: after,
            at: now,
            detail,
        }))
    }

    /// The aggregate: unknown until something was checked; unhealthy when a
    /// critical component is; degraded when any component is degraded or a
    /// non-critical one is unhealthy; else healthy. Unchecked components are ignored.
    pub fn aggregate(&self) -> HealthStatus {
        self.components
            .values()
            .filter(|c| c.status != HealthStatus::Unknown)
            .map(|c| match c.status {
                HealthStatus::Unhealthy if !c.critical => HealthStatus::Degraded,
                s => s,
            })
            .max()
            .unwrap_or(HealthStatus::Unknown)
    }

    /// The whole picture.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot { status: self.aggregate(), components: self.components.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use components::*;

    fn fail() -> CheckResult {
        CheckResult::Fail("connection refused".into())
    }

    #[test]
    fn starts_unknown_and_reports_only_changes() {
        let mut m = HealthModel::bridge_default();
        assert_eq!(m.aggregate(), HealthStatus::Unknown);
        let c = m.record(BACKEND, CheckResult::Pass, Some(3.0), Millis(1)).unwrap().unwrap();
        assert_eq!(
            (c.from, c.to, c.aggregate_from, c.aggregate_to),
            (HealthStatus::Unknown, HealthStatus::Healthy, HealthStatus::Unknown, HealthStatus::Healthy)
        );
        assert_eq!(m.record(BACKEND, CheckResult::Pass, Some(2.0), Millis(2)).unwrap(), None, "no change, no event");
        assert_eq!(m.component(BACKEND).unwrap().last_check, Some(Millis(2)));
    }

    #[test]
    fn degraded_then_unhealthy_after_two_failures() {
        let mut m = HealthModel::bridge_default();
        m.record(BACKEND, CheckResult::Pass, None, Millis(0)).unwrap();
        let c = m.record(BACKEND, fail(), None, Millis(1)).unwrap().unwrap();
        assert_eq!((c.to, c.aggregate_to), (HealthStatus::Degraded, HealthStatus::Degraded));
        assert_eq!(c.detail.as_deref(), Some("connection refused"));
        let c = m.record(BACKEND, fail(), None, Millis(2)).unwrap().unwrap();
        assert_eq!((c.to, c.aggregate_to), (HealthStatus::Unhealthy, HealthStatus::Unhealthy));
        assert_eq!(m.record(BACKEND, fail(), None, Millis(3)).unwrap(), None);
        let comp = m.component(BACKEND).unwrap();
        assert_eq!((comp.consecutive_failures, comp.last_success), (3, Some(Millis(0))));
    }

    #[test]
    fn non_critical_failures_only_degrade() {
        let mut m = HealthModel::bridge_default();
        m.record(BACKEND, CheckResult::Pass, None, Millis(0)).unwrap();
        m.record(LLM, fail(), None, Millis(0)).unwrap();
        m.record(LLM, fail(), None, Millis(0)).unwrap();
        assert_eq!(m.component(LLM).unwrap().status, HealthStatus::Unhealthy);
        assert_eq!(m.aggregate(), HealthStatus::Degraded);
    }

    #[test]
    fn user_components_are_bounded() {
        let mut m = HealthModel::default();
        for i in 0..MAX_COMPONENTS {
            m.record(&format!("c{i}"), CheckResult::Pass, None, Millis(0)).unwrap();
        }
        assert_eq!(m.record("one-more", CheckResult::Pass, None, Millis(0)), Err(TooManyComponents));
    }

    #[test]
    fn removing_a_component_can_change_the_aggregate() {
        let mut m = HealthModel::default();
        m.add("a", true).unwrap();
        m.record("a", CheckResult::Pass, None, Millis(0)).unwrap();
        m.add("b", true).unwrap();
        m.record("b", CheckResult::Warn("slow".into()), None, Millis(0)).unwrap();
        assert_eq!(m.aggregate(), HealthStatus::Degraded);
        let c = m.remove("b", Millis(1)).unwrap();
        assert_eq!(c.aggregate_to, HealthStatus::Healthy);
        assert_eq!(m.remove("zzz", Millis(1)), None);
    }

    #[test]
    fn snapshot_json() {
        let mut m = HealthModel::bridge_default();
        m.record(AGENT_SOCKET, CheckResult::Pass, Some(1.5), Millis(7)).unwrap();
        let v = serde_json::to_value(m.snapshot()).unwrap();
        assert_eq!(v["status"], "healthy");
        assert_eq!(v["components"]["agentSocket"]["lastSuccess"], 7);
        assert_eq!(v["components"]["webmcp"]["status"], "unknown");
    }
}
