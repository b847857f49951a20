//! Retry policies: how often, how long apart, and for how long in total.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::vecmap::VecMap;

use crate::backoff::{Backoff, InvalidBackoff, Jitter};
use crate::random::RandomSource;
use crate::text;
use crate::time::serde_ms;

/// Retries after the first attempt, for any operation without a policy of its own.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Delay before the first retry; doubles on each further retry.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(100);
/// No single delay is ever longer than this (30 s), jitter and `Retry-After` included.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Whole-operation deadline, retries and delays included (60 s): a caller is
/// never left waiting longer than this for an answer or an error.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Timeout of a single attempt (10 s); a hung request counts as a transient failure.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most named policies a [`PolicySet`] accepts: names may come from page scripts.
pub const MAX_NAMED_POLICIES: usize = 256;

/// How one operation is retried. Build with [`RetryPolicy::builder`] (validated)
/// or take [`RetryPolicy::default`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    max_retries: u32,
    #[serde(rename = "baseDelayMs", with = "serde_ms")]
    base_delay: Duration,
    #[serde(rename = "maxDelayMs", with = "serde_ms")]
    max_delay: Duration,
    jitter: Jitter,
    #[serde(rename = "deadlineMs", with = "serde_opt_ms")]
    deadline: Option<Duration>,
    #[serde(rename = "attemptTimeoutMs", with = "serde_opt_ms")]
    attempt_timeout: Option<Duration>,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidPolicy {
    /// The backoff settings are inconsistent.
    Backoff(InvalidBackoff),
    /// A zero deadline or attempt timeout could never succeed.
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// Too many named policies.
    TooMany,
    /// A named policy's override is invalid.
    Named {
        /// The policy's name.
        name: String,
        /// What was wrong with it.
        source: Box<InvalidPolicy>,
    },
}

impl InvalidPolicy {
    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            InvalidPolicy::Backoff(b) => b.message(),
            InvalidPolicy::Zero { field } => text!(field, " must be greater than zero"),
            InvalidPolicy::TooMany => text!("at most ", MAX_NAMED_POLICIES, " named policies are allowed"),
            InvalidPolicy::Named { name, source } => text!("policy \"", name, "\": ", source.message()),
        }
    }
}

impl From<InvalidBackoff> for InvalidPolicy {
    fn from(b: InvalidBackoff) -> Self {
        InvalidPolicy::Backoff(b)
    }
}

impl std::fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InvalidPolicy {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InvalidPolicy::Backoff(b) => b.source(),
            InvalidPolicy::Named { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl Default for RetryPolicy {
    /// 3 retries, 100 ms base, 30 s cap, ±20 % jitter, 60 s deadline, 10 s per attempt.
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RetryPolicy {
    /// The documented default (see the `DEFAULT_*` constants).
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: DEFAULT_MAX_RETRIES,
        base_delay: DEFAULT_BASE_DELAY,
        max_delay: DEFAULT_MAX_DELAY,
        jitter: Jitter::Proportional { ratio: Jitter::DEFAULT_RATIO },
        deadline: Some(DEFAULT_DEADLINE),
        attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
    };

    /// A builder starting from the default policy.
    pub const fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder { policy: Self::DEFAULT }
    }

    /// The default policy with `max_retries` retries starting at `base_delay`.
    /// Used for the built-in per-tool table; `base_delay` must not exceed the cap.
    const fn with_retries(max_retries: u32, base_delay: Duration) -> Self {
        RetryPolicy { max_retries, base_delay, ..Self::DEFAULT }
    }

    /// Retries after the first attempt.
    pub const fn max_retries(&self) -> u32 {
        self.max_retries
    }
    /// Delay before the first retry.
    pub const fn base_delay(&self) -> Duration {
        self.base_delay
    }
    /// Cap on any single delay.
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }
    /// How delays are randomised.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }
    /// Deadline for the whole operation, if any.
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    /// Timeout of each attempt, if any.
    pub const fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// The delays this policy would wait, drawing jitter from `rng`.
    pub fn backoff<R: RandomSource>(&self, rng: R) -> Backoff<R> {
        // A RetryPolicy is validated when built, so the checks need not run again.
        Backoff::new_unchecked(self.base_delay, self.max_delay, self.jitter, rng).with_max_retries(self.max_retries)
    }

