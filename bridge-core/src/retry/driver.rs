//! The retry loop, written once for every platform.
//!
//! [`retry`] drives an async operation through a [`RetryPolicy`], a [`Guard`]
//! (breaker + budget) and a cancellation future. Time and sleeping come in
//! through the [`Clock`] and [`Sleeper`] traits, the platform seam: the
//! browser implements them with `performance.now()` and `setTimeout`, the
//! server with tokio, tests with a fake clock that jumps instead of waiting.
//!
//! A timed-out or cancelled attempt is *dropped*: operations must release
//! what they hold in `Drop` (an `AbortController` aborts, a socket closes).

use std::future::{Future, pending, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::breaker::{CircuitBreaker, Permit, Rejected};
use crate::random::RandomSource;
use crate::retry::operation::Operation;
use crate::retry::{Failure, FailureClass, Outcome, RetryBudget, RetryError, RetryPolicy};
use crate::time::{Millis, duration_ms};

/// Reads the platform's monotonic clock.
pub trait Clock {
    /// Now, in milliseconds.
    fn now(&self) -> Millis;
    /// Now, in microseconds, for latency histograms (defaults to [`Clock::now`] × 1000).
    fn now_micros(&self) -> u64 {
        self.now().0.saturating_mul(1000)
    }
}

/// Waits on the platform's timers.
pub trait Sleeper {
    /// A future that completes after `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// What an attempt's error must tell the retry loop.
pub trait AttemptError: Sized {
    /// Transient or permanent.
    fn class(&self) -> FailureClass;
    /// The delay the server asked for, if any.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// The error for an attempt cut off by its timeout.
    fn timed_out(after: Duration) -> Self;
}

impl AttemptError for Failure {
    fn class(&self) -> FailureClass {
        Failure::class(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        Failure::retry_after(self)
    }
    fn timed_out(after: Duration) -> Self {
        Failure::Timeout { after_ms: duration_ms(after) }
    }
}

/// How a single attempt ended, as the breaker should hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The dependency answered (including permanent, caller-side failures such as a 404).
    Success,
    /// The dependency failed (a transient failure).
    Failure,
    /// No verdict: the caller cancelled.
    Abandoned,
}

/// Admission control around each attempt: a circuit breaker and a retry budget.
pub trait Guard {
    /// Proof of admission, handed back with the verdict.
    type Permit;
    /// Name used in `circuit_open` errors.
    fn name(&self) -> &str;
    /// Asks to make an attempt.
    fn admit(&mut self, now: Millis) -> Result<Self::Permit, Rejected>;
    /// Reports how the admitted attempt ended.
    fn record(&mut self, permit: Self::Permit, verdict: Verdict, now: Millis);
    /// Called once per operation, before its first attempt (budget deposit).
    fn first_attempt(&mut self, _now: Millis) {}
    /// Asks to make one retry (budget withdrawal).
    fn allow_retry(&mut self, _now: Millis) -> bool {
        true
    }
}

/// A guard that admits everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unguarded;

impl Guard for Unguarded {
    type Permit = ();
    fn name(&self) -> &str {
        "unguarded"
    }
    fn admit(&mut self, _now: Millis) -> Result<(), Rejected> {
        Ok(())
    }
    fn record(&mut self, _permit: (), _verdict: Verdict, _now: Millis) {}
}

/// A guard over a breaker and a budget both owned by the caller.
#[derive(Debug)]
pub struct BreakerGuard<'a> {
    /// The breaker.
    pub breaker: &'a mut CircuitBreaker,
    /// The budget, if one applies.
    pub budget: Option<&'a mut RetryBudget>,
}

impl Guard for BreakerGuard<'_> {
    type Permit = Permit;
    fn name(&self) -> &str {
        self.breaker.name()
    }
    fn admit(&mut self, now: Millis) -> Result<Permit, Rejected> {
        self.breaker.try_acquire(now)
    }
    fn record(&mut self, permit: Permit, verdict: Verdict, now: Millis) {
        apply_verdict(self.breaker, permit, verdict, now);
    }
    fn first_attempt(&mut self, now: Millis) {
        if let Some(b) = self.budget.as_deref_mut() {
            b.deposit(now);
        }
    }
    fn allow_retry(&mut self, now: Millis) -> bool {
        self.budget.as_deref_mut().is_none_or(|b| b.try_withdraw(now))
    }
}

