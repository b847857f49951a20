//! A retry budget: retries may add only a bounded share on top of first attempts.
//!
//! Why: per-call retry limits do not stop a retry storm. When a backend goes
//! down, every caller retries 3-5 times, multiplying the load exactly when the
//! backend can least take it. The budget caps retries *across all calls of a
//! policy*: over a sliding window (default 10 s) retries may number at most
//! `min_retries + ratio × first_attempts` (defaults: 10 + 20 %). The 20 %
//! share means an outage adds at most a fifth to the load; the floor of 10
//! keeps retries working for a page that makes few calls, where one failed
//! call's 3-5 retries are no threat to anyone.
//!
//! The window is kept as 10 slots, so memory is fixed whatever the traffic.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::text;
use crate::time::{Millis, duration_ms, serde_ms};

const SLOTS: usize = 10;

/// Budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetConfig {
    /// Length of the sliding window (default 10 s).
    #[serde(rename = "windowMs", with = "serde_ms")]
    pub window: Duration,
    /// Retries allowed per first attempt in the window (default 0.2).
    pub ratio: f64,
    /// Retries always allowed per window, whatever the traffic (default 10).
    pub min_retries: u32,
}

impl BudgetConfig {
    /// The documented defaults: 10 s window, 20 %, floor of 10.
    pub const DEFAULT: BudgetConfig = BudgetConfig { window: Duration::from_secs(10), ratio: 0.2, min_retries: 10 };

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), InvalidBudget> {
        if self.window < Duration::from_millis(SLOTS as u64) {
            return Err(InvalidBudget::Window);
        }
        if !(0.0..=10.0).contains(&self.ratio) {
            return Err(InvalidBudget::Ratio(self.ratio));
        }
        Ok(())
    }
}

impl Default for BudgetConfig {
    /// See [`BudgetConfig::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why budget settings were refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidBudget {
    /// The window is too short to slice.
    Window,
    /// The ratio is out of range.
    Ratio(f64),
}

impl InvalidBudget {
    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            InvalidBudget::Window => text!("retry budget window must be at least ", SLOTS, " ms"),
            InvalidBudget::Ratio(r) => text!("retry budget ratio must be between 0 and 10, got ", crate::show_f64(*r)),
        }
    }
}

impl std::fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InvalidBudget {}

#[derive(Debug, Clone, Copy)]
struct Slot {
    index: u64,
    firsts: u32,
    retries: u32,
}

const EMPTY: Slot = Slot { index: u64::MAX, firsts: 0, retries: 0 };

/// The budget's state; see the module docs.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    slot_ms: u64,
    slots: [Slot; SLOTS],
    denied: u64,
}

/// The budget's counters over the current window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSnapshot {
    /// First attempts in the window.
    pub first_attempts: u64,
    /// Retries in the window.
    pub retries: u64,
    /// Retries the window allows in total.
    pub allowed: u64,
    /// Retries refused since the budget was created.
    pub denied_total: u64,
}

impl RetryBudget {
    /// A budget with `config`, which must be valid.
    pub fn new(config: BudgetConfig) -> Result<Self, InvalidBudget> {
        config.validate()?;
        Ok(Self { config, slot_ms: duration_ms(config.window) / SLOTS as u64, slots: [EMPTY; SLOTS], denied: 0 })
    }

    fn slot(&mut self, now: Millis) -> &mut Slot {
        let index = now.0 / self.slot_ms;
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot { index, firsts: 0, retries: 0 };
        }
        slot
    }

    /// Sums (first attempts, retries) over the slots inside the window at `now`.
    fn totals(&self, now: Millis) -> (u64, u64) {
        let current = now.0 / self.slot_ms;
        self.slots
            .iter()
            .filter(|s| s.index != u64::MAX && s.index <= current && current - s.index < SLOTS as u64)
            .fold((0, 0), |(f, r), s| (f + u64::from(s.firsts), r + u64::from(s.retries)))
    }

    fn allowed(&self, firsts: u64) -> u64 {
        u64::from(self.config.min_retries) + (self.config.ratio * firsts as f64) as u64
    }

    /// Records a first attempt at `now`.
    pub fn deposit(&mut self, now: Millis) {
        let slot = self.slot(now);
        slot.firsts = slot.firsts.saturating_add(1);
    }

    /// Asks to make one retry at `now`; records it when allowed.
    pub fn try_withdraw(&mut self, now: Millis) -> bool {
        let (firsts, retries) = self.totals(now);
        if retries >= self.allowed(firsts) {
            self.denied += 1;
            return false;
        }
        let slot = self.slot(now);
        slot.retries = slot.retries.saturating_add(1);
        true
    }

    /// The counters over the window at `now`.
    pub fn snapshot(&self, now: Millis) -> BudgetSnapshot {
        let (first_attempts, retries) = self.totals(now);
        BudgetSnapshot { first_attempts, retries, allowed: self.allowed(first_attempts), denied_total: self.denied }
    }

    /// The settings.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        // The default is valid; built directly so no error (with its float) is ever formatted.
        let config = BudgetConfig::DEFAULT;
        Self { config, slot_ms: duration_ms(config.window) / SLOTS as u64, slots: [EMPTY; SLOTS], denied: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = BudgetConfig::default();
        assert_eq!((c.window, c.ratio, c.min_retries), (Duration::from_secs(10), 0.2, 10));
    }

    #[test]
    fn floor_then_share() {
        let mut b = RetryBudget::default();
        let t = Millis(1_000);
        assert_eq!((0..20).filter(|_| b.try_withdraw(t)).count(), 10, "the floor alone");
        for _ in 0..50 {
            b.deposit(t);
        }
        assert_eq!((0..20).filter(|_| b.try_withdraw(t)).count(), 10, "20 % of 50 more");
        let s = b.snapshot(t);
        assert_eq!((s.first_attempts, s.retries, s.allowed, s.denied_total), (50, 20, 20, 20));
    }

    #[test]
    fn window_slides() {
        let mut b = RetryBudget::default();
        assert_eq!((0..10).filter(|_| b.try_withdraw(Millis(0))).count(), 10);
        assert!(!b.try_withdraw(Millis(9_999)));
        assert!(b.try_withdraw(Millis(10_000)), "the first slot has left the window");
    }

    #[test]
    fn rejects_bad_config() {
        assert!(RetryBudget::new(BudgetConfig { window: Duration::from_millis(5), ..BudgetConfig::DEFAULT }).is_err());
        assert!(RetryBudget::new(BudgetConfig { ratio: -1.0, ..BudgetConfig::DEFAULT }).is_err());
        assert!(RetryBudget::new(BudgetConfig { ratio: f64::NAN, ..BudgetConfig::DEFAULT }).is_err());
    }
}
