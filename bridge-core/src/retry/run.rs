//! The retry loop as a state machine: the caller performs attempts and
//! sleeps, [`RetryRun`] decides what happens next. No I/O, no clock.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::random::RandomSource;
use crate::retry::{FailureClass, RetryPolicy};
use crate::time::Millis;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait `delay`, then try again.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// True when the server's `Retry-After` chose the delay.
        server_asked: bool,
    },
    /// Stop; the operation has failed.
    Stop(StopReason),
}

/// Why retrying stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The failure is permanent.
    Permanent,
    /// No retries left.
    Exhausted,
    /// Retrying would end after the deadline.
    DeadlineExceeded,
    /// The retry budget said no.
    BudgetExhausted,
}

/// One operation's progress through its [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct RetryRun<R> {
    policy: RetryPolicy,
    backoff: Backoff<R>,
    started: Millis,
    attempts: u32,
    total_delay: Duration,
}

impl<R: RandomSource> RetryRun<R> {
    /// Starts an operation at `now`, drawing jitter from `rng`.
    pub fn start(policy: &RetryPolicy, now: Millis, rng: R) -> Self {
        Self { policy: *policy, backoff: policy.backoff(rng), started: now, attempts: 0, total_delay: Duration::ZERO }
    }

    /// Attempts begun so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Retries begun so far (attempts after the first).
    pub fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }

    /// Sum of the delays decided so far.
    pub fn total_delay(&self) -> Duration {
        self.total_delay
    }

    /// When the operation started.
    pub fn started(&self) -> Millis {
        self.started
    }

    /// The instant the deadline passes, if the policy has one.
    pub fn deadline_at(&self) -> Option<Millis> {
        self.policy.deadline().map(|d| self.started + d)
    }

    /// Begins an attempt at `now`: returns the timeout to give it (the
    /// policy's attempt timeout, shortened to what is left of the deadline),
    /// or `Err` when the deadline has already passed.
    pub fn begin_attempt(&mut self, now: Millis) -> Result<Option<Duration>, StopReason> {
        let remaining = match self.deadline_at() {
            Some(at) if now >= at => return Err(StopReason::DeadlineExceeded),
            Some(at) => Some(at.saturating_since(now)),
            None => None,
        };
        self.attempts = self.attempts.saturating_add(1);
        Ok(match (self.policy.attempt_timeout(), remaining) {
            (Some(t), Some(r)) => Some(t.min(r)),
            (t, r) => t.or(r),
        })
    }

    /// Decides after a failed attempt at `now`. `retry_after` is the server's
    /// requested delay; it replaces the computed one, capped at the max delay.
    /// `budget_allows` is asked last, only when a retry would otherwise happen,
    /// so the budget is charged only for retries actually made.
    pub fn after_failure(
        &mut self,
        now: Millis,
        class: FailureClass,
        retry_after: Option<Duration>,
        budget_allows: impl FnOnce() -> bool,
    ) -> Decision {
        if class == FailureClass::Permanent {
            return Decision::Stop(StopReason::Permanent);
        }
        let Some(computed) = self.backoff.next() else {
            return Decision::Stop(StopReason::Exhausted);
        };
        let (delay, server_asked) = match retry_after {
            Some(asked) => (asked.min(self.policy.max_delay()), true),
            None => (computed, false),
        };
        if self.deadline_at().is_some_and(|at| now + delay >= at) {
            return Decision::Stop(StopReason::DeadlineExceeded);
        }
        if !budget_allows() {
            return Decision::Stop(StopReason::BudgetExhausted);
        }
        self.total_delay += delay;
        Decision::Retry { delay, server_asked }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use crate::random::FixedRandom;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn policy(retries: u32, deadline: Option<u64>) -> RetryPolicy {
        RetryPolicy::builder()
            .max_retries(retries)
            .base_delay(ms(100))
            .jitter(Jitter::None)
            .deadline(deadline.map(ms))
            .attempt_timeout(Some(ms(1000)))
            .build()
            .unwrap()
    }

    #[test]
    fn retries_until_exhausted() {
        let mut run = RetryRun::start(&policy(2, None), Millis(0), FixedRandom(0.5));
        let mut now = Millis(0);
        let mut delays = vec![];
        loop {
            run.begin_attempt(now).unwrap();
            match run.after_failure(now, FailureClass::Transient, None, || true) {
                Decision::Retry { delay, .. } => {
                    delays.push(delay);
                    now = now + delay;
                }
                Decision::Stop(reason) => {
                    assert_eq!(reason, StopReason::Exhausted);
                    break;
                }
            }
        }
        assert_eq!(delays, [ms(100), ms(200)]);
        assert_eq!((run.attempts(), run.retries(), run.total_delay()), (3, 2, ms(300)));
    }

    #[test]
    fn permanent_failures_stop_at_once() {
        let mut run = RetryRun::start(&policy(5, None), Millis(0), FixedRandom(0.5));
        run.begin_attempt(Millis(0)).unwrap();
        let d = run.after_failure(Millis(1), FailureClass::Permanent, None, || panic!("budget not consulted"));
        assert_eq!(d, Decision::Stop(StopReason::Permanent));
    }

    #[test]
    fn retry_after_replaces_the_delay_but_is_capped() {
        let mut run = RetryRun::start(&policy(5, None), Millis(0), FixedRandom(0.5));
        run.begin_attempt(Millis(0)).unwrap();
        assert_eq!(
            run.after_failure(Millis(0), FailureClass::Transient, Some(ms(2500)), || true),
            Decision::Retry { delay: ms(2500), server_asked: true }
        );
        assert_eq!(
            run.after_failure(Millis(0), FailureClass::Transient, Some(Duration::from_secs(3600)), || true),
            Decision::Retry { delay: Duration::from_secs(30), server_asked: true }
        );
    }

    #[test]
    fn deadline_shortens_attempts_and_stops_retries() {
        let mut run = RetryRun::start(&policy(5, Some(1500)), Millis(1000), FixedRandom(0.5));
        assert_eq!(run.begin_attempt(Millis(1000)), Ok(Some(ms(1000))));
        assert_eq!(run.begin_attempt(Millis(2000)), Ok(Some(ms(500))), "only 500 ms left");
        assert_eq!(
            run.after_failure(Millis(2450), FailureClass::Transient, None, || true),
            Decision::Stop(StopReason::DeadlineExceeded),
            "a 100 ms wait would end past the deadline"
        );
        assert_eq!(run.begin_attempt(Millis(2500)), Err(StopReason::DeadlineExceeded));
    }

    #[test]
    fn budget_is_asked_last() {
        let mut run = RetryRun::start(&policy(1, None), Millis(0), FixedRandom(0.5));
        run.begin_attempt(Millis(0)).unwrap();
        assert_eq!(
            run.after_failure(Millis(0), FailureClass::Transient, None, || false),
            Decision::Stop(StopReason::BudgetExhausted)
        );
        let mut run = RetryRun::start(&policy(0, None), Millis(0), FixedRandom(0.5));
        run.begin_attempt(Millis(0)).unwrap();
        let d = run.after_failure(Millis(0), FailureClass::Transient, None, || panic!("no retry left to pay for"));
        assert_eq!(d, Decision::Stop(StopReason::Exhausted));
    }
}
