//! Time for the whole server: the wall clock for timestamps people read
//! (`unix_ms`), and tokio's clock and timers for bridge-core's retry driver
//! (so tests can pause and advance it).

use std::time::Duration;

use bridge_core::retry::driver::{Clock, Sleeper};
use bridge_core::time::Millis;
use tokio::time::Instant;

/// Milliseconds since the Unix epoch, from the wall clock.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Tokio time since an origin, for the retry driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock(pub(crate) Instant);

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        Millis(self.0.elapsed().as_millis() as u64)
    }
    fn now_micros(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// Tokio timers for the retry driver.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(d)
    }
}

/// A random 64-bit value as 16 hex digits (std's hasher keys are randomly seeded
/// per process and per call): epochs, generated node ids, key prefixes.
pub(crate) fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", h.finish())
}
