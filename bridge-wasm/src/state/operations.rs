//! One operation's attempts under its tool (its policy, its breaker, its
//! budget, its metrics). The driver asks [`Core::begin`] for a run, then
//! before each attempt [`Core::attempt`] (make it, with this timeout, or the
//! run ended) and after a failed one [`Core::failed`] (wait this long, or the
//! run ended); it makes the attempts, races each against its timeout and its
//! cancel signal, and sleeps. [`Core::end`] records the metrics and says how
//! it ended. The rules are bridge-core's [`Operation`].
//!
//! `call()`'s fast path admits its first tries with no run at all while the
//! breaker is closed ([`Core::lane`]), tells their successes in batches
//! ([`Core::landed`]), and starts a run only when a first try fails
//! ([`Core::resume`]).

use bridge_core::breaker::{BreakerRegistry, BreakerState, Permit, Rejected};
use bridge_core::random::SeededRandom;
use bridge_core::retry::driver::{Guard, RunSummary, Verdict, apply_verdict};
use bridge_core::retry::operation::Operation;
use bridge_core::retry::{BudgetConfig, Failure, RetryBudget, RetryError};
use bridge_core::time::{Millis, duration_ms};
use bridge_core::vecmap::VecMap;

use super::edge::json;
use super::failure::failure_code;
use super::{Core, MAX_BUDGETS};

/// Operations in flight at once; a driver that never ends its runs hits this, and
/// every further operation fails with `limit_exceeded` instead of memory growing.
const MAX_RUNS: usize = 4096;

/// Most distinct tool names `call()` tracks on its fast path; others take the full path.
const MAX_CALL_TOOLS: usize = 256;

/// What an attempt's or a run's answer means when it is not a number of ms.
const NO_TIMEOUT: f64 = -1.0;
const ENDED: f64 = -2.0;

/// One operation in flight.
#[derive(Debug)]
struct Run {
    op: Operation<SeededRandom, Failure, Permit>,
    /// Its metrics name.
    tool: String,
    breaker: String,
    /// Its policy, whose budget its retries draw on.
    policy: String,
    transitions_before: u64,
    /// How it ended, once it did.
    ended: Option<Result<(), RetryError<Failure>>>,
}

/// The runs in flight, by id (a slot's index).
#[derive(Debug, Default)]
pub(super) struct Runs {
    slots: Vec<Option<Run>>,
}

/// The budget of `policy`, among at most [`MAX_BUDGETS`].
fn budget_of<'a>(
    budgets: &'a mut VecMap<String, RetryBudget>,
    config: BudgetConfig,
    policy: &str,
) -> &'a mut RetryBudget {
    let key = if budgets.contains_key(policy) || budgets.len() < MAX_BUDGETS { policy } else { "(other)" };
    budgets.get_or_insert_with(key.to_owned(), || RetryBudget::new(config).unwrap_or_default())
}

/// The breaker `breaker` and a budget, for one step of a run.
struct ToolGuard<'a> {
    breakers: &'a mut BreakerRegistry,
    breaker: &'a str,
    budget: &'a mut RetryBudget,
    /// `navigator.onLine`: a failure while offline is not the dependency's.
    online: bool,
}

impl Guard for ToolGuard<'_> {
    type Permit = Permit;

    fn name(&self) -> &str {
        self.breaker
    }

    fn admit(&mut self, now: Millis) -> Result<Permit, Rejected> {
        match self.breakers.get_or_create(self.breaker, now) {
            Ok(b) => b.try_acquire(now),
            Err(_) => Err(Rejected { state: BreakerState::Open, retry_at: None }),
        }
    }

    fn record(&mut self, permit: Permit, verdict: Verdict, now: Millis) {
        let verdict = if verdict == Verdict::Failure && !self.online { Verdict::Abandoned } else { verdict };
        if let Some(b) = self.breakers.get_mut(self.breaker) {
            apply_verdict(b, permit, verdict, now);
        }
    }

    fn first_attempt(&mut self, now: Millis) {
        self.budget.deposit(now);
    }

    fn allow_retry(&mut self, now: Millis) -> bool {
        self.budget.try_withdraw(now)
    }
}

/// How a run ended, for the driver: what `end` returns as JSON.
struct Ended {
    /// A breaker changed state during the run.
    moved: bool,
    /// The outcome's code when it failed (`retries_exhausted`, `circuit_open`, ...).
    code: Option<&'static str>,
    message: Option<String>,
    attempts: u32,
    retry_in_ms: Option<u64>,
    /// The last attempt's failure: its code (`network`, `http`, ...), description, status.
    last: Option<Last>,
}

bridge_core::json_object!(Ended, |s|
    "moved": s.moved,
    "code"?: s.code,
    "message"?: s.message,
    "attempts": s.attempts,
    "retryInMs"?: s.retry_in_ms,
    "last"?: s.last,
);

struct Last {
    code: &'static str,
    message: String,
    status: Option<u16>,
    server_code: Option<String>,
    transient: bool,
}

bridge_core::json_object!(Last, |s|
    "code": s.code,
    "message": s.message,
    "status"?: s.status,
    "serverCode"?: s.server_code,
    "transient": s.transient,
);

