//! A fixed-size log-linear latency histogram (microseconds).
//!
//! Values are grouped by power of two, each power split into 8 linear
//! sub-buckets, so any quantile is within 12.5 % of the true value while the
//! whole histogram is a fixed array: memory does not grow with the number of
//! samples. Range: 0 µs to about 2^40 µs (12 days); larger values land in the
//! last bucket.

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: usize = 40;
const BUCKETS: usize = SUB + (MAX_EXP - SUB_BITS as usize) * SUB;

/// Latency histogram; see the module docs.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("count", &self.total).field("max_us", &self.max_us).finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: Box::new([0; BUCKETS]), total: 0, sum_us: 0, min_us: u64::MAX, max_us: 0 }
    }
}

/// Summary statistics of a histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Largest sample, ms.
    pub max_ms: f64,
}

crate::json_object!(LatencySummary, |s|
    "count": s.count,
    "p50Ms": s.p50_ms,
    "p90Ms": s.p90_ms,
    "p99Ms": s.p99_ms,
    "meanMs": s.mean_ms,
    "maxMs": s.max_ms,
);

fn bucket_of(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let sub = ((us >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    let index = SUB + (exp - SUB_BITS) as usize * SUB + sub;
    index.min(BUCKETS - 1)
}

/// The largest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i - SUB) / SUB + SUB_BITS as usize;
    let sub = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS as usize);
    (1u64 << exp) + (sub + 1) * width - 1
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, us: u64) {
        let b = &mut self.counts[bucket_of(us)];
        *b = b.saturating_add(1);
        self.total += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` in `[0, 1]`, in µs: the upper edge of the
    /// bucket holding it, clamped to the observed min/max. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return bucket_high(i).clamp(self.min_us, self.max_us);
            }
        }
        self.max_us
    }

    /// p50/p90/p99, mean and max in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.total,
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            mean_ms: if self.total == 0 { 0.0 } else { self.sum_us as f64 / self.total as f64 / 1000.0 },
            max_ms: ms(self.max_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut prev = None;
        for i in 0..BUCKETS - 1 {
            let high = bucket_high(i);
            assert_eq!(bucket_of(high), i, "bucket {i}");
            assert_eq!(bucket_of(high + 1), i + 1, "bucket {i}");
            if let Some(p) = prev {
                assert!(high > p);
            }
            prev = Some(high);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_an_eighth() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact <= 0.125, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.quantile(0.0), 1);
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert!((s.mean_ms - 5.0005).abs() < 1e-9);
        assert_eq!(s.max_ms, 10.0);
    }

    #[test]
    fn merging_adds_samples() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        (1..=100).for_each(|v| a.record(v));
        (101..=200).for_each(|v| b.record(v));
        a.merge(&b);
        assert_eq!((a.count(), a.quantile(1.0), a.quantile(0.0)), (200, 200, 1));
        a.merge(&Histogram::default());
        assert_eq!(a.count(), 200);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(Histogram::default().summary(), LatencySummary::default());
        let mut h = Histogram::default();
        h.record(1234);
        assert_eq!(h.quantile(0.5), 1234, "clamped to the observed range");
    }
}
