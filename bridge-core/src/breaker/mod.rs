//! Circuit breakers: stop calling a dependency that keeps failing, and find
//! out cheaply when it is back.
//!
//! - [`CircuitBreaker`]: the state machine for one dependency.
//! - [`BreakerRegistry`]: one breaker per name, bounded.
//! - [`BreakerConfig`]: settings with documented defaults.

mod circuit;
mod config;
mod registry;
mod window;

pub use circuit::{
    BreakerSnapshot, BreakerState, BreakerTotals, CircuitBreaker, Permit, Rejected, TRANSITION_HISTORY, TimeInStates,
    Transition, TransitionReason,
};
pub use config::{
    BreakerConfig, DEFAULT_FAILURE_THRESHOLD, DEFAULT_HALF_OPEN_MAX_CALLS, DEFAULT_RESET_TIMEOUT,
    DEFAULT_SUCCESS_THRESHOLD, FailureRateTrigger, InvalidBreaker, MAX_RATE_WINDOW,
};
pub use registry::{BreakerRegistry, DEFAULT_MAX_BREAKERS, RegistryFull};
