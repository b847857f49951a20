//! Handshake admission for the whole node: a token bucket
//! (`limits.handshakes_per_sec`, `limits.handshake_burst`), and for each
//! handshake it refuses, a turn. Refused clients are told to come back at
//! successive turns one token apart, so a reconnect storm (a node of the
//! cluster died) is spread over exactly the time the node needs to admit it,
//! instead of everyone retrying at the same second.

use std::time::Duration;

use tokio::time::Instant;

use super::bucket::TokenBucket;

/// Turns are handed out at most this far ahead.
const HORIZON: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Admission {
    bucket: TokenBucket,
    /// One token's worth of time.
    interval: Duration,
    /// The next turn to hand out.
    next_turn: Instant,
}

impl Admission {
    pub(crate) fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(f64::from(per_sec), f64::from(burst), now),
            interval: Duration::from_secs_f64(1.0 / f64::from(per_sec.max(1))),
            next_turn: now,
        }
    }

    /// Admits a handshake, or hands out a turn: how long to wait before trying again.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let Err(wait) = self.bucket.take(now) else { return Ok(()) };
        let turn = self.next_turn.max(now + wait);
        self.next_turn = (turn + self.interval).min(now + HORIZON);
        Err(turn - now)
    }

    /// Whether a handshake would be admitted now (taking nothing), else how long until the next free turn.
    pub(crate) fn would_admit(&mut self, now: Instant) -> Result<(), Duration> {
        self.bucket.peek(now).map_err(|wait| self.next_turn.max(now + wait) - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_handshakes_get_successive_turns_one_token_apart() {
        let t0 = Instant::now();
        let mut a = Admission::new(100, 2, t0);
        assert!(a.admit(t0).is_ok() && a.admit(t0).is_ok(), "the burst is admitted at once");
        let turns: Vec<u128> = (0..4).map(|_| a.admit(t0).unwrap_err().as_millis()).collect();
        assert_eq!(turns, [10, 20, 30, 40], "each refused client gets its own turn, 10 ms apart at 100/s");
        assert_eq!(a.would_admit(t0).unwrap_err().as_millis(), 50, "a probe hears the next free turn");
        // Coming back at its turn, a client finds a token.
        assert!(a.admit(t0 + Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn turns_never_reach_past_the_horizon() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, 1, t0);
        let _ = a.admit(t0);
        let last = (0..100).map(|_| a.admit(t0).unwrap_err()).last().unwrap();
        assert!(last <= HORIZON, "{last:?}");
    }
}
