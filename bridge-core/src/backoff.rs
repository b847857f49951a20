//! Exponential backoff as an iterator of delays.
//!
//! The n-th retry (counting from 0) waits `base × 2^n`, jittered, then capped
//! at the maximum delay. Jitter spreads clients that failed together so they
//! do not all come back at the same instant (the "thundering herd"); the cap
//! is applied *after* jitter so no delay ever exceeds it.
//!
//! ```
//! use std::time::Duration;
//! use bridge_core::backoff::{Backoff, Jitter};
//! use bridge_core::random::SeededRandom;
//!
//! let delays: Vec<Duration> = Backoff::new(
//!     Duration::from_millis(100), Duration::from_secs(30), Jitter::None, SeededRandom::new(7),
//! )
//! .unwrap()
//! .with_max_retries(4)
//! .collect();
//! assert_eq!(delays, [100, 200, 400, 800].map(Duration::from_millis));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::random::{RandomSource, clamp_unit};
use crate::text;

/// How a computed delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", try_from = "JitterSpec")]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: exactly `base × 2^n`.
    None,
    /// `delay × (1 ± ratio)`, uniformly. The default, with `ratio = 0.2`
    /// (±20 %), as the system this replaces.
    Proportional {
        /// Share of the delay to spread over, in `[0, 1]`.
        ratio: f64,
    },
    /// "Full jitter": uniformly in `[0, delay]`. Spreads load best; the
    /// average wait is half of the exponential one.
    Full,
    /// "Decorrelated jitter": uniformly in `[base, previous × 3]`. Grows
    /// like the exponential but never synchronises clients.
    Decorrelated,
}

/// How a [`Jitter`] is written: `{"mode": "proportional", "ratio": 0.2}`. Read through
/// this plain struct rather than serde's internally tagged enums, which buffer their
/// input and cost the browser module several kilobytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JitterSpec {
    mode: String,
    #[serde(default)]
    ratio: Option<f64>,
}

impl TryFrom<JitterSpec> for Jitter {
    type Error = String;
    fn try_from(s: JitterSpec) -> Result<Self, String> {
        match (s.mode.as_str(), s.ratio) {
            ("none", None) => Ok(Jitter::None),
            ("full", None) => Ok(Jitter::Full),
            ("decorrelated", None) => Ok(Jitter::Decorrelated),
            ("proportional", r) => Ok(Jitter::Proportional { ratio: r.unwrap_or(Jitter::DEFAULT_RATIO) }),
            ("none" | "full" | "decorrelated", Some(_)) => Err(text!("jitter mode \"", s.mode, "\" takes no ratio")),
            (other, _) => {
                Err(text!("unknown jitter mode \"", other, "\"; use none, proportional, full or decorrelated"))
            }
        }
    }
}

/// Tagged by `mode`, as serde writes it.
impl crate::json::ToJson for Jitter {
    fn write_json(&self, out: &mut crate::json::Out) {
        out.object(self);
    }
}

impl crate::json::Fields for Jitter {
    fn write_fields(&self, out: &mut crate::json::Out) {
        use crate::json_fields;
        match self {
            Jitter::None => json_fields!(out; "mode": "none"),
            Jitter::Proportional { ratio } => json_fields!(out; "mode": "proportional", "ratio": ratio),
            Jitter::Full => json_fields!(out; "mode": "full"),
            Jitter::Decorrelated => json_fields!(out; "mode": "decorrelated"),
        }
    }
}

impl Jitter {
    /// The default proportional ratio: ±20 %.
    pub const DEFAULT_RATIO: f64 = 0.2;
}

impl Default for Jitter {
    /// ±20 % proportional jitter.
    fn default() -> Self {
        Jitter::Proportional { ratio: Self::DEFAULT_RATIO }
    }
}

/// Why a backoff could not be built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidBackoff {
    /// The base delay is larger than the cap.
    BaseAboveMax {
        /// The base delay in ms.
        base_ms: u64,
        /// The cap in ms.
        max_ms: u64,
    },
    /// The proportional jitter ratio is not a number in `[0, 1]`.
    JitterRatio(f64),
}

