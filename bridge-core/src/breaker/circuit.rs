//! One circuit breaker: a state machine driven by call results and time.
//!
//! ```text
//!            N consecutive failures            reset timeout elapsed
//!  CLOSED ─────────(or failure rate)───▶ OPEN ────────────────────▶ HALF_OPEN
//!    ▲                                    ▲                             │
//!    │              a trial fails         └─────────────────────────────┤
//!    └──────────────── M trial successes ───────────────────────────────┘
//!  reset(): any ─▶ CLOSED          isolate(): any ─▶ FORCED_OPEN (until reset)
//! ```
//!
//! Every call asks [`CircuitBreaker::try_acquire`] first and reports its
//! result with the returned [`Permit`]. Permits carry the breaker's
//! generation: results of calls that started before the last transition
//! update the totals but never move the state machine, so a slow call from
//! before an outage cannot close a breaker that has since re-opened.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::BreakerConfig;
use super::window::OutcomeWindow;
use crate::text;
use crate::time::{Millis, duration_ms};

/// Transitions each breaker remembers.
pub const TRANSITION_HISTORY: usize = 100;

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected until the reset timeout passes.
    Open,
    /// A few trial calls test whether the dependency is back.
    HalfOpen,
    /// Opened by hand; stays open until reset by hand.
    ForcedOpen,
}

impl BreakerState {
    /// All states, in display order.
    pub const ALL: [BreakerState; 4] =
        [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen, BreakerState::ForcedOpen];

    /// The state's name: `closed`, `open`, `half_open`, `forced_open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// Too many consecutive failures.
    ConsecutiveFailures,
    /// Too large a share of recent calls failed.
    FailureRate,
    /// The reset timeout elapsed.
    ResetTimeout,
    /// Enough trial calls succeeded.
    TrialsSucceeded,
    /// A trial call failed.
    TrialFailed,
    /// Reset by hand.
    ManualReset,
    /// Isolated by hand.
    ManualIsolate,
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Ordinal of this transition in the breaker's life, from 1.
    pub seq: u64,
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// When, on the caller's clock.
    pub at: Millis,
    /// Why.
    pub reason: TransitionReason,
    /// A human sentence with the numbers behind the reason.
    pub detail: String,
}

/// Proof that a call was admitted; hand it back with the call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
    trial: bool,
}

impl Permit {
    /// True when this call is one of the half-open trial calls.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The permit as a number below 2^53 (exact in a JS number), for an edge that
    /// hands it across a language boundary and back.
    pub fn to_bits(self) -> u64 {
        (self.generation & ((1 << 52) - 1)) << 1 | u64::from(self.trial)
    }

    /// A permit from [`Permit::to_bits`].
    pub fn from_bits(bits: u64) -> Permit {
        Permit { generation: bits >> 1, trial: bits & 1 == 1 }
    }
}

/// A call the breaker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The state that refused.
    pub state: BreakerState,
    /// When a call may next be admitted (`None`: forced open, or half-open
    /// with every trial slot busy, which frees up as trials finish).
    pub retry_at: Option<Millis>,
}

impl Rejected {
    /// How long from `now` until `retry_at`.
    pub fn retry_in(&self, now: Millis) -> Option<Duration> {
        self.retry_at.map(|at| at.saturating_since(now))
    }
}

/// Counters since creation (a manual reset keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerTotals {
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls refused without being tried.
    pub rejections: u64,
    /// Times the breaker entered `open` or `forced_open`, for any reason.
    pub open_count: u64,
    /// Times failures tripped it from `closed` to `open`.
    pub trips: u64,
}