    /// Checks every field; the builder and overrides call this.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        crate::backoff::validate(self.base_delay, self.max_delay, self.jitter)?;
        if self.deadline == Some(Duration::ZERO) {
            return Err(InvalidPolicy::Zero { field: "deadline" });
        }
        if self.attempt_timeout == Some(Duration::ZERO) {
            return Err(InvalidPolicy::Zero { field: "attempt_timeout" });
        }
        Ok(())
    }

    /// This policy with `ov`'s fields replacing its own, validated.
    pub fn overridden(&self, ov: &PolicyOverride) -> Result<RetryPolicy, InvalidPolicy> {
        let mut p = *self;
        if let Some(v) = ov.max_retries {
            p.max_retries = v;
        }
        if let Some(v) = ov.base_delay_ms {
            p.base_delay = Duration::from_millis(v);
        }
        if let Some(v) = ov.max_delay_ms {
            p.max_delay = Duration::from_millis(v);
        }
        if let Some(v) = ov.jitter {
            p.jitter = v;
        }
        if let Some(v) = ov.deadline_ms {
            p.deadline = (v > 0).then(|| Duration::from_millis(v));
        }
        if let Some(v) = ov.attempt_timeout_ms {
            p.attempt_timeout = (v > 0).then(|| Duration::from_millis(v));
        }
        p.validate()?;
        Ok(p)
    }
}

/// A validated way to build a [`RetryPolicy`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// Retries after the first attempt.
    pub const fn max_retries(mut self, v: u32) -> Self {
        self.policy.max_retries = v;
        self
    }
    /// Delay before the first retry.
    pub const fn base_delay(mut self, v: Duration) -> Self {
        self.policy.base_delay = v;
        self
    }
    /// Cap on any single delay.
    pub const fn max_delay(mut self, v: Duration) -> Self {
        self.policy.max_delay = v;
        self
    }
    /// How delays are randomised.
    pub const fn jitter(mut self, v: Jitter) -> Self {
        self.policy.jitter = v;
        self
    }
    /// Deadline for the whole operation (`None`: no deadline).
    pub const fn deadline(mut self, v: Option<Duration>) -> Self {
        self.policy.deadline = v;
        self
    }
    /// Timeout of each attempt (`None`: no per-attempt timeout).
    pub const fn attempt_timeout(mut self, v: Option<Duration>) -> Self {
        self.policy.attempt_timeout = v;
        self
    }
    /// The policy, or why it is invalid.
    pub fn build(self) -> Result<RetryPolicy, InvalidPolicy> {
        self.policy.validate()?;
        Ok(self.policy)
    }
}

/// Partial settings that replace a policy's fields; what config files and
/// page scripts provide. Accepts `camelCase` and `snake_case` names.
/// A `deadlineMs` or `attemptTimeoutMs` of 0 removes that limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyOverride {
    /// Retries after the first attempt.
    #[serde(default, alias = "max_retries")]
    pub max_retries: Option<u32>,
    /// Delay before the first retry, ms.
    #[serde(default, alias = "base_delay_ms")]
    pub base_delay_ms: Option<u64>,
    /// Cap on any single delay, ms.
    #[serde(default, alias = "max_delay_ms")]
    pub max_delay_ms: Option<u64>,
    /// Jitter mode.
    #[serde(default)]
    pub jitter: Option<Jitter>,
    /// Whole-operation deadline, ms (0: none).
    #[serde(default, alias = "deadline_ms")]
    pub deadline_ms: Option<u64>,
    /// Per-attempt timeout, ms (0: none).
    #[serde(default, alias = "attempt_timeout_ms")]
    pub attempt_timeout_ms: Option<u64>,
}