/// Feeds a [`Verdict`] to a breaker.
pub fn apply_verdict(breaker: &mut CircuitBreaker, permit: Permit, verdict: Verdict, now: Millis) {
    match verdict {
        Verdict::Success => breaker.on_success(permit, now),
        Verdict::Failure => breaker.on_failure(permit, now),
        Verdict::Abandoned => breaker.on_abandoned(permit, now),
    }
}

/// What one attempt is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptInfo {
    /// 1 for the first attempt.
    pub number: u32,
    /// The attempt's timeout (already enforced by the loop; pass it on to
    /// APIs that take one).
    pub timeout: Option<Duration>,
}

/// What happened over the whole operation, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Attempts made.
    pub attempts: u32,
    /// Retries made (attempts after the first).
    pub retries: u32,
    /// Time spent waiting between attempts.
    pub total_delay: Duration,
    /// Start to finish, in microseconds.
    pub latency_us: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// The loop's platform: a clock and timers.
#[derive(Debug)]
pub struct Env<'a, C, S> {
    /// The clock.
    pub clock: &'a C,
    /// The timers.
    pub sleeper: &'a S,
}

// Two references: copyable whatever C and S are (a derive would demand C: Copy).
impl<C, S> Clone for Env<'_, C, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, S> Copy for Env<'_, C, S> {}

/// Runs `op` under `policy` and `guard` until it succeeds, fails for good, or
/// `cancel` completes. Returns the result and a summary for metrics.
pub async fn retry<T, E, Op, Fut, C, S, G, R>(
    policy: &RetryPolicy,
    env: Env<'_, C, S>,
    guard: &mut G,
    rng: R,
    cancel: impl Future<Output = ()>,
    mut op: Op,
) -> (Result<T, RetryError<E>>, RunSummary)
where
    Op: FnMut(AttemptInfo) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: AttemptError,
    C: Clock,
    S: Sleeper,
    G: Guard,
    R: RandomSource,
{
    let Env { clock, sleeper } = env;
    let mut cancel = pin!(cancel);
    let mut operation = Operation::start(policy, clock.now(), clock.now_micros(), rng);
    let result = loop {
        let info = match operation.begin(clock.now(), guard) {
            Ok(info) => info,
            Err(e) => break Err(e),
        };
        let timer = async {
            match info.timeout {
                Some(t) => sleeper.sleep(t).await,
                None => pending().await,
            }
        };
        // A finished attempt wins over cancellation, which wins over the timeout.
        let error = match race(op(info), race(cancel.as_mut(), timer)).await {
            Either::Left(Ok(value)) => {
                operation.succeeded(clock.now(), guard);
                break Ok(value);
            }
            Either::Left(Err(e)) => e,
            Either::Right(Either::Left(())) => break Err(operation.cancelled(clock.now(), guard)),
            Either::Right(Either::Right(())) => E::timed_out(info.timeout.unwrap_or_default()),
        };
        match operation.failed(clock.now(), guard, error) {
            Ok(delay) => {
                if let Either::Right(()) = race(sleeper.sleep(delay), cancel.as_mut()).await {
                    break Err(operation.cancelled(clock.now(), guard));
                }
            }
            Err(e) => break Err(e),
        }
    };
    let summary = operation.summary(result.as_ref(), clock.now_micros());
    (result, summary)
}

