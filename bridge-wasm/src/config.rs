//! `new Bridge(config)`: what a page may set, with defaults, validated with
//! errors that name the field. Read from the JS object directly (see `read`).

use bridge_core::backoff::Jitter;
use bridge_core::breaker::{BreakerConfig, FailureRateTrigger};
use bridge_core::retry::{BudgetConfig, PolicyOverride, PolicySet};
use bridge_core::vecmap::VecMap;
use wasm_bindgen::JsValue;

use crate::persist::PersistConfig;
use crate::read::Obj;

/// Default health poll and report interval.
pub(crate) const DEFAULT_HEALTH_INTERVAL_MS: u64 = 10_000;
/// Default outbox capacity per socket (requests not yet acknowledged).
pub(crate) const DEFAULT_OUTBOX_LIMIT: u32 = 256;
/// localStorage key holding the generated bridge id.
pub(crate) const BRIDGE_ID_KEY: &str = "bridge.id";

/// The agent a bridge registers on the agents socket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentConfig {
    pub(crate) name: String,
    pub(crate) capabilities: Vec<String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `http(s)://host:port` of each backend node (one, or a load balancer, or a
    /// cluster's nodes in the order to try them), no trailing slash.
    pub(crate) backend_urls: Vec<String>,
    pub(crate) bridge_id: String,
    pub(crate) token: Option<String>,
    pub(crate) health_interval_ms: u64,
    pub(crate) report_interval_ms: u64,
    pub(crate) policies: PolicySet,
    pub(crate) breaker: BreakerConfig,
    pub(crate) breakers: VecMap<String, BreakerConfig>,
    pub(crate) retry_budget: BudgetConfig,
    /// The page's own LLM endpoint (then it is health-checked); `None`: the current node's proxy.
    pub(crate) llm_endpoint: Option<String>,
    pub(crate) llm_model: Option<String>,
    pub(crate) outbox_limit: u32,
    pub(crate) evolution: bool,
    pub(crate) agents: bool,
    pub(crate) agent: Option<AgentConfig>,
    pub(crate) report: bool,
    /// Keep waiting requests in IndexedDB across reloads (`persistOutbox`); `None`: off.
    pub(crate) persist: Option<PersistConfig>,
    /// One connection for the tabs of this origin with this same config (`shareConnection`).
    pub(crate) share: bool,
}

/// An invalid setting; the message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidConfig(pub(crate) String);

/// A retry policy override (`{maxRetries, baseDelayMs, maxDelayMs, jitter, deadlineMs, attemptTimeoutMs}`).
pub(crate) fn policy_override(mut o: Obj) -> Result<PolicyOverride, String> {
    let p = PolicyOverride {
        max_retries: o.u32("maxRetries")?,
        base_delay_ms: o.u64("baseDelayMs")?,
        max_delay_ms: o.u64("maxDelayMs")?,
        jitter: o.obj("jitter")?.map(jitter).transpose()?,
        deadline_ms: o.u64("deadlineMs")?,
        attempt_timeout_ms: o.u64("attemptTimeoutMs")?,
    };
    o.finish()?;
    Ok(p)
}

fn jitter(mut o: Obj) -> Result<Jitter, String> {
    let mode = o.string("mode")?.unwrap_or_else(|| "proportional".into());
    let ratio = o.f64("ratio")?;
    o.finish()?;
    match (mode.as_str(), ratio) {
        ("none", None) => Ok(Jitter::None),
        ("full", None) => Ok(Jitter::Full),
        ("decorrelated", None) => Ok(Jitter::Decorrelated),
        ("proportional", r) => Ok(Jitter::Proportional { ratio: r.unwrap_or(Jitter::DEFAULT_RATIO) }),
        (m, Some(_)) if ["none", "full", "decorrelated"].contains(&m) => {
            Err(format!("jitter: mode \"{m}\" takes no ratio"))
        }
        (m, _) => Err(format!("jitter.mode: \"{m}\" is not one of none, proportional, full, decorrelated")),
    }
}