/// Names of the built-in per-tool policies.
pub mod names {
    /// Opening the evolution socket.
    pub const CONNECT_EVOLUTION_SOCKET: &str = "connectEvolutionSocket";
    /// Opening the agents socket.
    pub const CONNECT_AGENT_SOCKET: &str = "connectAgentSocket";
    /// A prompt sent to the LLM endpoint.
    pub const SEND_LLM_PROMPT: &str = "sendLLMPrompt";
    /// An agent-to-agent message.
    pub const SEND_A2A_MESSAGE: &str = "sendA2AMessage";
    /// A plain `fetch` through the bridge.
    pub const FETCH: &str = "fetch";
}

/// Per-tool policies: a default plus named policies. Unknown names get the default.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySet {
    default: RetryPolicy,
    named: VecMap<String, RetryPolicy>,
}

impl Default for PolicySet {
    /// The built-in table, reproducing the system this replaces:
    ///
    /// | name | retries | base delay |
    /// |---|---|---|
    /// | (default) | 3 | 100 ms |
    /// | `connectEvolutionSocket` | 5 | 200 ms |
    /// | `connectAgentSocket` | 5 | 200 ms |
    /// | `sendLLMPrompt` | 2 | 500 ms (attempt timeout 60 s, deadline 180 s: models are slow) |
    /// | `sendA2AMessage` | 4 | 150 ms |
    /// | `fetch` | 3 | 100 ms |
    ///
    /// All share the 30 s cap and ±20 % jitter.
    fn default() -> Self {
        let llm = RetryPolicy {
            attempt_timeout: Some(Duration::from_secs(60)),
            deadline: Some(Duration::from_secs(180)),
            ..RetryPolicy::with_retries(2, Duration::from_millis(500))
        };
        let named = [
            (names::CONNECT_EVOLUTION_SOCKET, RetryPolicy::with_retries(5, Duration::from_millis(200))),
            (names::CONNECT_AGENT_SOCKET, RetryPolicy::with_retries(5, Duration::from_millis(200))),
            (names::SEND_LLM_PROMPT, llm),
            (names::SEND_A2A_MESSAGE, RetryPolicy::with_retries(4, Duration::from_millis(150))),
            (names::FETCH, RetryPolicy::with_retries(3, Duration::from_millis(100))),
        ];
        Self { default: RetryPolicy::DEFAULT, named: named.into_iter().map(|(n, p)| (n.to_owned(), p)).collect() }
    }
}

impl PolicySet {
    /// The policy for `name`, or the default policy when `name` has none.
    pub fn get(&self, name: &str) -> &RetryPolicy {
        self.named.get(name).unwrap_or(&self.default)
    }

    /// The policy used for names without one of their own.
    pub fn default_policy(&self) -> &RetryPolicy {
        &self.default
    }

    /// Named policies, in name order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &RetryPolicy)> {
        self.named.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Applies overrides by name; `"default"` overrides the default policy.
    /// A name without a policy starts from the default. All or nothing: on
    /// error the set is unchanged.
    pub fn apply_overrides<'a>(
        &mut self,
        overrides: impl IntoIterator<Item = (&'a str, &'a PolicyOverride)>,
    ) -> Result<(), InvalidPolicy> {
        let mut next = self.clone();
        for (name, ov) in overrides {
            let named = |e| InvalidPolicy::Named { name: name.to_owned(), source: Box::new(e) };
            if name == "default" {
                next.default = next.default.overridden(ov).map_err(named)?;
            } else {
                let base = *next.get(name);
                let policy = base.overridden(ov).map_err(named)?;
                next.named.insert(name.to_owned(), policy);
            }
        }
        if next.named.len() > MAX_NAMED_POLICIES {
            return Err(InvalidPolicy::TooMany);
        }
        *self = next;
        Ok(())
    }
}

crate::json_object!(RetryPolicy, |s|
    "maxRetries": s.max_retries,
    "baseDelayMs": s.base_delay,
    "maxDelayMs": s.max_delay,
    "jitter": s.jitter,
    "deadlineMs": s.deadline,
    "attemptTimeoutMs": s.attempt_timeout,
);

crate::json_object!(PolicySet, |s| "default": s.default, "named": s.named);

