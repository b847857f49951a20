//! One operation under its policy and [`Guard`] (breaker and budget), as a
//! state machine. The caller makes each attempt, races it against its timeout
//! and any cancellation, and sleeps; [`Operation`] decides everything else:
//! whether the breaker admits the attempt, what its timeout is, whether and
//! how long to wait after a failure, what the breaker and the budget are told,
//! and how the operation ended. The async [`retry`](super::driver::retry) and
//! the browser's JS driver both run on it, so these rules are written once.

use std::time::Duration;

use crate::random::RandomSource;
use crate::retry::driver::{AttemptError, AttemptInfo, Guard, RunSummary, Verdict};
use crate::retry::{Decision, FailureClass, Outcome, RetryError, RetryPolicy, RetryRun, StopReason};
use crate::time::Millis;

/// See the module docs. `E` is an attempt's error, `P` the guard's permit.
#[derive(Debug)]
pub struct Operation<R, E, P> {
    run: RetryRun<R>,
    started_us: u64,
    /// The admission of the attempt in flight.
    permit: Option<P>,
    /// The last failed attempt's error, while waiting to try again.
    last: Option<E>,
}

impl<R: RandomSource, E: AttemptError, P> Operation<R, E, P> {
    /// Starts at `now` (`now_us` in microseconds, for the latency), drawing jitter from `rng`.
    pub fn start(policy: &RetryPolicy, now: Millis, now_us: u64, rng: R) -> Self {
        Self { run: RetryRun::start(policy, now, rng), started_us: now_us, permit: None, last: None }
    }

    /// Continues after a first attempt made outside this machine, started at `started`
    /// and admitted with `permit` (a hot path tries once without it): it counts as
    /// attempt 1 and is charged to the budget. Hand its error to [`Operation::failed`]
    /// next, which tells the breaker as for any attempt.
    pub fn resume(
        policy: &RetryPolicy,
        started: Millis,
        started_us: u64,
        rng: R,
        permit: P,
        guard: &mut impl Guard<Permit = P>,
    ) -> Self {
        let mut op = Self::start(policy, started, started_us, rng);
        let _ = op.run.begin_attempt(started);
        guard.first_attempt(started);
        op.permit = Some(permit);
        op
    }

    /// Attempts begun so far.
    pub fn attempts(&self) -> u32 {
        self.run.attempts()
    }

    /// Begins the next attempt at `now`: its number and timeout when the deadline and the
    /// breaker allow it, else how the operation ended.
    pub fn begin(&mut self, now: Millis, guard: &mut impl Guard<Permit = P>) -> Result<AttemptInfo, RetryError<E>> {
        let timeout = match self.run.begin_attempt(now) {
            Ok(t) => t,
            Err(_) => {
                return Err(RetryError::DeadlineExceeded { attempts: self.run.attempts(), last: self.last.take() });
            }
        };
        if self.run.attempts() == 1 {
            guard.first_attempt(now);
        }
        match guard.admit(now) {
            Ok(permit) => {
                self.permit = Some(permit);
                Ok(AttemptInfo { number: self.run.attempts(), timeout })
            }
            Err(rejected) => Err(RetryError::CircuitOpen {
                breaker: guard.name().to_owned(),
                retry_in: rejected.retry_in(now),
                attempts: self.run.attempts() - 1,
            }),
        }
    }

    /// The attempt in flight succeeded at `now`.
    pub fn succeeded(&mut self, now: Millis, guard: &mut impl Guard<Permit = P>) {
        if let Some(p) = self.permit.take() {
            guard.record(p, Verdict::Success, now);
        }
    }

    /// The attempt failed at `now` with `error` (an attempt cut off by its timeout fails
    /// with [`AttemptError::timed_out`]): how long to wait before the next one, or how the
    /// operation ended. A permanent failure tells the breaker the dependency answered.
    pub fn failed(
        &mut self,
        now: Millis,
        guard: &mut impl Guard<Permit = P>,
        error: E,
    ) -> Result<Duration, RetryError<E>> {
        let class = error.class();
        if let Some(p) = self.permit.take() {
            guard.record(p, if class == FailureClass::Transient { Verdict::Failure } else { Verdict::Success }, now);
        }
        let attempts = self.run.attempts();
        match self.run.after_failure(now, class, error.retry_after(), || guard.allow_retry(now)) {
            Decision::Retry { delay, .. } => {
                self.last = Some(error);
                Ok(delay)
            }
            Decision::Stop(reason) => Err(match reason {
                StopReason::Permanent => RetryError::Permanent { attempts, error },
                StopReason::Exhausted => RetryError::Exhausted { attempts, last: error },
                StopReason::DeadlineExceeded => RetryError::DeadlineExceeded { attempts, last: Some(error) },
                StopReason::BudgetExhausted => RetryError::BudgetExhausted { attempts, last: error },
            }),
        }
    }

