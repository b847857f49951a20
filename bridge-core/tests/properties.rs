//! Property tests of bridge-core against small reference models, 1,000+ cases each.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use bridge_core::backoff::{Backoff, Jitter};
use bridge_core::breaker::{BreakerConfig, BreakerState, CircuitBreaker, Permit};
use bridge_core::protocol::{decode_client, decode_server};
use bridge_core::random::{RandomSource, SeededRandom};
use bridge_core::retry::{BudgetConfig, RetryBudget};
use bridge_core::time::Millis;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 1000, ..ProptestConfig::default() }
}

/// A random source replaying a scripted list (cycled).
struct Script(Vec<f64>, usize);

impl RandomSource for Script {
    fn next_unit(&mut self) -> f64 {
        let v = self.0[self.1 % self.0.len()];
        self.1 += 1;
        v
    }
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        (0.0..=1.0f64).prop_map(|ratio| Jitter::Proportional { ratio }),
        Just(Jitter::Full),
        Just(Jitter::Decorrelated),
    ]
}

/// The reference formula for one delay, in ms, from the previous delay and a draw `u`.
fn model_delay(jitter: Jitter, base: f64, cap: f64, n: u32, prev: f64, u: f64) -> f64 {
    let exp = (base * 2f64.powi(n.min(1023) as i32)).min(cap);
    let d = match jitter {
        Jitter::Proportional { ratio } => exp * (1.0 + ratio * (2.0 * u - 1.0)),
        Jitter::Full => exp * u,
        Jitter::Decorrelated => base + u * ((prev * 3.0).max(base) - base),
        _ => exp,
    };
    d.clamp(0.0, cap)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn delays_never_exceed_the_cap(
        base in 0u64..5_000, extra in 0u64..60_000, jitter in jitter(),
        draws in prop::collection::vec(0.0..1.0f64, 1..16), n in 1usize..80,
    ) {
        let (base, cap) = (Duration::from_millis(base), Duration::from_millis(base + extra));
        for d in Backoff::new(base, cap, jitter, Script(draws, 0)).unwrap().take(n) {
            prop_assert!(d <= cap, "{d:?} > {cap:?}");
        }
    }

    #[test]
    fn delays_match_the_model_and_are_reproducible(
        seed: u64, base in 1u64..2_000, extra in 0u64..60_000, jitter in jitter(), n in 1usize..40,
    ) {
        let (base_ms, cap_ms) = (base as f64, (base + extra) as f64);
        let make = || Backoff::new(
            Duration::from_millis(base), Duration::from_millis(base + extra), jitter, SeededRandom::new(seed),
        ).unwrap();
        let first: Vec<_> = make().take(n).collect();
        let second: Vec<_> = make().take(n).collect();
        prop_assert_eq!(&first, &second, "same seed, same delays");
        let mut draws = SeededRandom::new(seed);
        let mut prev = base_ms;
        for (i, got) in first.iter().enumerate() {
            let u = match jitter { Jitter::None => 0.0, _ => draws.next_unit() };
            let want = model_delay(jitter, base_ms, cap_ms, i as u32, prev, u);
            prev = want;
            let got_ms = got.as_secs_f64() * 1000.0;
            prop_assert!((got_ms - want).abs() < 0.002, "delay {i}: {got_ms} vs model {want}");
        }
    }
}

/// What can happen to a breaker.
#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Finish the k-th outstanding call (mod count) with success or failure.
    Finish(usize, bool),
    Abandon(usize),
    Advance(u64),
    Reset,
    Isolate,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => Just(Op::Acquire),
            6 => (any::<usize>(), any::<bool>()).prop_map(|(k, ok)| Op::Finish(k, ok)),
            1 => any::<usize>().prop_map(Op::Abandon),
            4 => (0u64..400).prop_map(Op::Advance),
            1 => Just(Op::Reset),
            1 => Just(Op::Isolate),
        ],
        1..200,
    )
}

