//! One connection's subscriptions and its cursor into the event log. Owned by
//! the connection's writer, so subscribing, replaying and live delivery
//! happen in one order: ack, then `reset` if needed, then replayed events,
//! then live events, never interleaved.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{Ack, ErrorCode, FrameError, Id, Position, Reset, ServerFrame};
use tokio::sync::watch;

use super::EvolutionHub;
use super::history::{Read, StoredEvent};
use crate::ws::encode;

/// Events scanned per batch: bounds the time the log is locked and the size of a write.
const MAX_SCAN: usize = 512;

#[derive(Debug, Default)]
struct Patterns {
    all: bool,
    exact: HashSet<String>,
    /// "prefix." for each "prefix.*".
    prefixes: Vec<String>,
}

impl Patterns {
    fn from(set: &BTreeSet<String>) -> Self {
        let mut p = Patterns::default();
        for s in set {
            if s == "*" {
                p.all = true;
            } else if let Some(prefix) = s.strip_suffix('*') {
                p.prefixes.push(prefix.to_owned());
            } else {
                p.exact.insert(s.clone());
            }
        }
        p
    }

    fn matches(&self, topic: &str) -> bool {
        self.all
            || self.exact.contains(topic)
            || self.prefixes.iter().any(|p| topic.len() > p.len() && topic.starts_with(p.as_str()))
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Feed {
    hub: Arc<EvolutionHub>,
    head: watch::Receiver<u64>,
    cursor: u64,
    set: BTreeSet<String>,
    patterns: Patterns,
    max: usize,
}

impl Feed {
    pub(crate) fn new(hub: Arc<EvolutionHub>, max_subscriptions: usize) -> Self {
        let head = hub.watch_head();
        Self { hub, head, cursor: 0, set: BTreeSet::new(), patterns: Patterns::default(), max: max_subscriptions }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.set.is_empty()
    }

    /// Events are waiting to be read.
    pub(crate) fn pending(&self) -> bool {
        self.is_active() && *self.head.borrow() > self.cursor
    }

    /// The last seq this connection has been given (or skipped as not matching).
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Waits until something is published (only meaningful while active).
    pub(crate) async fn changed(&mut self) {
        if self.head.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn reset_frame(&self, since: &Position, floor: u64) -> Utf8Bytes {
        let reason = if since.epoch == self.hub.epoch() { "history_trimmed" } else { "epoch_changed" };
        encode(&ServerFrame::Reset(Reset { epoch: self.hub.epoch().to_owned(), seq: floor, reason: reason.into() }))
    }

    /// Adds `patterns`; returns the frames to write now, in order.
    pub(crate) fn subscribe(
        &mut self,
        id: Id,
        patterns: Vec<String>,
        since: Option<Position>,
    ) -> Result<Vec<Utf8Bytes>, FrameError> {
        let new: BTreeSet<String> = patterns.into_iter().filter(|p| !self.set.contains(p)).collect();
        if self.set.len() + new.len() > self.max {
            return Err(FrameError {
                code: ErrorCode::LimitExceeded,
                message: format!("a connection may hold at most {} subscriptions", self.max),
                id: Some(id),
            });
        }
        // Read head and floor before anything else: events published from here on are live.
        let head = self.hub.head();
        let floor = self.hub.floor();
        let ack = Ack { position: Some(self.hub.position(head)), ..Ack::new(id) };
        let mut frames = vec![encode(&ServerFrame::Ack(ack))];
        let resume_from = |frames: &mut Vec<Utf8Bytes>, since: &Position| {
            if since.epoch == self.hub.epoch() && since.seq >= floor {
                since.seq.min(head)
            } else {
                frames.push(self.reset_frame(since, floor));
                floor
            }
        };
        if !self.is_active() {
            // The feed starts now: place the cursor; live delivery replays from it.
            self.cursor = match &since {
                Some(since) => resume_from(&mut frames, since),
                None => head,
            };
        } else if let Some(since) = &since {
            // Already streaming at `cursor`: the new patterns' events up to it come from the log now.
            let start = resume_from(&mut frames, since);
            let only_new = Patterns::from(&new);
            let (mut scan, mut out) = (start, Vec::new());
            while scan < self.cursor {
                let before = scan;
                if self.hub.read(&mut scan, MAX_SCAN, |t| only_new.matches(t), &mut out) == Read::Lagged {
                    // Trimmed while we were reading: say so, and go on from what is left.
                    let floor = self.hub.floor();
                    let reset =
                        Reset { epoch: self.hub.epoch().to_owned(), seq: floor, reason: "history_trimmed".into() };
                    frames.push(encode(&ServerFrame::Reset(reset)));
                    scan = floor;
                    continue;
                }
                frames.extend(out.drain(..).filter(|e| e.seq <= self.cursor).map(|e| e.frame));
                if scan == before {
                    break;
                }
            }
        }
        self.set.extend(new);
        self.patterns = Patterns::from(&self.set);
        Ok(frames)
    }

    /// Removes `patterns`; returns the ack.
    pub(crate) fn unsubscribe(&mut self, id: Id, patterns: &[String]) -> Utf8Bytes {
        for p in patterns {
            self.set.remove(p);
        }
        self.patterns = Patterns::from(&self.set);
        let ack = Ack { position: Some(self.hub.position(self.cursor)), ..Ack::new(id) };
        encode(&ServerFrame::Ack(ack))
    }

    /// Reads the next batch of matching events into `out`.
    pub(crate) fn next_batch(&mut self, out: &mut Vec<StoredEvent>) -> Read {
        let patterns = &self.patterns;
        self.hub.read(&mut self.cursor, MAX_SCAN, |t| patterns.matches(t), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use bridge_core::protocol::Json;

    fn hub(events: usize) -> Arc<EvolutionHub> {
        Arc::new(EvolutionHub::new(&config::Evolution { history_events: events, ..Default::default() }))
    }

    fn publish(hub: &EvolutionHub, n: u64, topic: &str) {
        hub.publish("p", &Id::Num(n), topic, &Json::null());
    }

    fn kinds(frames: &[Utf8Bytes]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
                match v["type"].as_str().unwrap() {
                    "event" => format!("event{}", v["seq"]),
                    "reset" => format!("reset{}:{}", v["seq"], v["reason"].as_str().unwrap()),
                    t => t.to_owned(),
                }
            })
            .collect()
    }

    fn drain(feed: &mut Feed) -> Vec<u64> {
        let mut out = Vec::new();
        while feed.pending() {
            assert_eq!(feed.next_batch(&mut out), Read::Ok);
        }
        out.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn resumes_from_since_or_resets() {
        let hub = hub(3);
        for n in 1..=5 {
            publish(&hub, n, "t");
        }
        let mut feed = Feed::new(Arc::clone(&hub), 10);
        let frames = feed.subscribe(Id::Num(1), vec!["t".into()], Some(hub.position(3))).unwrap();
        assert_eq!(kinds(&frames), ["ack"]);
        assert_eq!(drain(&mut feed), [4, 5]);

        let mut feed = Feed::new(Arc::clone(&hub), 10);
        let frames = feed.subscribe(Id::Num(1), vec!["t".into()], Some(hub.position(1))).unwrap();
        assert_eq!(kinds(&frames), ["ack", "reset2:history_trimmed"]);
        assert_eq!(drain(&mut feed), [3, 4, 5]);

        let mut feed = Feed::new(Arc::clone(&hub), 10);
        let old = Position { epoch: "old".into(), seq: 4 };
        let frames = feed.subscribe(Id::Num(1), vec!["t".into()], Some(old)).unwrap();
        assert_eq!(kinds(&frames), ["ack", "reset2:epoch_changed"]);
        assert_eq!(drain(&mut feed), [3, 4, 5]);

        let mut feed = Feed::new(Arc::clone(&hub), 10);
        feed.subscribe(Id::Num(1), vec!["t".into()], None).unwrap();
        assert!(!feed.pending(), "no since: only new events");
    }

    #[test]
    fn adding_topics_while_streaming_replays_only_the_new_ones() {
        let hub = hub(100);
        let mut feed = Feed::new(Arc::clone(&hub), 10);
        feed.subscribe(Id::Num(1), vec!["a".into()], Some(hub.position(0))).unwrap();
        for (n, t) in [(1, "a"), (2, "b"), (3, "a"), (4, "b")] {
            publish(&hub, n, t);
        }
        assert_eq!(drain(&mut feed), [1, 3]);
        let frames = feed.subscribe(Id::Num(2), vec!["b".into()], Some(hub.position(0))).unwrap();
        assert_eq!(kinds(&frames), ["ack", "event2", "event4"]);
        publish(&hub, 5, "b");
        assert_eq!(drain(&mut feed), [5]);
    }

    #[test]
    fn wildcards_and_limits() {
        let hub = hub(100);
        let mut feed = Feed::new(Arc::clone(&hub), 2);
        feed.subscribe(Id::Num(1), vec!["bridge.*".into()], None).unwrap();
        for (n, t) in [(1, "bridge.health"), (2, "bridgeX"), (3, "other"), (4, "bridge.x.y")] {
            publish(&hub, n, t);
        }
        assert_eq!(drain(&mut feed), [1, 4]);
        let e = feed.subscribe(Id::Num(2), vec!["a".into(), "b".into()], None).unwrap_err();
        assert_eq!(e.code, ErrorCode::LimitExceeded);
        feed.unsubscribe(Id::Num(3), &["bridge.*".to_owned()]);
        assert!(!feed.is_active());
    }

    #[test]
    fn a_reader_that_falls_off_the_log_lags() {
        let hub = hub(2);
        let mut feed = Feed::new(Arc::clone(&hub), 10);
        feed.subscribe(Id::Num(1), vec!["*".into()], None).unwrap();
        for n in 1..=5 {
            publish(&hub, n, "t");
        }
        assert_eq!(feed.next_batch(&mut Vec::new()), Read::Lagged);
    }
}
