//! The bridge's resilience state, shared by everything it wraps: per-tool
//! policies, one breaker per name, one retry budget per policy, retry
//! metrics. And the one way to run an operation under them: [`Resilience::run`].

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bridge_core::breaker::{BreakerConfig, BreakerRegistry, BreakerState, Permit, Rejected};
use bridge_core::metrics::RetryMetrics;
use bridge_core::retry::driver::{
    AttemptError, AttemptInfo, Env, FirstAttempt, Guard, Verdict, apply_verdict, retry_after,
};
use bridge_core::retry::{BudgetConfig, Failure, FailureClass, PolicySet, RetryBudget, RetryError, RetryPolicy};
use bridge_core::time::Millis;
use bridge_core::vecmap::VecMap;
use wasm_bindgen::JsValue;

use crate::js::Code;
use crate::platform::{self, WebClock, WebSleeper};

/// Budgets kept by policy name; further names share the last one.
const MAX_BUDGETS: usize = 64;

/// A failed attempt: the classified failure, the JS value behind it, if any, and the
/// bridge's own code when the bridge itself refused (`outbox_full`, `stopped`, ...).
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) failure: Failure,
    pub(crate) cause: Option<JsValue>,
    pub(crate) refusal: Option<Code>,
}

impl Attempt {
    pub(crate) fn new(failure: Failure) -> Self {
        Self { failure, cause: None, refusal: None }
    }

    pub(crate) fn with_cause(failure: Failure, cause: JsValue) -> Self {
        Self { failure, cause: Some(cause), refusal: None }
    }
}

impl AttemptError for Attempt {
    fn class(&self) -> FailureClass {
        self.failure.class()
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.failure.retry_after()
    }
    fn timed_out(after: std::time::Duration) -> Self {
        Attempt::new(Failure::timed_out(after))
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Resilience {
    pub(crate) policies: PolicySet,
    pub(crate) breakers: BreakerRegistry,
    budgets: VecMap<String, RetryBudget>,
    budget_config: BudgetConfig,
    pub(crate) metrics: RetryMetrics,
}

impl Resilience {
    pub(crate) fn new(
        policies: PolicySet,
        defaults: BreakerConfig,
        per_name: &VecMap<String, BreakerConfig>,
        budget_config: BudgetConfig,
    ) -> Self {
        let mut breakers = BreakerRegistry::new(defaults);
        for (name, cfg) in per_name {
            // Validated with the config; cannot fail here.
            let _ = breakers.configure(name, *cfg, platform::now());
        }
        Self { policies, breakers, budgets: VecMap::new(), budget_config, metrics: RetryMetrics::default() }
    }

    /// Charges `policy`'s budget for a first attempt made outside the retry loop.
    pub(crate) fn deposit_first(&mut self, policy: &str, now: Millis) {
        self.budget(policy).deposit(now);
    }

    fn budget(&mut self, policy: &str) -> &mut RetryBudget {
        let key = if self.budgets.contains_key(policy) || self.budgets.len() < MAX_BUDGETS {
            policy.to_owned()
        } else {
            "(other)".to_owned()
        };
        let cfg = self.budget_config;
        self.budgets.get_or_insert_with(key, || RetryBudget::new(cfg).unwrap_or_default())
    }
}

/// Shared handle.
pub(crate) type Shared = Rc<RefCell<Resilience>>;

/// The guard for one operation: breaker `breaker`, budget of policy `policy`.
/// Borrows the shared state only inside each (synchronous) call.
pub(crate) struct ToolGuard {
    pub(crate) shared: Shared,
    pub(crate) breaker: String,
    pub(crate) policy: String,
    /// Breaker transitions seen, to tell the reporter when something moved.
    pub(crate) transitions_before: u64,
}

impl Guard for ToolGuard {
    type Permit = Permit;

    fn name(&self) -> &str {
        &self.breaker
    }

    fn admit(&mut self, now: Millis) -> Result<Permit, Rejected> {
        let mut s = self.shared.borrow_mut();
        match s.breakers.get_or_create(&self.breaker, now) {
            Ok(b) => b.try_acquire(now),
            Err(_) => Err(Rejected { state: BreakerState::Open, retry_at: None }),
        }
    }

    fn record(&mut self, permit: Permit, verdict: Verdict, now: Millis) {
        // A failure while the browser says it is offline is not the dependency's: no breaker moves.
        let verdict =
            if verdict == Verdict::Failure && !crate::lifecycle::online() { Verdict::Abandoned } else { verdict };
        if let Some(b) = self.shared.borrow_mut().breakers.get_mut(&self.breaker) {
            apply_verdict(b, permit, verdict, now);
        }
    }

    fn first_attempt(&mut self, now: Millis) {
        self.shared.borrow_mut().budget(&self.policy).deposit(now);
    }

    fn allow_retry(&mut self, now: Millis) -> bool {
        self.shared.borrow_mut().budget(&self.policy).try_withdraw(now)
    }
}

/// What running an operation changed, for the reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ran {
    /// A breaker changed state.
    pub(crate) breaker_moved: bool,
}

/// One attempt in flight. Boxed: the retry loop is compiled once per result type,
/// not once per call site (the module's size depends on it).
pub(crate) type Attempting<'a, T> = Pin<Box<dyn Future<Output = Result<T, Attempt>> + 'a>>;
/// What cancels an operation.
pub(crate) type Cancel<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A cancel that never fires.
pub(crate) fn never<'a>() -> Cancel<'a> {
    Box::pin(std::future::pending())
}

/// Runs `op` as tool `tool` (its policy, its breaker `breaker`, its budget), records
/// retry metrics under `tool`, and stops early if `cancel` completes.
pub(crate) async fn run<'a, T>(
    shared: &Shared,
    tool: &str,
    breaker: &str,
    policy: Option<RetryPolicy>,
    cancel: Cancel<'a>,
    op: &mut dyn FnMut(AttemptInfo) -> Attempting<'a, T>,
) -> (Result<T, RetryError<Attempt>>, Ran) {
    run_after(shared, tool, breaker, policy, cancel, None, op).await
}