impl InvalidBackoff {
    /// A sentence for a person.
    pub fn message(&self) -> String {
        match self {
            InvalidBackoff::BaseAboveMax { base_ms, max_ms } => {
                text!("base delay (", base_ms, " ms) is larger than the max delay (", max_ms, " ms)")
            }
            InvalidBackoff::JitterRatio(r) => text!("jitter ratio must be between 0 and 1, got ", crate::show_f64(*r)),
        }
    }
}

impl std::fmt::Display for InvalidBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InvalidBackoff {}

/// Checks a base/cap/jitter triple; shared by [`Backoff::new`] and retry policies.
pub(crate) fn validate(base: Duration, max: Duration, jitter: Jitter) -> Result<(), InvalidBackoff> {
    if base > max {
        return Err(InvalidBackoff::BaseAboveMax {
            base_ms: crate::time::duration_ms(base),
            max_ms: crate::time::duration_ms(max),
        });
    }
    if let Jitter::Proportional { ratio } = jitter
        && !(0.0..=1.0).contains(&ratio)
    {
        return Err(InvalidBackoff::JitterRatio(ratio));
    }
    Ok(())
}

/// An iterator of retry delays: exponential, jittered, capped.
///
/// Infinite unless limited with [`Backoff::with_max_retries`].
#[derive(Debug, Clone)]
pub struct Backoff<R> {
    base_ms: f64,
    max_ms: f64,
    jitter: Jitter,
    rng: R,
    attempt: u32,
    previous_ms: f64,
    limit: Option<u32>,
}

impl<R: RandomSource> Backoff<R> {
    /// A backoff starting at `base`, never above `max`, jittered with `jitter`
    /// drawing from `rng`. Fails when `base > max` or the jitter ratio is out of range.
    pub fn new(base: Duration, max: Duration, jitter: Jitter, rng: R) -> Result<Self, InvalidBackoff> {
        validate(base, max, jitter)?;
        Ok(Self::new_unchecked(base, max, jitter, rng))
    }

    /// [`Backoff::new`] for settings already validated.
    pub(crate) fn new_unchecked(base: Duration, max: Duration, jitter: Jitter, rng: R) -> Self {
        let base_ms = base.as_secs_f64() * 1000.0;
        Self { base_ms, max_ms: max.as_secs_f64() * 1000.0, jitter, rng, attempt: 0, previous_ms: base_ms, limit: None }
    }

    /// Stops after `max_retries` delays.
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.limit = Some(max_retries);
        self
    }

    /// How many delays have been produced so far.
    pub fn retries_so_far(&self) -> u32 {
        self.attempt
    }

    /// The un-jittered exponential delay for retry `n`, in ms, capped.
    fn exponential_ms(&self, n: u32) -> f64 {
        // 2^n in floating point saturates to infinity instead of overflowing.
        (self.base_ms * 2f64.powi(n.min(1023) as i32)).min(self.max_ms)
    }
}

impl<R: RandomSource> Iterator for Backoff<R> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.limit.is_some_and(|limit| self.attempt >= limit) {
            return None;
        }
        let exp = self.exponential_ms(self.attempt);
        let jittered = match self.jitter {
            Jitter::None => exp,
            Jitter::Proportional { ratio } => {
                let u = clamp_unit(self.rng.next_unit());
                exp * (1.0 + ratio * (2.0 * u - 1.0))
            }
            Jitter::Full => exp * clamp_unit(self.rng.next_unit()),
            Jitter::Decorrelated => {
                let u = clamp_unit(self.rng.next_unit());
                let high = (self.previous_ms * 3.0).max(self.base_ms);
                self.base_ms + u * (high - self.base_ms)
            }
        };
        let capped = jittered.clamp(0.0, self.max_ms);
        self.previous_ms = capped;
        self.attempt = self.attempt.saturating_add(1);
        Some(ms_to_duration(capped))
    }
}

