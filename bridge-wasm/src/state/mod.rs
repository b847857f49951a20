//! The bridge's state and every decision on it, for the JS driver (`js/`) to
//! act on: policies, breakers, retry budgets and metrics, the attempts of each
//! operation, health, the backend nodes, and the two sockets' sessions. The
//! driver does the I/O (sockets, fetch, timers, storage, other tabs) and asks
//! here what to do. Values cross as numbers and strings, or as JSON text for
//! the engine's `JSON.parse`; a failure crosses as the few values of
//! [`failure`].
//!
//! - [`settings`]: policies, breakers and the budget from the page's config.
//! - [`operations`]: one operation's attempts under its tool, and `call()`'s fast path.
//! - [`sessions`]: the evolution and agents sockets' sessions.
//! - [`checks`]: health checks and the backend nodes.
//! - [`report`]: the state report.

use bridge_core::breaker::BreakerRegistry;
use bridge_core::health::HealthModel;
use bridge_core::metrics::RetryMetrics;
use bridge_core::nodes::Nodes;
use bridge_core::random::SeededRandom;
use bridge_core::retry::{BudgetConfig, PolicySet, RetryBudget};
use bridge_core::session::Session;
use bridge_core::vecmap::VecMap;

mod checks;
mod edge;
pub use edge::Value;
pub(crate) use edge::json;
mod failure;
mod inbound;
mod operations;
mod report;
mod sessions;
pub use sessions::{Out, OutKind};
mod settings;

/// Budgets kept by policy name; further names share the last one.
const MAX_BUDGETS: usize = 64;

/// See the module docs. One per `Bridge`.
#[derive(Debug)]
pub struct Core {
    policies: PolicySet,
    breakers: BreakerRegistry,
    budgets: VecMap<String, RetryBudget>,
    budget_config: BudgetConfig,
    metrics: RetryMetrics,
    runs: operations::Runs,
    /// The tools `call()` has seen, by the index its JS side caches.
    call_tools: Vec<String>,
    health: HealthModel,
    nodes: Nodes,
    /// Evolution, agents; `None` when the page did not ask for it.
    sessions: [Option<Session<Value>>; 2],
    /// The failure the driver described last (`failure`), for the call that follows.
    failure: bridge_core::retry::Failure,
    rng: SeededRandom,
}

impl Core {
    /// An empty state; `seed` (random, from the page) seeds every jitter.
    pub fn new(seed: f64) -> Core {
        Core {
            policies: PolicySet::default(),
            breakers: BreakerRegistry::default(),
            budgets: VecMap::new(),
            budget_config: BudgetConfig::DEFAULT,
            metrics: RetryMetrics::default(),
            runs: operations::Runs::default(),
            call_tools: Vec::new(),
            health: HealthModel::bridge_default(),
            nodes: Nodes::new(&[], bridge_core::nodes::NODE_BREAKER, bridge_core::time::Millis(0)),
            sessions: [None, None],
            failure: bridge_core::retry::Failure::Other { message: String::new(), retryable: false },
            rng: SeededRandom::new(seed.to_bits()),
        }
    }
}

impl Core {
    /// A fresh jitter source for one operation.
    fn jitter(&mut self) -> SeededRandom {
        SeededRandom::new(self.rng.next_u64())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
