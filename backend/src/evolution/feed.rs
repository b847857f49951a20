//! One connection's subscriptions and its cursor into the node's event log.
//! Owned by the connection's writer, so subscribing, replaying and live
//! delivery happen in one order: ack, then `reset` if needed, then replayed
//! events, then live events, never interleaved.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{Ack, ErrorCode, FrameError, Id, Position, Reset, ServerFrame};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::store::events::EventLog;
use crate::store::history::Read;
use crate::wire::encode;

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
    log: Arc<EventLog>,
    head: watch::Receiver<u64>,
    /// The epoch the cursor counts in (the log's, when the feed started).
    epoch: Arc<str>,
    cursor: u64,
    set: BTreeSet<String>,
    patterns: Patterns,
    max: usize,
}

impl Feed {
    pub(crate) fn new(log: Arc<EventLog>, max_subscriptions: usize) -> Self {
        let head = log.watch_head();
        let epoch = log.epoch();
        Self {
            log,
            head,
            epoch,
            cursor: 0,
            set: BTreeSet::new(),
            patterns: Patterns::default(),
            max: max_subscriptions,
        }
    }

    /// The last seq this connection has been given (or skipped as not matching).
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    fn reset_frame(&self, since: &Position, floor: u64) -> Utf8Bytes {
        let epoch = self.log.epoch();
        let reason = if *since.epoch == *epoch { "history_trimmed" } else { "epoch_changed" };
        encode(&ServerFrame::Reset(Reset { epoch: epoch.to_string(), seq: floor, reason: reason.into() }))
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
        let head = self.log.head();
        let floor = self.log.floor();
        let epoch = self.log.epoch();
        let ack = Ack { position: Some(self.log.position(head)), ..Ack::new(id) };
        let mut frames = vec![encode(&ServerFrame::Ack(ack))];
        let starting = !crate::ws::Feed::is_active(self);
        if starting {
            // The feed starts now, in the log's current epoch.
            self.epoch = Arc::clone(&epoch);
        }
        let resume_from = |frames: &mut Vec<Utf8Bytes>, since: &Position| {
            if *since.epoch == *epoch && since.seq >= floor {
                // A position this node has not read yet (another node was ahead): wait for it here.
                since.seq
            } else {
                frames.push(self.reset_frame(since, floor));
                floor
            }
        };
        if starting {
            // Place the cursor; live delivery replays from it.
            self.cursor = match &since {
                Some(since) => resume_from(&mut frames, since),
                None => head,
            };
        } else if let Some(since) = &since {
            // Already streaming at `cursor`: the new patterns' events up to it come from the log now.
            let start = resume_from(&mut frames, since);
            let only_new = Patterns::from(&new);
            let mut scan = start;
            let cursor = self.cursor;
            while scan < cursor {
                let before = scan;
                let read = self.log.read(
                    &mut scan,
                    MAX_SCAN,
                    |t| only_new.matches(t),
                    |e| {
                        if e.seq <= cursor {
                            frames.push(e.frame.clone());
                        }
                    },
                );
                if read == Read::Lagged {
                    // Trimmed while we were reading: say so, and go on from what is left.
                    let floor = self.log.floor();
                    let reset = Reset { epoch: epoch.to_string(), seq: floor, reason: "history_trimmed".into() };
                    frames.push(encode(&ServerFrame::Reset(reset)));
                    scan = floor;
                    continue;
                }
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
        let ack = Ack { position: Some(Position { epoch: self.epoch.to_string(), seq: self.cursor }), ..Ack::new(id) };
        encode(&ServerFrame::Ack(ack))
    }
}

impl crate::ws::Feed for Feed {
    fn is_active(&self) -> bool {
        !self.set.is_empty()
    }

    fn pending(&self) -> bool {
        self.is_active() && (*self.head.borrow() > self.cursor || *self.log.epoch() != *self.epoch)
    }

    async fn changed(&mut self) {
        if self.head.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn next_batch(&mut self, out: &mut Vec<Utf8Bytes>) -> Result<Option<Instant>, String> {
        if *self.log.epoch() != *self.epoch {
            return Err(format!(
                "the stream started over in a new epoch after seq {}; resume with since to be told what was lost",
                self.cursor
            ));
        }
        let patterns = &self.patterns;
        let mut oldest = None;
        let read = self.log.read(
            &mut self.cursor,
            MAX_SCAN,
            |t| patterns.matches(t),
            |e| {
                oldest.get_or_insert(e.at);
                out.push(e.frame.clone());
            },
        );
        match read {
            Read::Ok => Ok(oldest),
            Read::Lagged => {
                Err(format!("slow consumer: events after seq {} were trimmed; resume with since", self.cursor))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Feed as _;
    use bridge_core::protocol::Json;

    fn hub(events: usize) -> Arc<EventLog> {
        Arc::new(EventLog::new("e1", 1, events, 1 << 20))
    }

    fn publish(log: &EventLog, _n: u64, topic: &str) {
        log.append(topic, "p", 0, &Json::null(), Instant::now());
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
            feed.next_batch(&mut out).expect("not lagged");
        }
        out.iter()
            .map(|f| serde_json::from_str::<serde_json::Value>(f.as_str()).unwrap()["seq"].as_u64().unwrap())
            .collect()
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
        let e = feed.next_batch(&mut Vec::new()).unwrap_err();
        assert!(e.starts_with("slow consumer: events after seq 0 were trimmed"), "{e}");
        assert_eq!(feed.cursor(), 0);
    }

    #[test]
    fn a_new_epoch_ends_the_feed() {
        let log = hub(10);
        let mut feed = Feed::new(Arc::clone(&log), 10);
        feed.subscribe(Id::Num(1), vec!["*".into()], None).unwrap();
        publish(&log, 1, "t");
        assert_eq!(drain(&mut feed), [1]);
        log.restart("e2", 1);
        assert!(feed.pending(), "the writer must look");
        let e = feed.next_batch(&mut Vec::new()).unwrap_err();
        assert!(e.contains("new epoch"), "{e}");
    }
}