/// A breaker's full picture at one instant; what reports and dashboards show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Current state.
    pub state: BreakerState,
    /// Since when.
    pub since: Millis,
    /// Time in the current state, ms.
    pub time_in_state_ms: u64,
    /// Consecutive failures counted toward opening.
    pub consecutive_failures: u32,
    /// Trial calls running now (half-open only).
    pub half_open_in_flight: u32,
    /// When an open breaker will admit a trial call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Millis>,
    /// Counters.
    #[serde(flatten)]
    pub totals: BreakerTotals,
    /// How long the last completed open period lasted, ms.
    pub last_open_duration_ms: Option<u64>,
    /// Cumulative ms spent in each state, the current one included.
    pub time_in_states_ms: TimeInStates,
    /// Calls and failures in the failure-rate window, when that trigger is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_window: Option<(u32, u32)>,
    /// The settings.
    pub config: BreakerConfig,
    /// The most recent transitions, oldest first.
    pub transitions: Vec<Transition>,
}

/// Cumulative milliseconds per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeInStates {
    /// In `closed`.
    pub closed: u64,
    /// In `open`.
    pub open: u64,
    /// In `half_open`.
    pub half_open: u64,
    /// In `forced_open`.
    pub forced_open: u64,
}

impl crate::json::ToJson for BreakerState {
    fn write_json(&self, out: &mut crate::json::Out) {
        out.str(self.as_str());
    }
}

crate::json_names!(TransitionReason {
    ConsecutiveFailures: "consecutive_failures",
    FailureRate: "failure_rate",
    ResetTimeout: "reset_timeout",
    TrialsSucceeded: "trials_succeeded",
    TrialFailed: "trial_failed",
    ManualReset: "manual_reset",
    ManualIsolate: "manual_isolate",
});

crate::json_object!(Transition, |s|
    "seq": s.seq,
    "from": s.from,
    "to": s.to,
    "at": s.at,
    "reason": s.reason,
    "detail": s.detail,
);

crate::json_object!(BreakerTotals, |s|
    "successes": s.successes,
    "failures": s.failures,
    "rejections": s.rejections,
    "openCount": s.open_count,
    "trips": s.trips,
);

crate::json_object!(BreakerSnapshot, |s|
    "name": s.name,
    "state": s.state,
    "since": s.since,
    "timeInStateMs": s.time_in_state_ms,
    "consecutiveFailures": s.consecutive_failures,
    "halfOpenInFlight": s.half_open_in_flight,
    "retryAt"?: s.retry_at,
    ..s.totals,
    "lastOpenDurationMs": s.last_open_duration_ms,
    "timeInStatesMs": s.time_in_states_ms,
    "rateWindow"?: s.rate_window,
    "config": s.config,
    "transitions": s.transitions,
);

crate::json_object!(TimeInStates, |s|
    "closed": s.closed,
    "open": s.open,
    "halfOpen": s.half_open,
    "forcedOpen": s.forced_open,
);

/// One circuit breaker. See the module docs.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    state: BreakerState,
    since: Millis,
    generation: u64,
    open_until: Millis,
    open_started: Millis,
    consecutive_failures: u32,
    trials_in_flight: u32,
    trial_successes: u32,
    window: Option<OutcomeWindow>,
    totals: BreakerTotals,
    last_open_duration: Option<Duration>,
    time_in: [u64; 4],
    transitions: VecDeque<Transition>,
    transition_seq: u64,
    last_activity: Millis,
}

