//! One breaker per named backend or tool, never one shared by everything.
//!
//! Names come from page scripts (tool names, origins), so the registry is
//! bounded: when full, the least recently used *closed* breaker is forgotten
//! (it holds nothing worth keeping); if none is closed, creation is refused.

use crate::vecmap::VecMap;

use super::circuit::{BreakerSnapshot, CircuitBreaker};
use super::config::{BreakerConfig, InvalidBreaker};
use crate::time::Millis;

/// Default number of breakers a registry keeps.
pub const DEFAULT_MAX_BREAKERS: usize = 128;

/// Every breaker refused a new name: all are open or in trial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many circuit breakers ({max}); none is closed and idle enough to forget")]
pub struct RegistryFull {
    /// The registry's capacity.
    pub max: usize,
}

/// Named circuit breakers with shared defaults and per-name settings.
#[derive(Debug, Clone)]
pub struct BreakerRegistry {
    defaults: BreakerConfig,
    overrides: VecMap<String, BreakerConfig>,
    breakers: VecMap<String, CircuitBreaker>,
    max: usize,
}

impl Default for BreakerRegistry {
    fn default() -> Self {
        Self::new(BreakerConfig::DEFAULT)
    }
}

impl BreakerRegistry {
    /// An empty registry whose breakers use `defaults`.
    pub fn new(defaults: BreakerConfig) -> Self {
        Self { defaults, overrides: VecMap::new(), breakers: VecMap::new(), max: DEFAULT_MAX_BREAKERS }
    }

    /// Sets the capacity (at least 1).
    pub fn with_capacity(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    /// Settings for breakers named `name` created from now on (existing ones are
    /// rebuilt with them, losing their state).
    pub fn configure(&mut self, name: &str, config: BreakerConfig, now: Millis) -> Result<(), InvalidBreaker> {
        config.validate()?;
        self.overrides.insert(name.to_owned(), config);
        if self.breakers.contains_key(name) {
            self.breakers.insert(name.to_owned(), CircuitBreaker::new(name, config, now));
        }
        Ok(())
    }

    /// The settings a breaker named `name` gets.
    pub fn config_for(&self, name: &str) -> BreakerConfig {
        self.configured(name).unwrap_or(self.defaults)
    }

    /// The settings given for `name` itself, if any.
    pub fn configured(&self, name: &str) -> Option<BreakerConfig> {
        self.overrides.get(name).copied()
    }

    /// Settings for the breakers created from now on that have none of their own.
    pub fn set_defaults(&mut self, config: BreakerConfig) -> Result<(), InvalidBreaker> {
        config.validate()?;
        self.defaults = config;
        Ok(())
    }

    /// The breaker named `name`, if it exists.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut CircuitBreaker> {
        self.breakers.get_mut(name)
    }

    /// The breaker named `name`, created (closed) at `now` if needed.
    pub fn get_or_create(&mut self, name: &str, now: Millis) -> Result<&mut CircuitBreaker, RegistryFull> {
        if !self.breakers.contains_key(name) {
            if self.breakers.len() >= self.max {
                self.forget_idlest_closed(now)?;
            }
            let config = self.config_for(name);
            self.breakers.insert(name.to_owned(), CircuitBreaker::new(name, config, now));
        }
        Ok(self.breakers.get_mut(name).expect("inserted above"))
    }

    fn forget_idlest_closed(&mut self, now: Millis) -> Result<(), RegistryFull> {
        let victim = self
            .breakers
            .iter_mut()
            .filter_map(|(name, b)| {
                (b.state(now) == super::BreakerState::Closed).then(|| (b.last_activity(), name.clone()))
            })
            .min();
        match victim {
            Some((_, name)) => {
                self.breakers.remove(&name);
                Ok(())
            }
            None => Err(RegistryFull { max: self.max }),
        }
    }

    /// Names of the breakers, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.breakers.keys().map(String::as_str)
    }

    /// How many breakers exist.
    pub fn len(&self) -> usize {
        self.breakers.len()
    }

    /// True when no breaker exists yet.
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }

    /// Sum of every breaker's transition count: changes whenever any breaker moves.
    pub fn transition_count(&self) -> u64 {
        self.breakers.values().map(CircuitBreaker::transition_count).sum()
    }

    /// Snapshots of every breaker, in name order.
    pub fn snapshots(&mut self, now: Millis, max_transitions: usize) -> Vec<BreakerSnapshot> {
        self.breakers.values_mut().map(|b| b.snapshot(now, max_transitions)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use std::time::Duration;

    #[test]
    fn one_breaker_per_name() {
        let mut r = BreakerRegistry::default();
        let now = Millis(0);
        for _ in 0..5 {
            let b = r.get_or_create("llm", now).unwrap();
            let p = b.try_acquire(now).unwrap();
            b.on_failure(p, now);
        }
        assert_eq!(r.get_or_create("llm", now).unwrap().state(now), BreakerState::Open);
        assert_eq!(r.get_or_create("fetch", now).unwrap().state(now), BreakerState::Closed, "independent");
        assert_eq!(r.names().collect::<Vec<_>>(), ["fetch", "llm"]);
    }

    #[test]
    fn per_name_settings() {
        let mut r = BreakerRegistry::default();
        let fast = BreakerConfig { reset_timeout: Duration::from_millis(50), ..BreakerConfig::DEFAULT };
        r.configure("fast", fast, Millis(0)).unwrap();
        assert_eq!(r.get_or_create("fast", Millis(0)).unwrap().config().reset_timeout, Duration::from_millis(50));
        assert_eq!(r.config_for("other"), BreakerConfig::DEFAULT);
        assert!(r.configure("bad", BreakerConfig { failure_threshold: 0, ..fast }, Millis(0)).is_err());
    }

    #[test]
    fn bounded_forgets_idle_closed_breakers_only() {
        let mut r = BreakerRegistry::default().with_capacity(2);
        r.get_or_create("a", Millis(1)).unwrap();
        r.get_or_create("b", Millis(2)).unwrap().isolate(Millis(2));
        r.get_or_create("c", Millis(3)).unwrap();
        assert_eq!(r.names().collect::<Vec<_>>(), ["b", "c"], "a was the idlest closed one");
        r.get_or_create("c", Millis(4)).unwrap().isolate(Millis(4));
        assert_eq!(r.get_or_create("d", Millis(5)).unwrap_err(), RegistryFull { max: 2 });
        assert_eq!(r.len(), 2);
    }
}