/// The breaker rules written as plainly as possible.
struct Model {
    cfg: BreakerConfig,
    state: BreakerState,
    open_until: u64,
    consecutive: u32,
    trial_successes: u32,
    generation: u64,
    /// Outstanding calls: (generation, is_trial).
    trials_in_flight: u32,
}

impl Model {
    fn enter(&mut self, s: BreakerState) {
        self.state = s;
        self.generation += 1;
        self.trials_in_flight = 0;
        self.trial_successes = 0;
        if s == BreakerState::Closed {
            self.consecutive = 0;
        }
    }
    fn tick(&mut self, now: u64) {
        if self.state == BreakerState::Open && now >= self.open_until {
            self.enter(BreakerState::HalfOpen);
        }
    }
    fn open(&mut self, now: u64) {
        self.open_until = now + self.cfg.reset_timeout.as_millis() as u64;
        self.enter(BreakerState::Open);
    }
    fn acquire(&mut self, now: u64) -> Option<(u64, bool)> {
        self.tick(now);
        match self.state {
            BreakerState::Closed => Some((self.generation, false)),
            BreakerState::HalfOpen if self.trials_in_flight < self.cfg.half_open_max_calls => {
                self.trials_in_flight += 1;
                Some((self.generation, true))
            }
            _ => None,
        }
    }
    fn finish(&mut self, now: u64, (generation, trial): (u64, bool), ok: bool) {
        self.tick(now);
        if generation != self.generation {
            return;
        }
        match (self.state, ok) {
            (BreakerState::Closed, true) => self.consecutive = 0,
            (BreakerState::Closed, false) => {
                self.consecutive += 1;
                if self.consecutive >= self.cfg.failure_threshold {
                    self.open(now);
                }
            }
            (BreakerState::HalfOpen, true) if trial => {
                self.trials_in_flight -= 1;
                self.trial_successes += 1;
                if self.trial_successes >= self.cfg.success_threshold {
                    self.enter(BreakerState::Closed);
                }
            }
            (BreakerState::HalfOpen, false) if trial => {
                self.consecutive += 1;
                self.open(now);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn breaker_follows_the_rules(
        ops in ops(), threshold in 1u32..6, max_calls in 1u32..4, successes in 1u32..4, reset in 1u64..500,
    ) {
        let cfg = BreakerConfig {
            failure_threshold: threshold,
            reset_timeout: Duration::from_millis(reset),
            half_open_max_calls: max_calls,
            success_threshold: successes,
            failure_rate: None,
        };
        let mut real = CircuitBreaker::new("p", cfg, Millis(0));
        let mut model = Model {
            cfg, state: BreakerState::Closed, open_until: 0, consecutive: 0,
            trial_successes: 0, generation: 0, trials_in_flight: 0,
        };
        let mut now = 0u64;
        let mut outstanding: Vec<(Permit, (u64, bool))> = Vec::new();
        let mut max_seen_trials = 0u32;
        for op in ops {
            match op {
                Op::Acquire => {
                    let got = real.try_acquire(Millis(now));
                    let want = model.acquire(now);
                    prop_assert_eq!(got.is_ok(), want.is_some(), "admission differs at {} ms", now);
                    if let (Ok(p), Some(m)) = (got, want) {
                        prop_assert_eq!(p.is_trial(), m.1);
                        outstanding.push((p, m));
                    }
                }
                Op::Finish(k, ok) if !outstanding.is_empty() => {
                    let (p, m) = outstanding.remove(k % outstanding.len());
                    if ok { real.on_success(p, Millis(now)) } else { real.on_failure(p, Millis(now)) }
                    model.finish(now, m, ok);
                }
                Op::Abandon(k) if !outstanding.is_empty() => {
                    let (p, m) = outstanding.remove(k % outstanding.len());
                    real.on_abandoned(p, Millis(now));
                    model.tick(now);
                    if m.0 == model.generation && m.1 && model.state == BreakerState::HalfOpen {
                        model.trials_in_flight -= 1;
                    }
                }
                Op::Advance(ms) => now += ms,
                Op::Reset => {
                    real.reset(Millis(now));
                    model.tick(now);
                    model.consecutive = 0;
                    if model.state != BreakerState::Closed { model.enter(BreakerState::Closed); }
                }
                Op::Isolate => {
                    real.isolate(Millis(now));
                    model.tick(now);
                    if model.state != BreakerState::ForcedOpen { model.enter(BreakerState::ForcedOpen); }
                }
                _ => {}
            }
            model.tick(now);
            prop_assert_eq!(real.state(Millis(now)), model.state, "state differs at {} ms", now);
            prop_assert_eq!(real.consecutive_failures(), model.consecutive);
            // The half-open limit: trial calls of the current generation never exceed it.
            let snap = real.snapshot(Millis(now), 0);
            prop_assert!(snap.half_open_in_flight <= max_calls);
            prop_assert_eq!(snap.half_open_in_flight, model.trials_in_flight);
            max_seen_trials = max_seen_trials.max(snap.half_open_in_flight);
            // Every recorded transition moves to a different state and never goes back in time.
            let ts: Vec<_> = real.transitions().collect();
            for pair in ts.windows(2) {
                prop_assert!(pair[0].at <= pair[1].at);
                prop_assert_eq!(pair[0].to, pair[1].from);
            }
            for t in &ts {
                prop_assert_ne!(t.from, t.to);
            }
        }
        prop_assert!(max_seen_trials <= max_calls);
    }
}

#[derive(Debug, Clone)]
enum BudgetOp {
    First,
    Retry,
    Advance(u64),
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn budget_never_exceeds_its_share(
        ops in prop::collection::vec(prop_oneof![
            3 => Just(BudgetOp::First), 3 => Just(BudgetOp::Retry), 1 => (0u64..3000).prop_map(BudgetOp::Advance),
        ], 1..400),
        ratio in 0.0..1.0f64, floor in 0u32..15, window_s in 1u64..20,
    ) {
        let cfg = BudgetConfig { window: Duration::from_secs(window_s), ratio, min_retries: floor };
        let mut budget = RetryBudget::new(cfg).unwrap();
        let slot = window_s * 1000 / 10;
        // Reference: every event with its time; the window is the 10 slots ending at now's slot.
        let (mut firsts, mut retries): (Vec<u64>, Vec<u64>) = (vec![], vec![]);
        let mut now = 0u64;
        for op in ops {
            let in_window = |t: &&u64| now / slot - **t / slot < 10;
            match op {
                BudgetOp::First => { budget.deposit(Millis(now)); firsts.push(now); }
                BudgetOp::Retry => {
                    let f = firsts.iter().filter(in_window).count() as u64;
                    let r = retries.iter().filter(in_window).count() as u64;
                    let allowed = u64::from(floor) + (ratio * f as f64) as u64;
                    let granted = budget.try_withdraw(Millis(now));
                    prop_assert_eq!(granted, r < allowed, "at {} ms: {} firsts, {} retries", now, f, r);
                    if granted {
                        retries.push(now);
                        let retries_now = r + 1;
                        prop_assert!(retries_now <= allowed, "the window's retries stay within its share");
                    }
                }
                BudgetOp::Advance(ms) => now += ms,
            }
        }
    }

    #[test]
    fn decoding_any_text_never_panics(text in ".{0,300}") {
        let _ = decode_client(&text);
        let _ = decode_server(&text);
    }

    #[test]
    fn decoding_frame_like_json_never_panics(
        kind in prop::sample::select(vec!["hello", "ping", "subscribe", "publish", "request", "response",
            "register", "send", "ack", "broadcast", "discover", "event", "error", "welcome", "x"]),
        id in prop_oneof![Just("1".to_owned()), Just("\"a\"".to_owned()), Just("-1".to_owned()), Just("null".to_owned()), Just("{}".to_owned())],
        extra in "[\\[\\]{}\",:a-z0-9 ]{0,60}",
    ) {
        let text = format!(r#"{{"type":"{kind}","id":{id},{extra}}}"#);
        let _ = decode_client(&text);
        let _ = decode_server(&text);
    }

    #[test]
    fn decoding_any_bytes_as_lossy_text_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode_client(&text);
    }
}