/// Serde for `Option<Duration>` as milliseconds, `null` for none.
mod serde_opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&crate::time::duration_ms(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn default_policy_values() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries(), 3);
        assert_eq!(p.base_delay(), ms(100));
        assert_eq!(p.max_delay(), Duration::from_secs(30));
        assert_eq!(p.jitter(), Jitter::Proportional { ratio: 0.2 });
        assert_eq!(p.deadline(), Some(Duration::from_secs(60)));
        assert_eq!(p.attempt_timeout(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn per_tool_defaults() {
        let set = PolicySet::default();
        let expect = [
            ("connectEvolutionSocket", 5, 200),
            ("connectAgentSocket", 5, 200),
            ("sendLLMPrompt", 2, 500),
            ("sendA2AMessage", 4, 150),
            ("fetch", 3, 100),
            ("someUnknownTool", 3, 100),
        ];
        for (name, retries, base) in expect {
            let p = set.get(name);
            assert_eq!((p.max_retries(), p.base_delay()), (retries, ms(base)), "{name}");
            assert_eq!(p.max_delay(), Duration::from_secs(30), "{name}");
        }
        assert_eq!(set.get("sendLLMPrompt").attempt_timeout(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn overrides_by_name_and_default() {
        let mut set = PolicySet::default();
        let fetch = PolicyOverride { max_retries: Some(7), ..Default::default() };
        let fresh = PolicyOverride { base_delay_ms: Some(5), deadline_ms: Some(0), ..Default::default() };
        let default = PolicyOverride { max_retries: Some(1), ..Default::default() };
        set.apply_overrides([("fetch", &fetch), ("myTool", &fresh), ("default", &default)]).unwrap();
        assert_eq!(set.get("fetch").max_retries(), 7);
        assert_eq!(set.get("fetch").base_delay(), ms(100), "untouched fields keep the tool's value");
        assert_eq!(set.get("myTool").base_delay(), ms(5));
        assert_eq!(set.get("myTool").deadline(), None);
        assert_eq!(set.get("unknown").max_retries(), 1);
    }

    #[test]
    fn invalid_override_names_the_policy_and_changes_nothing() {
        let mut set = PolicySet::default();
        let bad = PolicyOverride { base_delay_ms: Some(60_000), ..Default::default() };
        let err = set.apply_overrides([("fetch", &bad)]).unwrap_err();
        assert_eq!(err.to_string(), "policy \"fetch\": base delay (60000 ms) is larger than the max delay (30000 ms)");
        assert_eq!(set, PolicySet::default());
    }

    #[test]
    fn override_accepts_both_casings_and_rejects_unknown_fields() {
        let a: PolicyOverride = serde_json::from_str(r#"{"maxRetries":2,"base_delay_ms":50}"#).unwrap();
        assert_eq!((a.max_retries, a.base_delay_ms), (Some(2), Some(50)));
        assert!(serde_json::from_str::<PolicyOverride>(r#"{"retries":2}"#).is_err());
    }

    #[test]
    fn too_many_named_policies() {
        let ov = PolicyOverride::default();
        let names: Vec<String> = (0..MAX_NAMED_POLICIES).map(|i| format!("t{i}")).collect();
        let mut set = PolicySet::default();
        assert_eq!(set.apply_overrides(names.iter().map(|n| (n.as_str(), &ov))), Err(InvalidPolicy::TooMany));
    }

    #[test]
    fn builder_validates() {
        assert!(RetryPolicy::builder().deadline(Some(Duration::ZERO)).build().is_err());
        assert!(RetryPolicy::builder().attempt_timeout(Some(Duration::ZERO)).build().is_err());
        assert!(RetryPolicy::builder().base_delay(ms(10)).max_delay(ms(5)).build().is_err());
        let p = RetryPolicy::builder().max_retries(0).deadline(None).build().unwrap();
        assert_eq!(p.backoff(crate::random::FixedRandom(0.5)).count(), 0);
    }

    #[test]
    fn serializes_in_milliseconds() {
        let v = serde_json::to_value(RetryPolicy::default()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"maxRetries":3,"baseDelayMs":100,"maxDelayMs":30000,
                "jitter":{"mode":"proportional","ratio":0.2},"deadlineMs":60000,"attemptTimeoutMs":10000})
        );
    }
}
