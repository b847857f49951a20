//! Randomness is injected: jitter draws from a [`RandomSource`] the caller owns.
//!
//! The browser seeds a [`SeededRandom`] from `crypto.getRandomValues`; tests
//! use a fixed seed (or a scripted source) so every delay is reproducible.

/// A source of uniformly distributed numbers in `[0, 1)`.
pub trait RandomSource {
    /// The next number in `[0, 1)`.
    fn next_unit(&mut self) -> f64;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_unit(&mut self) -> f64 {
        (**self).next_unit()
    }
}

/// A small, fast, seedable generator (SplitMix64). Not for cryptography.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A generator whose sequence is fully determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn next_unit(&mut self) -> f64 {
        // 53 random bits give every representable step in [0, 1).
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A source that always returns the same value: handy for tests that need
/// the smallest, middle or largest jitter. Values are clamped into `[0, 1)`.
#[derive(Debug, Clone, Copy)]
pub struct FixedRandom(pub f64);

impl RandomSource for FixedRandom {
    fn next_unit(&mut self) -> f64 {
        clamp_unit(self.0)
    }
}

/// Clamps any float (NaN included) into `[0, 1)`.
pub(crate) fn clamp_unit(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        0.0
    } else if x >= 1.0 {
        1.0 - f64::EPSILON
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_in_range() {
        let mut a = SeededRandom::new(42);
        let mut b = SeededRandom::new(42);
        for _ in 0..10_000 {
            let x = a.next_unit();
            assert_eq!(x, b.next_unit());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(SeededRandom::new(1).next_u64(), SeededRandom::new(2).next_u64());
    }

    #[test]
    fn fixed_is_clamped() {
        assert_eq!(FixedRandom(f64::NAN).next_unit(), 0.0);
        assert_eq!(FixedRandom(-3.0).next_unit(), 0.0);
        assert!(FixedRandom(7.0).next_unit() < 1.0);
    }
}