impl CircuitBreaker {
    /// A closed breaker named `name`, created at `now`. `config` must be valid
    /// (see [`BreakerConfig::validate`]); counts of 0 are treated as 1.
    pub fn new(name: impl Into<String>, config: BreakerConfig, now: Millis) -> Self {
        let config = BreakerConfig {
            failure_threshold: config.failure_threshold.max(1),
            half_open_max_calls: config.half_open_max_calls.max(1),
            success_threshold: config.success_threshold.max(1),
            ..config
        };
        Self {
            name: name.into(),
            window: config.failure_rate.map(|r| OutcomeWindow::new(r.window)),
            config,
            state: BreakerState::Closed,
            since: now,
            generation: 0,
            open_until: now,
            open_started: now,
            consecutive_failures: 0,
            trials_in_flight: 0,
            trial_successes: 0,
            totals: BreakerTotals::default(),
            last_open_duration: None,
            time_in: [0; 4],
            transitions: VecDeque::with_capacity(8),
            transition_seq: 0,
            last_activity: now,
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state at `now` (an open breaker past its reset timeout reads as half-open).
    pub fn state(&mut self, now: Millis) -> BreakerState {
        self.advance(now);
        self.state
    }

    /// Counters since creation.
    pub fn totals(&self) -> BreakerTotals {
        self.totals
    }

    /// Consecutive failures counted toward opening.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Transitions so far (the ordinal of the latest); grows by one per transition,
    /// so a change is detected by comparing two readings.
    pub fn transition_count(&self) -> u64 {
        self.transition_seq
    }

    /// The remembered transitions (at most [`TRANSITION_HISTORY`]), oldest first.
    pub fn transitions(&self) -> impl ExactSizeIterator<Item = &Transition> {
        self.transitions.iter()
    }

    /// When this breaker last admitted, refused or heard of a call.
    pub fn last_activity(&self) -> Millis {
        self.last_activity
    }

    /// Asks to make a call at `now`.
    pub fn try_acquire(&mut self, now: Millis) -> Result<Permit, Rejected> {
        self.advance(now);
        self.last_activity = self.last_activity.max(now);
        match self.state {
            BreakerState::Closed => Ok(Permit { generation: self.generation, trial: false }),
            BreakerState::HalfOpen if self.trials_in_flight < self.config.half_open_max_calls => {
                self.trials_in_flight += 1;
                Ok(Permit { generation: self.generation, trial: true })
            }
            state => {
                self.totals.rejections += 1;
                let retry_at = (state == BreakerState::Open).then_some(self.open_until);
                Err(Rejected { state, retry_at })
            }
        }
    }

    /// Admits a call if the breaker is closed, without reading the time (a closed
    /// breaker has no timed transition): the cheapest check, for hot paths. `None`
    /// means "ask [`CircuitBreaker::try_acquire`] with the time".
    pub fn try_acquire_closed(&mut self) -> Option<Permit> {
        (self.state == BreakerState::Closed).then_some(Permit { generation: self.generation, trial: false })
    }

    /// Reports that the call holding `permit` succeeded at `now`.
    pub fn on_success(&mut self, permit: Permit, now: Millis) {
        self.advance(now);
        self.last_activity = self.last_activity.max(now);
        self.totals.successes += 1;
        if permit.generation != self.generation {
            return;
        }
        match self.state {
            BreakerState::Closed => {
                self.consecutive_failures = 0;
                if let Some(w) = &mut self.window {
                    w.push(false);
                }
            }
            BreakerState::HalfOpen if permit.trial => {
                self.trials_in_flight = self.trials_in_flight.saturating_sub(1);
                self.trial_successes += 1;
                if self.trial_successes >= self.config.success_threshold {
                    let detail = text!(self.trial_successes, " trial calls succeeded");
                    self.transition(BreakerState::Closed, now, TransitionReason::TrialsSucceeded, detail);
                }
            }
            _ => {}
        }
    }

    /// Reports that the call holding `permit` failed at `now`.
    pub fn on_failure(&mut self, permit: Permit, now: Millis) {
        self.advance(now);
        self.last_activity = self.last_activity.max(now);
        self.totals.failures += 1;
        if permit.generation != self.generation {
            return;
        }
        match self.state {
            BreakerState::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if let Some(w) = &mut self.window {
                    w.push(true);
                }
                if self.consecutive_failures >= self.config.failure_threshold {
                    let detail = text!(self.consecutive_failures, " consecutive failures");
                    self.trip(now, TransitionReason::ConsecutiveFailures, detail);
                } else if let Some(detail) = self.rate_tripped() {
                    self.trip(now, TransitionReason::FailureRate, detail);
                }
            }
            BreakerState::HalfOpen if permit.trial => {
                self.trials_in_flight = self.trials_in_flight.saturating_sub(1);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now, TransitionReason::TrialFailed, "a trial call failed".to_owned());
            }
            _ => {}
        }
    }

    /// Reports that the call holding `permit` ended with no verdict on the
    /// dependency (cancelled by the caller): frees its trial slot, counts nothing.
    pub fn on_abandoned(&mut self, permit: Permit, now: Millis) {
        self.advance(now);
        if permit.generation == self.generation && permit.trial && self.state == BreakerState::HalfOpen {
            self.trials_in_flight = self.trials_in_flight.saturating_sub(1);
        }
    }