/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// Polls both futures, `a` first; returns the first output. The other is dropped.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::future::ready;
    use std::task::{Context, Waker};

    use super::*;
    use crate::backoff::Jitter;
    use crate::breaker::{BreakerConfig, BreakerState};
    use crate::random::FixedRandom;

    /// A clock that jumps forward when asked to sleep: no wall-clock waiting.
    #[derive(Default)]
    struct FakeTime {
        now: Cell<u64>,
        sleeps: RefCell<Vec<u64>>,
    }

    impl Clock for FakeTime {
        fn now(&self) -> Millis {
            Millis(self.now.get())
        }
    }

    impl Sleeper for FakeTime {
        fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
            self.now.set(self.now.get() + duration_ms(d));
            self.sleeps.borrow_mut().push(duration_ms(d));
            ready(())
        }
    }

    /// Runs a future that never waits on anything but the fake clock.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the future waited on something other than the fake clock"),
        }
    }

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy::builder()
            .max_retries(retries)
            .jitter(Jitter::None)
            .attempt_timeout(Some(Duration::from_millis(1000)))
            .deadline(Some(Duration::from_secs(10)))
            .build()
            .unwrap()
    }

    fn http(status: u16) -> Failure {
        Failure::Http { status, retry_after_ms: None }
    }

    fn go<T: 'static>(
        policy: &RetryPolicy,
        time: &FakeTime,
        guard: &mut impl Guard,
        op: impl FnMut(AttemptInfo) -> std::pin::Pin<Box<dyn Future<Output = Result<T, Failure>>>>,
    ) -> (Result<T, RetryError<Failure>>, RunSummary) {
        let env = Env { clock: time, sleeper: time };
        block_on(retry(policy, env, guard, FixedRandom(0.5), pending(), op))
    }

    #[test]
    fn retries_a_503_then_succeeds() {
        let time = FakeTime::default();
        let calls = Cell::new(0);
        let (res, sum) = go(&policy(3), &time, &mut Unguarded, |info| {
            calls.set(calls.get() + 1);
            Box::pin(ready(if info.number < 3 { Err(http(503)) } else { Ok("ok") }))
        });
        assert_eq!(res, Ok("ok"));
        assert_eq!(*time.sleeps.borrow(), [100, 200]);
        assert_eq!(
            (sum.attempts, sum.retries, sum.total_delay, sum.outcome),
            (3, 2, Duration::from_millis(300), Outcome::Succeeded)
        );
        assert_eq!(sum.latency_us, 300_000);
    }

    #[test]
    fn does_not_retry_a_404() {
        let time = FakeTime::default();
        let (res, sum) = go(&policy(3), &time, &mut Unguarded, |_| Box::pin(ready(Err::<(), _>(http(404)))));
        assert_eq!(res, Err(RetryError::Permanent { attempts: 1, error: http(404) }));
        assert_eq!(sum.outcome, Outcome::Permanent);
    }

    #[test]
    fn exhausts_with_the_last_error() {
        let time = FakeTime::default();
        let (res, _) = go(&policy(2), &time, &mut Unguarded, |_| Box::pin(ready(Err::<(), _>(http(500)))));
        assert_eq!(res, Err(RetryError::Exhausted { attempts: 3, last: http(500) }));
    }

    #[test]
    fn honours_retry_after() {
        let time = FakeTime::default();
        let (res, _) = go(&policy(1), &time, &mut Unguarded, |info| {
            Box::pin(ready(if info.number == 1 {
                Err(Failure::Http { status: 429, retry_after_ms: Some(2000) })
            } else {
                Ok(())
            }))
        });
        assert_eq!(res, Ok(()));
        assert_eq!(*time.sleeps.borrow(), [2000]);
    }

    #[test]
    fn times_out_a_hanging_attempt() {
        let time = FakeTime::default();
        let (res, sum) = go(&policy(1), &time, &mut Unguarded, |_| Box::pin(pending::<Result<(), Failure>>()));
        assert_eq!(res, Err(RetryError::Exhausted { attempts: 2, last: Failure::Timeout { after_ms: 1000 } }));
        assert_eq!(sum.latency_us, (1000 + 100 + 1000) * 1000);
    }

    #[test]
    fn deadline_cuts_the_last_attempt_short() {
        let time = FakeTime::default();
        let p = RetryPolicy::builder()
            .max_retries(10)
            .jitter(Jitter::None)
            .attempt_timeout(Some(Duration::from_millis(1000)))
            .deadline(Some(Duration::from_millis(1500)))
            .build()
            .unwrap();
        let (res, _) = go(&p, &time, &mut Unguarded, |_| Box::pin(pending::<Result<(), Failure>>()));
        assert_eq!(*time.sleeps.borrow(), [1000, 100, 400], "the second attempt gets only the 400 ms left");
        assert_eq!(res.unwrap_err().outcome(), Outcome::DeadlineExceeded);
    }

    #[test]
    fn cancellation_wins_and_abandons_the_permit() {
        let time = FakeTime::default();
        let mut breaker = CircuitBreaker::new("t", BreakerConfig::DEFAULT, Millis(0));
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let env = Env { clock: &time, sleeper: &time };
        let (res, sum) = block_on(retry(&policy(3), env, &mut guard, FixedRandom(0.0), ready(()), |_| {
            pending::<Result<(), Failure>>()
        }));
        assert_eq!(res, Err(RetryError::Cancelled { attempts: 1 }));
        assert_eq!(sum.outcome, Outcome::Cancelled);
        assert_eq!(breaker.totals().failures + breaker.totals().successes, 0);
    }

    #[test]
    fn breaker_counts_attempts_and_rejects_when_open() {
        let time = FakeTime::default();
        let mut breaker = CircuitBreaker::new("backend", BreakerConfig::DEFAULT, Millis(0));
        let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
        let (res, _) = go(&policy(10), &time, &mut guard, |_| Box::pin(ready(Err::<(), _>(http(503)))));
        match res {
            Err(RetryError::CircuitOpen { breaker, retry_in, attempts }) => {
                assert_eq!((breaker.as_str(), attempts), ("backend", 5));
                // Opened at 1.5 s (100+200+400+800 ms of waits); rejected after the next 1.6 s wait.
                assert_eq!(retry_in, Some(Duration::from_millis(30_000 - 1600)));
            }
            other => panic!("expected circuit_open, got {other:?}"),
        }
        assert_eq!(breaker.state(time.now()), BreakerState::Open);
    }

    #[test]
    fn permanent_failures_do_not_trip_the_breaker() {
        let time = FakeTime::default();
        let mut breaker = CircuitBreaker::new("b", BreakerConfig::DEFAULT, Millis(0));
        for _ in 0..10 {
            let mut guard = BreakerGuard { breaker: &mut breaker, budget: None };
            let _ = go(&policy(0), &time, &mut guard, |_| Box::pin(ready(Err::<(), _>(http(404)))));
        }
        assert_eq!(breaker.state(time.now()), BreakerState::Closed);
    }

    #[test]
    fn budget_stops_a_retry_storm() {
        let time = FakeTime::default();
        let mut breaker =
            CircuitBreaker::new("b", BreakerConfig { failure_threshold: 1000, ..BreakerConfig::DEFAULT }, Millis(0));
        let mut budget = RetryBudget::default();
        let mut retries = 0;
        for _ in 0..20 {
            let mut guard = BreakerGuard { breaker: &mut breaker, budget: Some(&mut budget) };
            let (_, sum) = go(&policy(3), &time, &mut guard, |_| Box::pin(ready(Err::<(), _>(http(503)))));
            retries += sum.retries;
        }
        // 20 calls in well under 10 s: 10 (floor) + 20 % of 20 = 14 retries, not 60.
        assert_eq!(retries, 14);
    }
}
