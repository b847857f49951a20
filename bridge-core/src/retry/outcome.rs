//! What became of an operation: one outcome a caller can switch on.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::text;
use crate::time::duration_ms;

/// How an operation ended. Each has a stable `code` for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// It worked (perhaps after retries).
    Succeeded,
    /// Every allowed retry failed transiently.
    RetriesExhausted,
    /// The whole-operation deadline passed.
    DeadlineExceeded,
    /// The caller cancelled it.
    Cancelled,
    /// The circuit breaker refused the call without trying.
    CircuitOpen,
    /// A failure that retrying cannot fix; not retried.
    Permanent,
    /// The retry budget was spent: too many retries lately across all calls.
    BudgetExhausted,
}

impl Outcome {
    /// Every outcome, for metrics tables.
    pub const ALL: [Outcome; 7] = [
        Outcome::Succeeded,
        Outcome::RetriesExhausted,
        Outcome::DeadlineExceeded,
        Outcome::Cancelled,
        Outcome::CircuitOpen,
        Outcome::Permanent,
        Outcome::BudgetExhausted,
    ];

    /// The stable code (`succeeded`, `retries_exhausted`, `deadline_exceeded`,
    /// `cancelled`, `circuit_open`, `permanent`, `retry_budget_exhausted`).
    pub const fn code(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RetriesExhausted => "retries_exhausted",
            Outcome::DeadlineExceeded => "deadline_exceeded",
            Outcome::Cancelled => "cancelled",
            Outcome::CircuitOpen => "circuit_open",
            Outcome::Permanent => "permanent",
            Outcome::BudgetExhausted => "retry_budget_exhausted",
        }
    }
}

/// Why a retried operation failed, carrying the last attempt's error `E`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// Every allowed retry failed transiently.
    Exhausted {
        /// Attempts made, the first included.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    /// The deadline passed (during an attempt, or a retry would have ended after it).
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error, if one finished.
        last: Option<E>,
    },
    /// The caller cancelled.
    Cancelled {
        /// Attempts started.
        attempts: u32,
    },
    /// The breaker refused the call.
    CircuitOpen {
        /// The breaker's name.
        breaker: String,
        /// When it will let a trial call through, if known.
        retry_in: Option<Duration>,
        /// Attempts made before the refusal.
        attempts: u32,
    },
    /// A permanent failure; not retried.
    Permanent {
        /// Attempts made.
        attempts: u32,
        /// The error.
        error: E,
    },
    /// The retry budget refused a retry.
    BudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
}

impl<E> RetryError<E> {
    /// The outcome this error stands for.
    pub fn outcome(&self) -> Outcome {
        match self {
            RetryError::Exhausted { .. } => Outcome::RetriesExhausted,
            RetryError::DeadlineExceeded { .. } => Outcome::DeadlineExceeded,
            RetryError::Cancelled { .. } => Outcome::Cancelled,
            RetryError::CircuitOpen { .. } => Outcome::CircuitOpen,
            RetryError::Permanent { .. } => Outcome::Permanent,
            RetryError::BudgetExhausted { .. } => Outcome::BudgetExhausted,
        }
    }

    /// The stable code of [`RetryError::outcome`].
    pub fn code(&self) -> &'static str {
        self.outcome().code()
    }

    /// Attempts made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            RetryError::Exhausted { attempts, .. }
            | RetryError::DeadlineExceeded { attempts, .. }
            | RetryError::Cancelled { attempts }
            | RetryError::CircuitOpen { attempts, .. }
            | RetryError::Permanent { attempts, .. }
            | RetryError::BudgetExhausted { attempts, .. } => *attempts,
        }
    }

    /// The last attempt's error, when there was one.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            RetryError::Exhausted { last, .. } | RetryError::BudgetExhausted { last, .. } => Some(last),
            RetryError::Permanent { error, .. } => Some(error),
            RetryError::DeadlineExceeded { last, .. } => last.as_ref(),
            RetryError::Cancelled { .. } | RetryError::CircuitOpen { .. } => None,
        }
    }

    /// Converts the carried error.
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> RetryError<F> {
        match self {
            RetryError::Exhausted { attempts, last } => RetryError::Exhausted { attempts, last: f(last) },
            RetryError::DeadlineExceeded { attempts, last } => {
                RetryError::DeadlineExceeded { attempts, last: last.map(f) }
            }
            RetryError::Cancelled { attempts } => RetryError::Cancelled { attempts },
            RetryError::CircuitOpen { breaker, retry_in, attempts } => {
                RetryError::CircuitOpen { breaker, retry_in, attempts }
            }
            RetryError::Permanent { attempts, error } => RetryError::Permanent { attempts, error: f(error) },
            RetryError::BudgetExhausted { attempts, last } => RetryError::BudgetExhausted { attempts, last: f(last) },
        }
    }
}

impl<E> RetryError<E> {
    /// A sentence for a person, the last attempt's error told by `describe`.
    pub fn message(&self, describe: impl Fn(&E) -> String) -> String {
        match self {
            RetryError::Exhausted { attempts, last } => {
                text!("gave up after ", attempts, " attempts: ", describe(last))
            }
            RetryError::DeadlineExceeded { attempts, last: Some(last) } => {
                text!("deadline exceeded after ", attempts, " attempts: ", describe(last))
            }
            RetryError::DeadlineExceeded { attempts, last: None } => {
                text!("deadline exceeded after ", attempts, " attempts")
            }
            RetryError::Cancelled { .. } => "cancelled".into(),
            RetryError::CircuitOpen { breaker, retry_in: Some(d), .. } => {
                text!("circuit \"", breaker, "\" is open; retry in ", duration_ms(*d), " ms")
            }
            RetryError::CircuitOpen { breaker, retry_in: None, .. } => text!("circuit \"", breaker, "\" is open"),
            RetryError::Permanent { error, .. } => text!("failed permanently: ", describe(error)),
            RetryError::BudgetExhausted { attempts, last } => {
                text!("retry budget exhausted after ", attempts, " attempts: ", describe(last))
            }
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(|e| e.to_string()))
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: std::collections::BTreeSet<_> = Outcome::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(codes.len(), Outcome::ALL.len());
        assert_eq!(RetryError::<String>::Cancelled { attempts: 1 }.code(), "cancelled");
        assert_eq!(serde_json::to_string(&Outcome::BudgetExhausted).unwrap(), "\"budget_exhausted\"");
    }

    #[test]
    fn messages_name_the_cause() {
        let e = RetryError::Exhausted { attempts: 4, last: "HTTP 503" };
        assert_eq!(e.to_string(), "gave up after 4 attempts: HTTP 503");
        let e = RetryError::<&str>::CircuitOpen {
            breaker: "fetch".into(),
            retry_in: Some(Duration::from_secs(3)),
            attempts: 0,
        };
        assert_eq!(e.to_string(), "circuit \"fetch\" is open; retry in 3000 ms");
        assert_eq!(e.map_err(|s| s.len()).attempts(), 0);
    }
}