/// Converts non-negative finite milliseconds to a [`Duration`] (microsecond precision).
pub(crate) fn ms_to_duration(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 { Duration::from_micros((ms * 1000.0) as u64) } else { Duration::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{FixedRandom, SeededRandom};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn default_jitter_is_twenty_percent_proportional() {
        assert_eq!(Jitter::default(), Jitter::Proportional { ratio: 0.2 });
    }

    #[test]
    fn jitter_reads_and_writes_its_mode() {
        let read = |s: &str| serde_json::from_str::<Jitter>(s);
        assert_eq!(read(r#"{"mode":"full"}"#).unwrap(), Jitter::Full);
        assert_eq!(read(r#"{"mode":"proportional","ratio":0.5}"#).unwrap(), Jitter::Proportional { ratio: 0.5 });
        assert_eq!(read(r#"{"mode":"proportional"}"#).unwrap(), Jitter::default());
        assert!(read(r#"{"mode":"full","ratio":1}"#).unwrap_err().to_string().contains("takes no ratio"));
        assert!(read(r#"{"mode":"wild"}"#).unwrap_err().to_string().contains("unknown jitter mode"));
        assert_eq!(serde_json::to_string(&Jitter::Decorrelated).unwrap(), r#"{"mode":"decorrelated"}"#);
    }

    #[test]
    fn floats_show_without_float_formatting() {
        assert_eq!(crate::show_f64(1.5), "1.5");
        assert_eq!(crate::show_f64(-0.25), "-0.25");
        assert_eq!(crate::show_f64(2.0), "2");
        assert_eq!(crate::show_f64(f64::NAN), "NaN");
        assert_eq!(crate::show_f64(0.0001), "0");
    }

    #[test]
    fn doubles_until_the_cap() {
        let d: Vec<_> = Backoff::new(ms(100), ms(1000), Jitter::None, FixedRandom(0.5)).unwrap().take(6).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000].map(ms));
    }

    #[test]
    fn proportional_spreads_twenty_percent_each_way() {
        let low = Backoff::new(ms(1000), ms(60_000), Jitter::default(), FixedRandom(0.0)).unwrap().next();
        let high = Backoff::new(ms(1000), ms(60_000), Jitter::default(), FixedRandom(0.999_999)).unwrap().next();
        assert_eq!(low, Some(ms(800)));
        let high = high.unwrap();
        assert!(high > ms(1199) && high <= ms(1200), "{high:?}");
    }

    #[test]
    fn cap_applies_after_jitter() {
        let mut b = Backoff::new(ms(1000), ms(1000), Jitter::default(), FixedRandom(0.999)).unwrap();
        assert_eq!(b.next(), Some(ms(1000)));
    }

    #[test]
    fn full_jitter_stays_below_the_exponential() {
        let mut b = Backoff::new(ms(100), ms(30_000), Jitter::Full, FixedRandom(0.5)).unwrap();
        assert_eq!(b.next(), Some(ms(50)));
        assert_eq!(b.next(), Some(ms(100)));
    }

    #[test]
    fn decorrelated_grows_from_base() {
        let mut b = Backoff::new(ms(100), ms(30_000), Jitter::Decorrelated, FixedRandom(0.999_999)).unwrap();
        let first = b.next().unwrap();
        assert!(first > ms(299) && first <= ms(300));
        let second = b.next().unwrap();
        assert!(second > ms(890) && second <= ms(900), "{second:?}");
        let mut low = Backoff::new(ms(100), ms(30_000), Jitter::Decorrelated, FixedRandom(0.0)).unwrap();
        assert_eq!(low.next(), Some(ms(100)));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(ms(1), ms(30_000), Jitter::None, SeededRandom::new(1)).unwrap();
        assert_eq!(b.nth(5000), Some(ms(30_000)));
    }

    #[test]
    fn limit_stops_the_iterator() {
        let b = Backoff::new(ms(1), ms(10), Jitter::None, SeededRandom::new(1)).unwrap().with_max_retries(3);
        assert_eq!(b.count(), 3);
    }

    #[test]
    fn rejects_invalid_settings() {
        assert_eq!(
            Backoff::new(ms(10), ms(5), Jitter::None, SeededRandom::new(1)).unwrap_err(),
            InvalidBackoff::BaseAboveMax { base_ms: 10, max_ms: 5 }
        );
        assert!(Backoff::new(ms(1), ms(5), Jitter::Proportional { ratio: 1.5 }, SeededRandom::new(1)).is_err());
        assert!(Backoff::new(ms(1), ms(5), Jitter::Proportional { ratio: f64::NAN }, SeededRandom::new(1)).is_err());
    }
}