fn ms(v: f64) -> Millis {
    Millis(v as u64)
}

fn us(v: f64) -> u64 {
    (v * 1000.0) as u64
}

impl Core {
    /// Runs `step` on run `id` with its guard.
    fn step<T>(&mut self, id: u32, online: bool, step: impl FnOnce(&mut Run, &mut ToolGuard<'_>) -> T) -> Option<T> {
        let run = self.runs.slots.get_mut(id as usize)?.as_mut()?;
        let budget = budget_of(&mut self.budgets, self.budget_config, &run.policy);
        // The guard borrows the breaker's name while the step changes the run.
        let breaker = std::mem::take(&mut run.breaker);
        let mut guard = ToolGuard { breakers: &mut self.breakers, breaker: &breaker, budget, online };
        let out = step(run, &mut guard);
        run.breaker = breaker;
        Some(out)
    }

    fn add_run(&mut self, run: Run) -> i32 {
        let slots = &mut self.runs.slots;
        let id = match slots.iter().position(Option::is_none) {
            Some(i) => i,
            None if slots.len() < MAX_RUNS => {
                slots.push(None);
                slots.len() - 1
            }
            None => return -1,
        };
        slots[id] = Some(run);
        id as i32
    }
}

impl Core {
    /// Starts an operation as `tool` (its metrics and budget), under breaker `breaker` and the
    /// policy named `policy`, at `now` (ms). Its id, or -1 when too many are in flight.
    pub fn begin(&mut self, tool: String, breaker: String, policy: String, now: f64) -> i32 {
        let rng = self.jitter();
        let op = Operation::start(self.policies.get(&policy), ms(now), us(now), rng);
        let transitions_before = self.breakers.transition_count();
        self.add_run(Run { op, tool, breaker, policy, transitions_before, ended: None })
    }

    /// Before attempt n of run `id` at `now`: its timeout in ms (-1: none), or -2 when
    /// the run ended instead (the breaker refused it, or the deadline passed).
    pub fn attempt(&mut self, id: u32, now: f64) -> f64 {
        self.step(id, true, |run, guard| match run.op.begin(ms(now), guard) {
            Ok(info) => info.timeout.map_or(NO_TIMEOUT, |t| duration_ms(t) as f64),
            Err(e) => {
                run.ended = Some(Err(e));
                ENDED
            }
        })
        .unwrap_or(ENDED)
    }

    /// The attempt in flight succeeded at `now`: the run ended.
    pub fn succeeded(&mut self, id: u32, now: f64) {
        self.step(id, true, |run, guard| {
            run.op.succeeded(ms(now), guard);
            run.ended = Some(Ok(()));
        });
    }

    /// The attempt in flight failed at `now` with the failure at hand: how many ms to wait
    /// before the next one, or -2 when the run ended.
    pub fn failed(&mut self, id: u32, now: f64, online: bool) -> f64 {
        let error = self.failure.clone();
        self.step(id, online, |run, guard| match run.op.failed(ms(now), guard, error) {
            Ok(delay) => duration_ms(delay) as f64,
            Err(e) => {
                run.ended = Some(Err(e));
                ENDED
            }
        })
        .unwrap_or(ENDED)
    }

    /// The caller gave up on run `id` at `now`: the run ended as `cancelled` (unless it
    /// had ended already).
    pub fn cancelled(&mut self, id: u32, now: f64) {
        self.step(id, true, |run, guard| {
            if run.ended.is_none() {
                run.ended = Some(Err(run.op.cancelled(ms(now), guard)));
            }
        });
    }

    /// Ends run `id` at `now` (its metrics are recorded); how it ended, as JSON:
    /// `{moved, attempts, code?, message?, retryInMs?, last?}` (`code` when it failed).
    pub fn end(&mut self, id: u32, now: f64) -> String {
        let Some(mut run) = self.runs.slots.get_mut(id as usize).and_then(Option::take) else {
            return String::from("{\"moved\":false,\"attempts\":0}");
        };
        let result = run.ended.take().unwrap_or_else(|| Err(RetryError::Cancelled { attempts: run.op.attempts() }));
        let summary: RunSummary = run.op.summary(result.as_ref(), us(now));
        let message = result.as_ref().err().map(|e| e.message(Failure::describe));
        self.metrics.record(&run.tool, &summary, message.as_deref());
        let ended = Ended {
            moved: self.breakers.transition_count() != run.transitions_before,
            code: result.as_ref().err().map(RetryError::code),
            message,
            attempts: summary.attempts,
            retry_in_ms: match &result {
                Err(RetryError::CircuitOpen { retry_in: Some(d), .. }) => Some(duration_ms(*d)),
                _ => None,
            },
            last: result.as_ref().err().and_then(RetryError::last_error).map(|f| Last {
                code: failure_code(f),
                message: f.describe(),
                status: match f {
                    Failure::Http { status, .. } => Some(*status),
                    _ => None,
                },
                server_code: match f {
                    Failure::Server { code, .. } => Some(code.clone()),
                    _ => None,
                },
                transient: f.is_transient(),
            }),
        };
        json(&ended)
    }