    /// Closes the breaker by hand and clears its failure counts.
    pub fn reset(&mut self, now: Millis) {
        self.advance(now);
        self.consecutive_failures = 0;
        if let Some(w) = &mut self.window {
            w.clear();
        }
        if self.state != BreakerState::Closed {
            self.transition(BreakerState::Closed, now, TransitionReason::ManualReset, "reset by hand".to_owned());
        }
    }

    /// Opens the breaker by hand; it stays open until [`CircuitBreaker::reset`].
    pub fn isolate(&mut self, now: Millis) {
        self.advance(now);
        if self.state != BreakerState::ForcedOpen {
            self.transition(
                BreakerState::ForcedOpen,
                now,
                TransitionReason::ManualIsolate,
                "isolated by hand".to_owned(),
            );
        }
    }

    /// The full picture at `now`, with at most `max_transitions` of the latest transitions.
    pub fn snapshot(&mut self, now: Millis, max_transitions: usize) -> BreakerSnapshot {
        self.advance(now);
        let mut time_in = self.time_in;
        time_in[self.state.index()] += duration_ms(now.saturating_since(self.since));
        let skip = self.transitions.len().saturating_sub(max_transitions);
        BreakerSnapshot {
            name: self.name.clone(),
            state: self.state,
            since: self.since,
            time_in_state_ms: duration_ms(now.saturating_since(self.since)),
            consecutive_failures: self.consecutive_failures,
            half_open_in_flight: self.trials_in_flight,
            retry_at: (self.state == BreakerState::Open).then_some(self.open_until),
            totals: self.totals,
            last_open_duration_ms: self.last_open_duration.map(duration_ms),
            time_in_states_ms: TimeInStates {
                closed: time_in[0],
                open: time_in[1],
                half_open: time_in[2],
                forced_open: time_in[3],
            },
            rate_window: self.window.as_ref().map(|w| w.counts()),
            config: self.config,
            transitions: self.transitions.iter().skip(skip).cloned().collect(),
        }
    }

    /// Time-driven transitions: an open breaker half-opens once its reset
    /// timeout has passed. Recorded at the instant it became due, not when noticed.
    fn advance(&mut self, now: Millis) {
        if self.state == BreakerState::Open && now >= self.open_until {
            let detail = text!("reset timeout of ", duration_ms(self.config.reset_timeout), " ms elapsed");
            let at = self.open_until.max(self.since);
            self.transition(BreakerState::HalfOpen, at, TransitionReason::ResetTimeout, detail);
        }
    }

    fn rate_tripped(&self) -> Option<String> {
        let (rate, window) = (self.config.failure_rate?, self.window.as_ref()?);
        let (calls, failures) = window.counts();
        let share = f64::from(failures) / f64::from(calls.max(1));
        (calls >= rate.min_calls && share >= rate.threshold).then(|| {
            let percent = u64::from(failures) * 100 / u64::from(calls.max(1));
            text!(failures, " of the last ", calls, " calls failed (", percent, " %)")
        })
    }

    fn trip(&mut self, now: Millis, reason: TransitionReason, detail: String) {
        self.totals.trips += 1;
        self.open(now, reason, detail);
    }

    fn open(&mut self, now: Millis, reason: TransitionReason, detail: String) {
        self.open_until = now + self.config.reset_timeout;
        self.transition(BreakerState::Open, now, reason, detail);
    }