    /// The caller gave up at `now`, during an attempt (the breaker hears no verdict) or
    /// while waiting for the next.
    pub fn cancelled(&mut self, now: Millis, guard: &mut impl Guard<Permit = P>) -> RetryError<E> {
        if let Some(p) = self.permit.take() {
            guard.record(p, Verdict::Abandoned, now);
        }
        RetryError::Cancelled { attempts: self.run.attempts() }
    }

    /// The whole operation, for metrics, once it ended as `result` (at `now_us`).
    pub fn summary<T>(&self, result: Result<T, &RetryError<E>>, now_us: u64) -> RunSummary {
        RunSummary {
            attempts: result.as_ref().map_or_else(|e| e.attempts(), |_| self.run.attempts()),
            retries: self.run.retries(),
            total_delay: self.run.total_delay(),
            latency_us: now_us.saturating_sub(self.started_us),
            outcome: result.map_or_else(RetryError::outcome, |_| Outcome::Succeeded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use crate::breaker::{BreakerConfig, CircuitBreaker};
    use crate::random::FixedRandom;
    use crate::retry::Failure;
    use crate::retry::driver::BreakerGuard;

    fn policy() -> RetryPolicy {
        RetryPolicy::builder()
            .max_retries(2)
            .base_delay(Duration::from_millis(100))
            .jitter(Jitter::None)
            .attempt_timeout(Some(Duration::from_millis(1000)))
            .deadline(Some(Duration::from_secs(10)))
            .build()
            .unwrap()
    }

    type Op = Operation<FixedRandom, Failure, crate::breaker::Permit>;

    #[test]
    fn a_caller_driven_run_retries_then_succeeds_and_tells_the_breaker() {
        let mut breaker = CircuitBreaker::new("b", BreakerConfig::default(), Millis(0));
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let mut op: Op = Operation::start(&policy(), Millis(0), 0, FixedRandom(0.5));
        let first = op.begin(Millis(0), &mut guard).unwrap();
        assert_eq!((first.number, first.timeout), (1, Some(Duration::from_millis(1000))));
        let wait = op.failed(Millis(5), &mut guard, Failure::http(503, None, 0)).unwrap();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(op.begin(Millis(105), &mut guard).unwrap().number, 2);
        op.succeeded(Millis(110), &mut guard);
        let s = op.summary(Ok::<(), _>(()), 110_000);
        assert_eq!((s.attempts, s.retries, s.latency_us, s.outcome), (2, 1, 110_000, Outcome::Succeeded));
        assert_eq!(
            (breaker.snapshot(Millis(110), 0).totals.failures, breaker.snapshot(Millis(110), 0).totals.successes),
            (1, 1)
        );
    }

    #[test]
    fn an_open_breaker_ends_it_before_any_attempt_and_a_cancel_is_no_verdict() {
        let mut breaker = CircuitBreaker::new("b", BreakerConfig::default(), Millis(0));
        breaker.isolate(Millis(0));
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let mut op: Op = Operation::start(&policy(), Millis(0), 0, FixedRandom(0.5));
        let e = op.begin(Millis(1), &mut guard).unwrap_err();
        assert!(matches!(e, RetryError::CircuitOpen { attempts: 0, .. }), "{e:?}");
        breaker.reset(Millis(2));
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let mut op: Op = Operation::start(&policy(), Millis(2), 0, FixedRandom(0.5));
        op.begin(Millis(2), &mut guard).unwrap();
        assert_eq!(op.cancelled(Millis(3), &mut guard), RetryError::Cancelled { attempts: 1 });
        let snap = breaker.snapshot(Millis(3), 0);
        assert_eq!((snap.totals.failures, snap.totals.successes), (0, 0), "an abandoned attempt is neither");
    }

    #[test]
    fn a_resumed_run_counts_the_first_try_and_a_permanent_failure_ends_it() {
        let mut breaker = CircuitBreaker::new("b", BreakerConfig::default(), Millis(0));
        let permit = breaker.try_acquire(Millis(0)).unwrap();
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let mut op: Op = Operation::resume(&policy(), Millis(0), 0, FixedRandom(0.5), permit, &mut guard);
        assert_eq!(op.attempts(), 1);
        let wait = op.failed(Millis(1), &mut guard, Failure::Timeout { after_ms: 0 }).unwrap();
        assert_eq!(op.begin(Millis(1) + wait, &mut guard).unwrap().number, 2);
        let e = op.failed(Millis(200), &mut guard, Failure::http(404, None, 0)).unwrap_err();
        assert!(matches!(e, RetryError::Permanent { attempts: 2, .. }), "{e:?}");
        assert_eq!(op.summary(Err::<(), _>(&e), 0).outcome, Outcome::Permanent);
        let totals = breaker.snapshot(Millis(200), 0).totals;
        assert_eq!(totals.successes, 1, "the 404 was an answer");
        assert_eq!(totals.failures, 1, "the first try's timeout, told once");
    }
}
