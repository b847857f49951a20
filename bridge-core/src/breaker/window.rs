//! The last N call outcomes as a fixed bitset, for the failure-rate trigger.

use super::config::MAX_RATE_WINDOW;

const WORDS: usize = (MAX_RATE_WINDOW as usize).div_ceil(64);

/// A ring of the last `len` outcomes (true = failure). Fixed size: 128 bytes.
#[derive(Debug, Clone)]
pub(crate) struct OutcomeWindow {
    bits: [u64; WORDS],
    len: u32,
    next: u32,
    filled: u32,
    failures: u32,
}

impl OutcomeWindow {
    pub(crate) fn new(len: u32) -> Self {
        Self { bits: [0; WORDS], len: len.clamp(1, MAX_RATE_WINDOW), next: 0, filled: 0, failures: 0 }
    }

    pub(crate) fn push(&mut self, failed: bool) {
        let (word, bit) = ((self.next / 64) as usize, self.next % 64);
        let mask = 1u64 << bit;
        if self.filled == self.len && self.bits[word] & mask != 0 {
            self.failures -= 1;
        }
        if failed {
            self.bits[word] |= mask;
            self.failures += 1;
        } else {
            self.bits[word] &= !mask;
        }
        self.next = (self.next + 1) % self.len;
        self.filled = (self.filled + 1).min(self.len);
    }

    /// (calls remembered, failures among them)
    pub(crate) fn counts(&self) -> (u32, u32) {
        (self.filled, self.failures)
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_last_len() {
        let mut w = OutcomeWindow::new(3);
        for f in [true, true, false] {
            w.push(f);
        }
        assert_eq!(w.counts(), (3, 2));
        w.push(false);
        assert_eq!(w.counts(), (3, 1));
        w.push(false);
        assert_eq!(w.counts(), (3, 0));
        w.clear();
        assert_eq!(w.counts(), (0, 0));
    }
}
