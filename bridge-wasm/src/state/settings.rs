//! The page's settings, once the driver has read them from `new Bridge(config)`
//! (it checks their shape and names the field; the rules of each setting are
//! bridge-core's, and their errors come back from here as text).

use std::time::Duration;

use bridge_core::backoff::Jitter;
use bridge_core::breaker::FailureRateTrigger;
use bridge_core::nodes::{NODE_BREAKER, NODE_BREAKER_NAME, Nodes};
use bridge_core::retry::PolicyOverride;
use bridge_core::session::{Identity, Kind, Session};
use bridge_core::time::Millis;

use super::Core;

fn ms(v: Option<f64>) -> Option<u64> {
    v.map(|v| v as u64)
}

/// The jitter named `mode` (`none`, `full`, `decorrelated`, `proportional` with `ratio`).
fn jitter(mode: &str, ratio: Option<f64>) -> Jitter {
    match mode {
        "none" => Jitter::None,
        "full" => Jitter::Full,
        "decorrelated" => Jitter::Decorrelated,
        _ => Jitter::Proportional { ratio: ratio.unwrap_or(Jitter::DEFAULT_RATIO) },
    }
}

impl Core {
    /// Overrides policy `name` (`default`: the default policy); `undefined` keeps a field.
    /// Returns what is wrong, if anything.
    #[allow(clippy::too_many_arguments)]
    pub fn set_policy(
        &mut self,
        name: &str,
        max_retries: Option<u32>,
        base_delay_ms: Option<f64>,
        max_delay_ms: Option<f64>,
        jitter_mode: Option<String>,
        jitter_ratio: Option<f64>,
        deadline_ms: Option<f64>,
        attempt_timeout_ms: Option<f64>,
    ) -> Option<String> {
        let ov = PolicyOverride {
            max_retries,
            base_delay_ms: ms(base_delay_ms),
            max_delay_ms: ms(max_delay_ms),
            jitter: jitter_mode.map(|m| jitter(&m, jitter_ratio)),
            deadline_ms: ms(deadline_ms),
            attempt_timeout_ms: ms(attempt_timeout_ms),
        };
        self.policies.apply_overrides([(name, &ov)]).err().map(|e| e.message())
    }

    /// Whether a policy is configured under `name` (built in, or by the page).
    pub fn has_policy(&self, name: &str) -> bool {
        self.policies.named().any(|(n, _)| n == name)
    }

    /// Breaker settings for `name` (`undefined`: every breaker's defaults), over the
    /// defaults; `undefined` keeps a field. Returns what is wrong, if anything.
    #[allow(clippy::too_many_arguments)]
    pub fn set_breaker(
        &mut self,
        name: Option<String>,
        failure_threshold: Option<u32>,
        reset_timeout_ms: Option<f64>,
        half_open_max_calls: Option<u32>,
        success_threshold: Option<u32>,
        rate_window: Option<u32>,
        rate_min_calls: Option<u32>,
        rate_threshold: Option<f64>,
        rate: bool,
    ) -> Option<String> {
        // Nodes' breakers start from their own defaults (one failure opens them).
        let mut c = match name.as_deref() {
            Some(NODE_BREAKER_NAME) => NODE_BREAKER,
            Some(n) => self.breakers.config_for(n),
            None => self.breakers.config_for(""),
        };
        if let Some(v) = failure_threshold {
            c.failure_threshold = v;
        }
        if let Some(v) = reset_timeout_ms {
            c.reset_timeout = Duration::from_millis(v as u64);
        }
        if let Some(v) = half_open_max_calls {
            c.half_open_max_calls = v;
        }
        if let Some(v) = success_threshold {
            c.success_threshold = v;
        }
        if rate {
            c.failure_rate = Some(FailureRateTrigger {
                window: rate_window.unwrap_or(20),
                min_calls: rate_min_calls.unwrap_or(10),
                threshold: rate_threshold.unwrap_or(0.5),
            });
        }
        let set = match name {
            None => self.breakers.set_defaults(c),
            Some(n) => self.breakers.configure(&n, c, Millis(0)),
        };
        set.err().map(|e| e.message())
    }

    /// The retry budget's settings over its defaults; returns what is wrong, if anything.
    pub fn set_budget(
        &mut self,
        window_ms: Option<f64>,
        ratio: Option<f64>,
        min_retries: Option<u32>,
    ) -> Option<String> {
        let mut c = self.budget_config;
        if let Some(v) = window_ms {
            c.window = Duration::from_millis(v as u64);
        }
        if let Some(v) = ratio {
            c.ratio = v;
        }
        if let Some(v) = min_retries {
            c.min_retries = v;
        }
        if let Err(e) = c.validate() {
            return Some(e.message());
        }
        self.budget_config = c;
        None
    }

    /// The backend nodes, in the order to try them (after any `node` breaker settings).
    pub fn set_nodes(&mut self, urls: Vec<String>, now: f64) {
        let breaker = self.breakers.configured(NODE_BREAKER_NAME).unwrap_or(NODE_BREAKER);
        self.nodes = Nodes::new(&urls, breaker, Millis(now as u64));
    }

    /// Keeps socket `kind` (0: evolution, 1: agents) as `client`, with request ids
    /// prefixed by `instance`, and at most `outbox_limit` requests waiting.
    pub fn add_socket(
        &mut self,
        kind: usize,
        client: String,
        token: Option<String>,
        instance: String,
        outbox_limit: u32,
    ) {
        let k = if kind == 0 { Kind::Evolution } else { Kind::Agents };
        self.sessions[kind.min(1)] = Some(Session::new(k, Identity { client, token, instance }, outbox_limit));
    }
}

impl Core {
    /// What is wrong with `value` under the protocol's rule `rule` (`agent`, `topic`, `pattern`,
    /// or `label:<what>`), if anything.
    pub fn check(&self, rule: &str, value: &str) -> Option<String> {
        use bridge_core::protocol::rules;
        match rule {
            "agent" => rules::check_agent(value),
            "topic" => rules::check_topic(value),
            "pattern" => rules::check_pattern(value),
            _ => rules::check_label(rule.strip_prefix("label:").unwrap_or(rule), value),
        }
        .err()
    }
}