    /// Records a purely local operation of `tool` that succeeded (it cannot fail transiently).
    pub fn record_local(&mut self, tool: &str) {
        self.metrics.record_first_tries(tool, 1, &[0]);
    }

    // ---- call()'s fast path ----

    /// The index of tool `name` for `call()` (registered if new), or -1 when the table is full.
    pub fn tool_id(&mut self, name: String) -> i32 {
        if let Some(i) = self.call_tools.iter().position(|n| *n == name) {
            return i as i32;
        }
        if self.call_tools.len() >= MAX_CALL_TOOLS {
            return -1;
        }
        self.call_tools.push(name);
        (self.call_tools.len() - 1) as i32
    }

    /// The fast lane of tool `id` at `now`: while its breaker is closed, `call()` admits first
    /// tries without asking (a closed breaker admits everything) and tells their successes
    /// in batches (`landed`). The permit's bits to admit them with, or -1 when the breaker is
    /// not closed (every call then takes the full path).
    pub fn lane(&mut self, id: u32, now: f64) -> f64 {
        let Some(tool) = self.call_tools.get(id as usize) else { return -1.0 };
        let Ok(b) = self.breakers.get_or_create(tool, ms(now)) else { return -1.0 };
        b.try_acquire_closed().map_or(-1.0, |p| p.to_bits() as f64)
    }

    /// `count` first tries of tool `id`, admitted with `permit` by its lane, succeeded by
    /// `now` (in that order, before anything the module heard of since); `latencies` (ms)
    /// of those that were timed.
    pub fn landed(&mut self, id: u32, permit: f64, count: u32, latencies: &[f64], now: f64) {
        let Some(tool) = self.call_tools.get(id as usize) else { return };
        let now = ms(now);
        let permit = Permit::from_bits(permit as u64);
        let budget = budget_of(&mut self.budgets, self.budget_config, tool);
        for _ in 0..count {
            budget.deposit(now);
        }
        if let Some(b) = self.breakers.get_mut(tool) {
            for _ in 0..count {
                b.on_success(permit, now);
            }
        }
        let timed: Vec<u64> = latencies.iter().map(|l| us(*l)).collect();
        self.metrics.record_first_tries(tool, count.into(), &timed);
    }

    /// The first try of tool `id`, admitted by its lane with `permit` and started at
    /// `started` (ms; negative: not timed), failed at `now`: starts a run that counts it as
    /// attempt 1. Call `failed` next with its failure, which its breaker hears of then. The
    /// run's id, or -1.
    pub fn resume(&mut self, id: u32, permit: f64, started: f64, now: f64) -> i32 {
        let Some(tool) = self.call_tools.get(id as usize).cloned() else { return -1 };
        let started = if started >= 0.0 { started } else { now };
        let rng = self.jitter();
        let transitions_before = self.breakers.transition_count();
        let budget = budget_of(&mut self.budgets, self.budget_config, &tool);
        let mut guard = ToolGuard { breakers: &mut self.breakers, breaker: &tool, budget, online: true };
        let permit = Permit::from_bits(permit as u64);
        let op = Operation::resume(self.policies.get(&tool), ms(started), us(started), rng, permit, &mut guard);
        let run = Run { op, breaker: tool.clone(), policy: tool.clone(), tool, transitions_before, ended: None };
        self.add_run(run)
    }

    // ---- breakers by hand ----

    /// Closes breaker `name` at `now`; false if there is none.
    pub fn reset_breaker(&mut self, name: &str, now: f64) -> bool {
        self.breakers.get_mut(name).map(|b| b.reset(ms(now))).is_some()
    }

    /// Opens breaker `name` at `now` until it is reset; false if there is none.
    pub fn isolate_breaker(&mut self, name: &str, now: f64) -> bool {
        self.breakers.get_mut(name).map(|b| b.isolate(ms(now))).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts serde wrote for these before `Ended` had its own writer.
    #[test]
    fn an_end_is_written_as_before() {
        let last = Last {
            code: "http",
            message: "HTTP 503".into(),
            status: Some(503),
            server_code: Some("busy".into()),
            transient: true,
        };
        let full = Ended {
            moved: true,
            code: Some("retries_exhausted"),
            message: Some("gave \"up\"\n".into()),
            attempts: 3,
            retry_in_ms: Some(4900),
            last: Some(last),
        };
        assert_eq!(
            json(&full),
            r#"{"moved":true,"code":"retries_exhausted","message":"gave \"up\"\n","attempts":3,"retryInMs":4900,"last":{"code":"http","message":"HTTP 503","status":503,"serverCode":"busy","transient":true}}"#
        );
        let last = Last { code: "network", message: String::new(), status: None, server_code: None, transient: false };
        let bare = Ended { moved: false, code: None, message: None, attempts: 1, retry_in_ms: None, last: Some(last) };
        assert_eq!(
            json(&bare),
            r#"{"moved":false,"attempts":1,"last":{"code":"network","message":"","transient":false}}"#
        );
    }
}
