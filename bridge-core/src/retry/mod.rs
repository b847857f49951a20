//! Retrying: policies, failure classification, the retry budget, outcomes,
//! and the retry loop itself: as a pure state machine ([`RetryRun`]), with the
//! breaker and the budget ([`operation::Operation`]), and as an async driver.
//!
//! Why retry at all: most failures between a page and its local backend are
//! brief (a restart, a dropped socket). Why not retry blindly: retrying a 404
//! or a rejected token only repeats the error, and retrying everything during
//! an outage multiplies the load on a backend that is already struggling. So
//! [`Failure::class`] decides what is worth retrying, [`RetryPolicy`] how
//! often and how far apart, and [`RetryBudget`] how much retrying the whole
//! page may add.

mod budget;
pub mod driver;
mod failure;
pub mod operation;
mod outcome;
mod policy;
mod run;

pub use budget::{BudgetConfig, BudgetSnapshot, InvalidBudget, RetryBudget};
pub use failure::{Failure, FailureClass, is_transient_status, parse_http_date, parse_retry_after};
pub use outcome::{Outcome, RetryError};
pub use policy::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_DELAY, DEFAULT_DEADLINE, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES,
    InvalidPolicy, MAX_NAMED_POLICIES, PolicyOverride, PolicySet, RetryPolicy, RetryPolicyBuilder, names,
};
pub use run::{Decision, RetryRun, StopReason};
