//! The event log: one sequence for all topics, bounded by count and bytes.
//!
//! Subscribers do not get a copy of each event pushed to them: their writers
//! read from this log with their own cursor. An idle subscriber costs no
//! memory, a slow one costs none either (it falls off the end of the log and
//! is told to resume), and each event is serialized once for everyone.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::time::Instant;

/// One stored event: its topic and its complete `event` frame.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) seq: u64,
    pub(crate) topic: Arc<str>,
    pub(crate) frame: Utf8Bytes,
    /// When it was published (for the publish→deliver latency).
    pub(crate) at: Instant,
}

/// Where a cursor stands relative to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Events were appended to the output (or none were due); the cursor moved.
    Ok,
    /// The events after the cursor were already trimmed: the reader fell behind.
    Lagged,
}

/// What [`History::append_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// The next event, appended.
    Next,
    /// Already held (or older than the log): nothing changed.
    Old,
    /// Events between the last one held and this one are missing: the log starts over at it.
    AfterGap,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct History {
    events: VecDeque<StoredEvent>,
    /// The seq the next event gets (seqs start at 1).
    next_seq: u64,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl History {
    #[cfg(test)]
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> Self {
        Self::starting_at(1, max_events, max_bytes)
    }

    /// An empty log whose next event gets `next_seq` (a node joining a stream that already has events).
    pub(crate) fn starting_at(next_seq: u64, max_events: usize, max_bytes: usize) -> Self {
        Self { events: VecDeque::new(), next_seq: next_seq.max(1), bytes: 0, max_events: max_events.max(1), max_bytes }
    }

    /// The seq the next event gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last seq assigned (0 before the first event).
    pub(crate) fn head(&self) -> u64 {
        self.next_seq - 1
    }

    /// The seq just before the oldest event held: a cursor at or after it can be served.
    pub(crate) fn floor(&self) -> u64 {
        self.events.front().map_or(self.head(), |e| e.seq - 1)
    }

    /// Appends an event built by `make(seq)`, trimming the oldest to stay within bounds.
    pub(crate) fn append(&mut self, topic: Arc<str>, at: Instant, make: impl FnOnce(u64) -> Utf8Bytes) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.push(seq, topic, at, make(seq));
        seq
    }

    /// Appends the event another process numbered `seq` (the cluster's stream).
    /// Seqs must follow each other: an older one is ignored, and one past a gap
    /// empties the log first, so readers behind the gap are told they lagged
    /// rather than silently skipping what is missing.
    pub(crate) fn append_at(&mut self, seq: u64, topic: Arc<str>, at: Instant, frame: Utf8Bytes) -> Appended {
        if seq < self.next_seq {
            return Appended::Old;
        }
        let appended = if seq > self.next_seq {
            self.events.clear();
            self.bytes = 0;
            Appended::AfterGap
        } else {
            Appended::Next
        };
        self.next_seq = seq + 1;
        self.push(seq, topic, at, frame);
        appended
    }

    fn push(&mut self, seq: u64, topic: Arc<str>, at: Instant, frame: Utf8Bytes) {
        self.bytes += frame.len() + topic.len();
        self.events.push_back(StoredEvent { seq, topic, frame, at });
        while self.events.len() > self.max_events || (self.bytes > self.max_bytes && self.events.len() > 1) {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len() + old.topic.len();
            }
        }
    }

    /// Gives `emit` the events after `*cursor` accepted by `matches`, oldest
    /// first, scanning at most `max_scan` events; advances `*cursor` past what it scanned.
    pub(crate) fn read(
        &self,
        cursor: &mut u64,
        max_scan: usize,
        mut matches: impl FnMut(&str) -> bool,
        mut emit: impl FnMut(&StoredEvent),
    ) -> Read {
        if *cursor < self.floor() {
            return Read::Lagged;
        }
        let start = (*cursor - self.floor()) as usize;
        for e in self.events.iter().skip(start).take(max_scan) {
            if matches(&e.topic) {
                emit(e);
            }
            *cursor = e.seq;
        }
        Read::Ok
    }

    /// The bounds: (events, bytes).
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.max_events, self.max_bytes)
    }

    /// Events and bytes held.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.events.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(h: &mut History, topic: &str) -> u64 {
        h.append(topic.into(), Instant::now(), |seq| Utf8Bytes::from(format!("e{seq}")))
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut h = History::new(3, 1000);
        for _ in 0..5 {
            push(&mut h, "t");
        }
        assert_eq!((h.head(), h.floor(), h.size().0), (5, 2, 3));
        let mut h = History::new(100, 10);
        for _ in 0..5 {
            push(&mut h, "t"); // 3 bytes each
        }
        assert_eq!(h.size(), (3, 9));
    }

    #[test]
    fn reads_after_the_cursor_and_detects_lag() {
        let mut h = History::new(3, 1000);
        for t in ["a", "b", "a", "b", "a"] {
            push(&mut h, t);
        }
        let (mut cursor, mut out) = (2, Vec::new());
        assert_eq!(h.read(&mut cursor, 100, |t| t == "a", |e| out.push(e.clone())), Read::Ok);
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 5]);
        assert_eq!(cursor, 5);
        let mut behind = 1;
        assert_eq!(h.read(&mut behind, 100, |_| true, |_| {}), Read::Lagged);
        let mut scan = 2;
        out.clear();
        h.read(&mut scan, 1, |_| true, |e| out.push(e.clone()));
        assert_eq!((scan, out.len()), (3, 1), "scanning is bounded");
    }

    #[test]
    fn events_numbered_elsewhere_follow_each_other_or_restart_the_log() {
        let frame = |seq: u64| Utf8Bytes::from(format!("e{seq}"));
        let mut h = History::starting_at(41, 10, 1000);
        assert_eq!((h.head(), h.floor()), (40, 40), "a log joining a stream at 41 stands at 40");
        assert_eq!(h.append_at(41, "t".into(), Instant::now(), frame(41)), Appended::Next);
        assert_eq!(h.append_at(41, "t".into(), Instant::now(), frame(41)), Appended::Old);
        assert_eq!(h.append_at(42, "t".into(), Instant::now(), frame(42)), Appended::Next);
        assert_eq!(h.append_at(45, "t".into(), Instant::now(), frame(45)), Appended::AfterGap);
        assert_eq!((h.head(), h.floor(), h.size().0), (45, 44, 1));
        let mut behind = 42;
        assert_eq!(h.read(&mut behind, 10, |_| true, |_| {}), Read::Lagged, "a reader in the gap lags");
    }
}