    fn transition(&mut self, to: BreakerState, at: Millis, reason: TransitionReason, detail: String) {
        let from = self.state;
        let at = at.max(self.since);
        self.time_in[from.index()] += duration_ms(at.saturating_since(self.since));
        if matches!(from, BreakerState::Open | BreakerState::ForcedOpen) {
            self.last_open_duration = Some(at.saturating_since(self.open_started));
        }
        if matches!(to, BreakerState::Open | BreakerState::ForcedOpen) {
            self.totals.open_count += 1;
            self.open_started = at;
        }
        if to == BreakerState::Closed {
            self.consecutive_failures = 0;
            if let Some(w) = &mut self.window {
                w.clear();
            }
        }
        self.state = to;
        self.since = at;
        self.generation += 1;
        self.trials_in_flight = 0;
        self.trial_successes = 0;
        self.transition_seq += 1;
        if self.transitions.len() == TRANSITION_HISTORY {
            self.transitions.pop_front();
        }
        self.transitions.push_back(Transition { seq: self.transition_seq, from, to, at, reason, detail });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::FailureRateTrigger;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new("backend", BreakerConfig::DEFAULT, Millis(0))
    }

    fn fail(b: &mut CircuitBreaker, now: u64) {
        let p = b.try_acquire(Millis(now)).expect("admitted");
        b.on_failure(p, Millis(now));
    }

    fn succeed(b: &mut CircuitBreaker, now: u64) {
        let p = b.try_acquire(Millis(now)).expect("admitted");
        b.on_success(p, Millis(now));
    }

    #[test]
    fn opens_after_five_consecutive_failures() {
        let mut b = breaker();
        for t in 0..4 {
            fail(&mut b, t);
        }
        succeed(&mut b, 4);
        for t in 5..9 {
            fail(&mut b, t);
        }
        assert_eq!(b.state(Millis(9)), BreakerState::Closed, "a success in between resets the count");
        fail(&mut b, 9);
        assert_eq!(b.state(Millis(9)), BreakerState::Open);
        let t = b.transitions().last().unwrap();
        assert_eq!((t.reason, t.detail.as_str()), (TransitionReason::ConsecutiveFailures, "5 consecutive failures"));
        assert_eq!(b.totals().trips, 1);
    }

    #[test]
    fn open_rejects_and_says_when() {
        let mut b = breaker();
        (0..5).for_each(|t| fail(&mut b, 1000 + t));
        let r = b.try_acquire(Millis(2000)).unwrap_err();
        assert_eq!(r.state, BreakerState::Open);
        assert_eq!(r.retry_at, Some(Millis(1004 + 30_000)));
        assert_eq!(r.retry_in(Millis(2000)), Some(Duration::from_millis(29_004)));
        assert_eq!(b.totals().rejections, 1);
    }

