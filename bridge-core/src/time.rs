//! Time as a value the caller passes in.
//!
//! bridge-core never reads a clock: `std::time::Instant::now()` panics on
//! wasm32-unknown-unknown, and tests must be able to replay any sequence of
//! instants. The browser passes `performance.timeOrigin + performance.now()`,
//! the server passes milliseconds since it started; only differences between
//! two [`Millis`] from the same source are meaningful.

use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in whole milliseconds on a monotonic clock chosen by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl crate::json::ToJson for Millis {
    fn write_json(&self, out: &mut crate::json::Out) {
        out.unsigned(self.0);
    }
}

impl Millis {
    /// The clock's origin.
    pub const ZERO: Millis = Millis(0);

    /// Milliseconds since the clock's origin.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Millis {
    type Output = Millis;
    fn add(self, rhs: Duration) -> Millis {
        Millis(self.0.saturating_add(duration_ms(rhs)))
    }
}

impl Sub<Duration> for Millis {
    type Output = Millis;
    fn sub(self, rhs: Duration) -> Millis {
        Millis(self.0.saturating_sub(duration_ms(rhs)))
    }
}

/// Whole milliseconds, as [`serde_ms`] writes it (durations on the wire are ms);
/// one copy of the conversion for every duration written.
impl crate::json::ToJson for Duration {
    #[inline(never)]
    fn write_json(&self, out: &mut crate::json::Out) {
        out.unsigned(duration_ms(*self));
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serde helpers that write a [`Duration`] as whole milliseconds (`"base_delay_ms": 100`).
pub mod serde_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as integer milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::duration_ms(*d))
    }

    /// Reads integer milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5) - Duration::from_millis(10), Millis(0));
        assert_eq!(Millis(u64::MAX) + Duration::from_secs(1), Millis(u64::MAX));
        assert_eq!(Millis(3).saturating_since(Millis(10)), Duration::ZERO);
        assert_eq!(Millis(10).saturating_since(Millis(3)), Duration::from_millis(7));
    }
}
