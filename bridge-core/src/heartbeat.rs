//! When a quiet connection counts as dead.
//!
//! The client pings after a heartbeat interval of silence, and the connection
//! is dead when a ping stays unanswered for an interval. It is judged by the
//! ping, not by the time since the last frame: a hidden tab's timers fire late
//! (Chromium runs them once a minute after five minutes hidden), so "nothing
//! heard for two intervals" would be true of a healthy connection whose pong
//! came back at once, and would close it for nothing.

/// What to do at a heartbeat tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Send a ping.
    Ping,
    /// A ping sent at least an interval ago is still unanswered: close.
    Dead,
}

/// One connection's heartbeat; times in ms on any monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heartbeat {
    interval_ms: f64,
    /// When the oldest unanswered ping went out.
    unanswered_since: Option<f64>,
}

impl Heartbeat {
    /// A heartbeat that pings every `interval_ms` of silence.
    pub fn new(interval_ms: f64) -> Self {
        Self { interval_ms, unanswered_since: None }
    }

    /// A frame arrived (any frame proves the connection alive).
    pub fn heard(&mut self) {
        self.unanswered_since = None;
    }

    /// The interval passed with nothing heard.
    pub fn tick(&mut self, now: f64) -> Tick {
        match self.unanswered_since {
            // A timer may fire a little early; half an interval is plenty for a pong on a live socket.
            Some(sent) if now - sent >= self.interval_ms / 2.0 => Tick::Dead,
            Some(_) => Tick::Ping,
            None => {
                self.unanswered_since = Some(now);
                Tick::Ping
            }
        }
    }

    /// How long the unanswered ping has waited, for the close message.
    pub fn waited_ms(&self, now: f64) -> f64 {
        self.unanswered_since.map_or(0.0, |s| now - s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_live_connection_pings_and_stays() {
        let mut h = Heartbeat::new(10_000.0);
        for i in 1..=5 {
            assert_eq!(h.tick(i as f64 * 10_000.0), Tick::Ping);
            h.heard();
        }
    }

    #[test]
    fn an_unanswered_ping_is_dead_one_interval_later() {
        let mut h = Heartbeat::new(10_000.0);
        assert_eq!(h.tick(10_000.0), Tick::Ping);
        assert_eq!(h.tick(20_000.0), Tick::Dead);
        assert_eq!(h.waited_ms(20_000.0), 10_000.0);
    }

    #[test]
    fn a_throttled_timer_does_not_kill_a_connection_that_answered() {
        // Hidden tab: the ticks come a minute apart, the pongs at once.
        let mut h = Heartbeat::new(10_000.0);
        let mut now = 0.0;
        for _ in 0..10 {
            now += 60_000.0;
            assert_eq!(h.tick(now), Tick::Ping);
            h.heard();
        }
    }

    #[test]
    fn a_throttled_timer_still_finds_a_dead_connection() {
        let mut h = Heartbeat::new(10_000.0);
        assert_eq!(h.tick(60_000.0), Tick::Ping);
        assert_eq!(h.tick(120_000.0), Tick::Dead);
    }

    #[test]
    fn an_early_tick_pings_again_instead_of_closing() {
        let mut h = Heartbeat::new(10_000.0);
        assert_eq!(h.tick(10_000.0), Tick::Ping);
        assert_eq!(h.tick(14_000.0), Tick::Ping);
        assert_eq!(h.tick(15_000.0), Tick::Dead, "judged from the first unanswered ping");
    }

    #[test]
    fn any_frame_answers() {
        let mut h = Heartbeat::new(1_000.0);
        assert_eq!(h.tick(1_000.0), Tick::Ping);
        h.heard();
        assert_eq!(h.tick(5_000.0), Tick::Ping);
        assert_eq!(h.waited_ms(5_500.0), 500.0);
    }
}
