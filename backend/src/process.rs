//! This process's memory and CPU, from /proc (Linux); zeros elsewhere.

use std::time::Duration;

use tokio::time::Instant;

/// Resident set size in bytes.
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU time used so far (user + system).
fn cpu_time() -> Duration {
    // Fields 14 and 15 (utime, stime) in clock ticks; the command name may hold spaces, so split after ')'.
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    // Linux reports in USER_HZ, 100 on every mainstream configuration.
    Duration::from_millis(ticks.unwrap_or(0) * 10)
}

/// Measures CPU use between two readings.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    last: (Instant, Duration),
    percent: f64,
}

impl CpuMeter {
    pub(crate) fn new() -> Self {
        Self { last: (Instant::now(), cpu_time()), percent: 0.0 }
    }

    /// CPU use since the previous call, in percent of one core (refreshed at most once a second).
    pub(crate) fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let wall = now.saturating_duration_since(self.last.0);
        if wall >= Duration::from_secs(1) {
            let cpu = cpu_time();
            self.percent = (cpu.saturating_sub(self.last.1)).as_secs_f64() / wall.as_secs_f64() * 100.0;
            self.last = (now, cpu);
        }
        self.percent
    }

    /// Total CPU time used.
    pub(crate) fn total(&self) -> Duration {
        cpu_time()
    }
}