/// [`run`], continuing after a first attempt that failed elsewhere (`call()`'s fast path).
pub(crate) async fn run_after<'a, T>(
    shared: &Shared,
    tool: &str,
    breaker: &str,
    policy: Option<RetryPolicy>,
    cancel: Cancel<'a>,
    first: Option<FirstAttempt<Attempt>>,
    op: &mut dyn FnMut(AttemptInfo) -> Attempting<'a, T>,
) -> (Result<T, RetryError<Attempt>>, Ran) {
    let (policy, transitions_before) = {
        let s = shared.borrow();
        (policy.unwrap_or(*s.policies.get(tool)), s.breakers.transition_count())
    };
    let mut guard = ToolGuard {
        shared: Rc::clone(shared),
        breaker: breaker.to_owned(),
        policy: tool.to_owned(),
        transitions_before,
    };
    let env = Env { clock: &WebClock, sleeper: &WebSleeper };
    let (result, summary) = retry_after(&policy, env, &mut guard, platform::rng(), cancel, first, op).await;
    let mut s = shared.borrow_mut();
    let error = result.as_ref().err().map(describe);
    s.metrics.record(tool, &summary, error.as_deref());
    let moved = s.breakers.transition_count() != guard.transitions_before;
    (result, Ran { breaker_moved: moved })
}

/// A one-line description of a final error, for metrics and messages.
pub(crate) fn describe(e: &RetryError<Attempt>) -> String {
    e.clone().map_err(|a| a.failure.describe()).to_string()
}

/// The JS error for a failed operation: `code` is the outcome's code (or the
/// bridge's own refusal such as `outbox_full`), `cause` the last attempt's error.
pub(crate) fn to_js_error(tool: &str, e: &RetryError<Attempt>) -> JsValue {
    let last = e.last_error();
    // The bridge's own final refusals keep their code; everything else is the retry outcome's.
    let local = last.and_then(|a| a.refusal.filter(|_| !a.failure.is_transient()));
    let code = local.map_or(e.code(), Code::as_str);
    let message = format!("{tool}: {}", describe(e));
    let cause = last.and_then(|a| a.cause.clone()).or_else(|| {
        last.map(|a| {
            let c = crate::js::coded_error(failure_code(&a.failure), &a.failure.describe(), None, &[]);
            if let Failure::Http { status, .. } = a.failure {
                let _ = js_sys::Reflect::set(&c, &"status".into(), &JsValue::from(status));
            }
            c
        })
    });
    let mut extra = vec![("tool", JsValue::from(tool)), ("attempts", JsValue::from(e.attempts()))];
    if let RetryError::CircuitOpen { retry_in: Some(d), .. } = e {
        extra.push(("retryInMs", JsValue::from(d.as_millis() as f64)));
    }
    if let Some(Failure::Server { code, .. }) = last.map(|a| &a.failure) {
        extra.push(("serverCode", JsValue::from(code.as_str())));
    }
    crate::js::coded_error(code, &message, cause.as_ref(), &extra)
}

/// A short code for a failure kind (used as the `code` of a synthesized `cause`).
pub(crate) fn failure_code(f: &Failure) -> &'static str {
    match f {
        Failure::Network { .. } => "network",
        Failure::Timeout { .. } => "timeout",
        Failure::Http { .. } => "http",
        Failure::SocketClosed { .. } => "socket_closed",
        Failure::Server { .. } => "server_error",
        Failure::Auth { .. } => "unauthorized",
        Failure::Protocol { .. } => "protocol",
        Failure::Validation { .. } => "invalid",
        _ => "error",
    }
}

/// The bridge's own refusal with `code` (retryable only for `leader_changed`: the request
/// goes again through the new leading tab).
pub(crate) fn local_refusal(code: Code, message: &str) -> Attempt {
    let retryable = code == Code::LeaderChanged;
    let failure = Failure::Other { message: format!("{}: {message}", code.as_str()), retryable };
    Attempt { failure, cause: None, refusal: Some(code) }
}