/// Breaker settings over the defaults (`{failureThreshold, resetTimeoutMs, halfOpenMaxCalls, successThreshold, failureRate}`).
fn breaker_config(mut o: Obj, base: BreakerConfig) -> Result<BreakerConfig, String> {
    let mut c = base;
    if let Some(v) = o.u32("failureThreshold")? {
        c.failure_threshold = v;
    }
    if let Some(v) = o.u64("resetTimeoutMs")? {
        c.reset_timeout = std::time::Duration::from_millis(v);
    }
    if let Some(v) = o.u32("halfOpenMaxCalls")? {
        c.half_open_max_calls = v;
    }
    if let Some(v) = o.u32("successThreshold")? {
        c.success_threshold = v;
    }
    if let Some(mut r) = o.obj("failureRate")? {
        let trigger = FailureRateTrigger {
            window: r.u32("window")?.unwrap_or(20),
            min_calls: r.u32("minCalls")?.unwrap_or(10),
            threshold: r.f64("threshold")?.unwrap_or(0.5),
        };
        r.finish()?;
        c.failure_rate = Some(trigger);
    }
    o.finish()?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

fn budget_config(mut o: Obj) -> Result<BudgetConfig, String> {
    let mut c = BudgetConfig::DEFAULT;
    if let Some(v) = o.u64("windowMs")? {
        c.window = std::time::Duration::from_millis(v);
    }
    if let Some(v) = o.f64("ratio")? {
        c.ratio = v;
    }
    if let Some(v) = o.u32("minRetries")? {
        c.min_retries = v;
    }
    o.finish()?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// `persistOutbox: {maxEntries, maxBytes, maxAgeMs}` over the defaults.
fn persist_config(mut o: Obj) -> Result<PersistConfig, String> {
    let d = PersistConfig::default();
    let c = PersistConfig {
        max_entries: in_range(
            "config.persistOutbox.maxEntries",
            u64::from(o.u32("maxEntries")?.unwrap_or(d.max_entries)),
            1,
            100_000,
        )? as u32,
        max_bytes: in_range("config.persistOutbox.maxBytes", o.u64("maxBytes")?.unwrap_or(d.max_bytes), 1, 1 << 30)?,
        max_age_ms: in_range(
            "config.persistOutbox.maxAgeMs",
            o.u64("maxAgeMs")?.unwrap_or(d.max_age_ms),
            1,
            30 * 24 * 3_600_000,
        )?,
    };
    o.finish()?;
    Ok(c)
}

fn in_range(name: &str, v: u64, low: u64, high: u64) -> Result<u64, String> {
    if (low..=high).contains(&v) { Ok(v) } else { Err(format!("{name}: must be between {low} and {high}, got {v}")) }
}

impl Config {
    /// Reads and validates the page's `config` object. `origin` is the page's origin, the
    /// default backend; `stored_id` reads and `store_id` writes localStorage; `new_id` makes
    /// an id when none is given or stored.
    pub(crate) fn parse(
        config: &JsValue,
        origin: Option<String>,
        stored_id: impl FnOnce() -> Option<String>,
        store_id: impl FnOnce(&str),
        new_id: impl FnOnce() -> String,
    ) -> Result<Config, InvalidConfig> {
        Self::read(config, origin, stored_id, store_id, new_id).map_err(InvalidConfig)
    }

    fn read(
        config: &JsValue,
        origin: Option<String>,
        stored_id: impl FnOnce() -> Option<String>,
        store_id: impl FnOnce(&str),
        new_id: impl FnOnce() -> String,
    ) -> Result<Config, String> {
        let empty = js_sys::Object::new().into();
        let mut c = Obj::new(config, "config")?.map_or_else(|| Obj::new(&empty, "config").map(Option::unwrap), Ok)?;
        let backend_urls = match c.string_or_strings("backendUrl")?.or_else(|| origin.map(|o| vec![o])) {
            Some(urls) => backend_urls(urls)?,
            None => return Err("config.backendUrl: is required outside a page with an http(s) origin".into()),
        };
        let bridge_id = match c.string("bridgeId")? {
            Some(id) => id,
            None => stored_id().unwrap_or_else(|| {
                let id = new_id();
                store_id(&id);
                id
            }),
        };
        bridge_core::protocol::rules::check_agent(&bridge_id)
            .map_err(|m| format!("config.bridgeId: {}", m.replace("agent name", "id")))?;
        let token = c.string("token")?;
        let health_interval_ms = in_range(
            "config.healthIntervalMs",
            c.u64("healthIntervalMs")?.unwrap_or(DEFAULT_HEALTH_INTERVAL_MS),
            100,
            3_600_000,
        )?;
        let report_interval_ms = in_range(
            "config.reportIntervalMs",
            c.u64("reportIntervalMs")?.unwrap_or(health_interval_ms),
            100,
            3_600_000,
        )?;
        let mut policies = PolicySet::default();
        let overrides = c
            .map("policies")?
            .into_iter()
            .map(|(name, o)| policy_override(o).map(|ov| (name, ov)))
            .collect::<Result<Vec<_>, String>>()?;
        policies
            .apply_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v)))
            .map_err(|e| format!("config.policies: {e}"))?;
        let breaker = match c.obj("breaker")? {
            Some(o) => breaker_config(o, BreakerConfig::DEFAULT).map_err(|e| format!("config.breaker: {e}"))?,
            None => BreakerConfig::DEFAULT,
        };
        let mut breakers = VecMap::new();
        for (name, o) in c.map("breakers")? {
            // Nodes' breakers start from their own defaults (one failure opens them).
            let base =
                if name == bridge_core::nodes::NODE_BREAKER_NAME { bridge_core::nodes::NODE_BREAKER } else { breaker };
            let cfg = breaker_config(o, base).map_err(|e| format!("config.breakers.{name}: {e}"))?;
            breakers.insert(name, cfg);
        }
        let retry_budget = match c.obj("retryBudget")? {
            Some(o) => budget_config(o).map_err(|e| format!("config.retryBudget: {e}"))?,
            None => BudgetConfig::DEFAULT,
        };
        let llm_endpoint = c.string("llmEndpoint")?;
        let llm_model = c.string("llmModel")?;
        let outbox_limit = in_range(
            "config.outboxLimit",
            u64::from(c.u32("outboxLimit")?.unwrap_or(DEFAULT_OUTBOX_LIMIT)),
            1,
            100_000,
        )? as u32;
        let sockets = c.strings("sockets")?.unwrap_or_else(|| vec!["evolution".into(), "agents".into()]);
        if let Some(bad) = sockets.iter().find(|s| *s != "evolution" && *s != "agents") {
            return Err(format!("config.sockets: \"{bad}\" is not a socket; use \"evolution\" and/or \"agents\""));
        }
        let agent = match c.obj("agent")? {
            Some(mut a) => {
                let name = a.string("name")?.ok_or("config.agent.name: is required")?;
                bridge_core::protocol::rules::check_agent(&name).map_err(|m| format!("config.agent.name: {m}"))?;
                let capabilities = a.strings("capabilities")?.unwrap_or_default();
                a.finish()?;
                Some(AgentConfig { name, capabilities })
            }
            None => None,
        };
        let report = c.bool("report")?.unwrap_or(true);
        let persist = match c.switch("persistOutbox")? {
            None => Some(PersistConfig::default()),
            Some(None) => None,
            Some(Some(o)) => Some(persist_config(o)?),
        };
        let share = c.bool("shareConnection")?.unwrap_or(true);
        c.finish()?;
        Ok(Config {
            backend_urls,
            bridge_id,
            token,
            health_interval_ms,
            report_interval_ms,
            policies,
            breaker,
            breakers,
            retry_budget,
            llm_endpoint,
            llm_model,
            outbox_limit,
            evolution: sockets.iter().any(|s| s == "evolution"),
            agents: sockets.iter().any(|s| s == "agents"),
            agent,
            report,
            persist,
            share,
        })
    }
}

impl Config {
    /// The group of tabs that may share one connection: same bridge id, nodes, agent and
    /// token. A hash, so that lock and channel names stay short and show no token.
    pub(crate) fn share_group(&self) -> Option<String> {
        if !self.share {
            return None;
        }
        let mut key = format!("{}|{}", self.bridge_id, self.backend_urls.join(","));
        key.push('|');
        key.push_str(self.agent.as_ref().map_or("", |a| a.name.as_str()));
        key.push('|');
        key.push_str(self.token.as_deref().unwrap_or(""));
        // FNV-1a, 64 bits.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Some(format!("{}-{hash:016x}", self.bridge_id))
    }
}

/// Most nodes a page may list.
const MAX_NODES: usize = 16;

/// `backendUrl`'s URLs, checked, without trailing slashes or repeats.
fn backend_urls(urls: Vec<String>) -> Result<Vec<String>, String> {
    if urls.is_empty() || urls.len() > MAX_NODES {
        return Err(format!("config.backendUrl: give 1 to {MAX_NODES} URLs, got {}", urls.len()));
    }
    let mut out: Vec<String> = Vec::with_capacity(urls.len());
    for url in urls {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("config.backendUrl: must start with http:// or https://, got \"{url}\""));
        }
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Ok(out)
}