    #[test]
    fn half_open_admits_three_then_two_successes_close() {
        let mut b = breaker();
        (0..5).for_each(|_| fail(&mut b, 0));
        let t = 30_000;
        assert_eq!(b.state(Millis(t)), BreakerState::HalfOpen);
        let permits: Vec<_> = (0..3).map(|_| b.try_acquire(Millis(t)).unwrap()).collect();
        assert!(permits.iter().all(Permit::is_trial));
        assert_eq!(b.try_acquire(Millis(t)).unwrap_err(), Rejected { state: BreakerState::HalfOpen, retry_at: None });
        b.on_success(permits[0], Millis(t + 1));
        assert_eq!(b.state(Millis(t + 1)), BreakerState::HalfOpen);
        b.on_success(permits[1], Millis(t + 2));
        assert_eq!(b.state(Millis(t + 2)), BreakerState::Closed);
        // The third trial ends after the breaker closed: it cannot move the state.
        b.on_failure(permits[2], Millis(t + 3));
        assert_eq!(b.state(Millis(t + 3)), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn a_failed_trial_reopens() {
        let mut b = breaker();
        (0..5).for_each(|_| fail(&mut b, 0));
        fail(&mut b, 30_000);
        assert_eq!(b.state(Millis(30_001)), BreakerState::Open);
        assert_eq!(b.try_acquire(Millis(30_001)).unwrap_err().retry_at, Some(Millis(60_000)));
        let reasons: Vec<_> = b.transitions().map(|t| t.reason).collect();
        assert_eq!(
            reasons,
            [TransitionReason::ConsecutiveFailures, TransitionReason::ResetTimeout, TransitionReason::TrialFailed]
        );
        assert_eq!(b.totals().trips, 1, "re-opening from half-open is not a new trip");
        assert_eq!(b.totals().open_count, 2);
    }

    #[test]
    fn stale_permits_do_not_move_the_state() {
        let mut b = breaker();
        let old = b.try_acquire(Millis(0)).unwrap();
        (0..5).for_each(|_| fail(&mut b, 1));
        b.on_success(old, Millis(2));
        assert_eq!(b.state(Millis(2)), BreakerState::Open);
        assert_eq!(b.totals().successes, 1, "but it is counted");
    }

    #[test]
    fn abandoned_trials_free_their_slot() {
        let mut b = breaker();
        (0..5).for_each(|_| fail(&mut b, 0));
        let t = Millis(30_000);
        let permits: Vec<_> = (0..3).map(|_| b.try_acquire(t).unwrap()).collect();
        b.on_abandoned(permits[0], t);
        assert!(b.try_acquire(t).is_ok());
    }

    #[test]
    fn permits_cross_as_numbers_and_closed_admission_needs_no_time() {
        let mut b = breaker();
        let p = b.try_acquire_closed().expect("closed");
        assert_eq!(Permit::from_bits(p.to_bits()), p);
        assert!(p.to_bits() < 1 << 53);
        b.on_success(Permit::from_bits(p.to_bits()), Millis(1));
        assert_eq!(b.totals().successes, 1);
        b.isolate(Millis(2));
        assert_eq!(b.try_acquire_closed(), None, "anything but closed goes the timed way");
    }

    #[test]
    fn manual_isolate_and_reset() {
        let mut b = breaker();
        b.isolate(Millis(10));
        let r = b.try_acquire(Millis(1_000_000)).unwrap_err();
        assert_eq!(r, Rejected { state: BreakerState::ForcedOpen, retry_at: None });
        b.reset(Millis(1_000_010));
        assert_eq!(b.state(Millis(1_000_010)), BreakerState::Closed);
        let snap = b.snapshot(Millis(1_000_010), 100);
        assert_eq!(snap.last_open_duration_ms, Some(1_000_000));
        assert_eq!(snap.time_in_states_ms, TimeInStates { closed: 10, open: 0, half_open: 0, forced_open: 1_000_000 });
        assert_eq!(snap.totals.open_count, 1);
        assert_eq!(snap.totals.trips, 0);
    }

    #[test]
    fn failure_rate_trigger() {
        let config = BreakerConfig {
            failure_threshold: 100,
            failure_rate: Some(FailureRateTrigger { window: 10, min_calls: 10, threshold: 0.5 }),
            ..BreakerConfig::DEFAULT
        };
        let mut b = CircuitBreaker::new("rate", config, Millis(0));
        for i in 0..9 {
            if i % 2 == 0 { succeed(&mut b, i) } else { fail(&mut b, i) }
        }
        assert_eq!(b.state(Millis(9)), BreakerState::Closed, "9 calls: below min_calls");
        fail(&mut b, 9);
        assert_eq!(b.state(Millis(9)), BreakerState::Open);
        assert_eq!(b.transitions().last().unwrap().detail, "5 of the last 10 calls failed (50 %)");
    }

    #[test]
    fn history_is_bounded_to_the_last_100() {
        let mut b = breaker();
        for i in 0..80u64 {
            b.isolate(Millis(i * 2));
            b.reset(Millis(i * 2 + 1));
        }
        assert_eq!(b.transitions().len(), TRANSITION_HISTORY);
        assert_eq!(b.transition_count(), 160);
        assert_eq!(b.transitions().next().unwrap().seq, 61);
        assert_eq!(b.snapshot(Millis(200), 5).transitions.len(), 5);
    }

    #[test]
    fn snapshot_serializes_camel_case() {
        let mut b = breaker();
        (0..5).for_each(|_| fail(&mut b, 0));
        let v = serde_json::to_value(b.snapshot(Millis(100), 10)).unwrap();
        assert_eq!(v["state"], "open");
        assert_eq!(v["retryAt"], 30_000);
        assert_eq!(v["trips"], 1);
        assert_eq!(v["timeInStateMs"], 100);
        assert_eq!(v["transitions"][0]["reason"], "consecutive_failures");
    }
}
