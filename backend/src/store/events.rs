//! The evolution stream as the domains see it: a store takes publishes (with
//! deduplication) and fills this node's [`EventLog`], which every subscriber's
//! writer reads with its own cursor.
//!
//! The embedded store numbers events itself and appends them at once; the NATS
//! store lets JetStream number them and appends them as it tails the stream,
//! so every node's log holds the same events under the same seqs and epoch.

use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{Event, Id, Json, Position, ServerFrame};
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::StoreError;
use super::history::{Appended, History, Read, StoredEvent};
use crate::wire::encode;

/// The result of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    pub(crate) position: Position,
    /// The (publisher, id) pair was seen before; nothing new was published.
    pub(crate) duplicate: bool,
}

/// The store's confirmation of a publish, still to come.
pub(crate) type PublishAck = BoxFuture<'static, Result<Published, StoreError>>;

/// Where events are published and which log subscribers read.
pub(crate) trait EventStore: Send + Sync + Debug {
    /// This node's copy of the stream.
    fn log(&self) -> &Arc<EventLog>;

    /// Publishes `data` on `topic`, once per (`publisher`, `id`) within the dedup
    /// window: a duplicate answers the original position. The outer future hands
    /// the event to the store (publishes keep their order once it completes); the
    /// inner one is the store's confirmation, which may take a round trip. `Err`
    /// means nothing was stored and the publisher should retry with the same id.
    fn publish(
        &self,
        publisher: &str,
        id: &Id,
        topic: &str,
        data: &Json,
    ) -> BoxFuture<'static, Result<PublishAck, StoreError>>;
}

/// One node's copy of the event stream: its epoch, the bounded history, and
/// the head that subscribers' writers wait on.
#[derive(Debug)]
pub(crate) struct EventLog {
    epoch: RwLock<Arc<str>>,
    history: RwLock<History>,
    head: watch::Sender<u64>,
}

impl EventLog {
    /// An empty log in `epoch` whose next event gets `next_seq`.
    pub(crate) fn new(epoch: &str, next_seq: u64, max_events: usize, max_bytes: usize) -> Self {
        let history = History::starting_at(next_seq, max_events, max_bytes);
        let head = watch::Sender::new(history.head());
        Self { epoch: RwLock::new(epoch.into()), history: RwLock::new(history), head }
    }

    fn history(&self) -> std::sync::RwLockReadGuard<'_, History> {
        self.history.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn history_mut(&self) -> std::sync::RwLockWriteGuard<'_, History> {
        self.history.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stream's epoch: changes only when its history was lost.
    pub(crate) fn epoch(&self) -> Arc<str> {
        Arc::clone(&self.epoch.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The last seq held.
    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// The seq before the oldest event still held.
    pub(crate) fn floor(&self) -> u64 {
        self.history().floor()
    }

    /// Events and bytes held.
    pub(crate) fn size(&self) -> (usize, usize) {
        self.history().size()
    }

    /// A receiver that changes whenever an event is appended.
    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    pub(crate) fn position(&self, seq: u64) -> Position {
        Position { epoch: self.epoch().to_string(), seq }
    }

    /// Gives `emit` the events after `*cursor` matching `matches`; see [`History::read`].
    pub(crate) fn read(
        &self,
        cursor: &mut u64,
        max_scan: usize,
        matches: impl FnMut(&str) -> bool,
        emit: impl FnMut(&StoredEvent),
    ) -> Read {
        self.history().read(cursor, max_scan, matches, emit)
    }

    /// Appends a new event under the next seq (the embedded store).
    pub(crate) fn append(&self, topic: &str, publisher: &str, ts: u64, data: &Json, at: Instant) -> u64 {
        let epoch = self.epoch();
        let topic: Arc<str> = topic.into();
        let mut history = self.history_mut();
        let seq = history.append(Arc::clone(&topic), at, |seq| event_frame(&epoch, seq, &topic, publisher, ts, data));
        self.head.send_replace(seq);
        seq
    }

    /// Appends an event the cluster numbered `seq` (see [`History::append_at`]).
    pub(crate) fn append_at(
        &self,
        seq: u64,
        topic: &str,
        publisher: &str,
        ts: u64,
        data: &Json,
        at: Instant,
    ) -> Appended {
        let epoch = self.epoch();
        let frame = event_frame(&epoch, seq, topic, publisher, ts, data);
        let mut history = self.history_mut();
        let appended = history.append_at(seq, topic.into(), at, frame);
        if appended != Appended::Old {
            self.head.send_replace(seq);
        }
        appended
    }

    /// The stream was lost and begins again in `epoch`: drop everything held.
    /// Readers find their cursor outside the log and are told to resume.
    pub(crate) fn restart(&self, epoch: &str, next_seq: u64) {
        let mut history = self.history_mut();
        let (max_events, max_bytes) = history.limits();
        *history = History::starting_at(next_seq, max_events, max_bytes);
        *self.epoch.write().unwrap_or_else(std::sync::PoisonError::into_inner) = epoch.into();
        self.head.send_replace(history.head());
    }

    /// The seq the next appended event must have.
    pub(crate) fn next_seq(&self) -> u64 {
        self.history().next_seq()
    }
}

/// An `event` frame, serialized once for every subscriber.
fn event_frame(epoch: &str, seq: u64, topic: &str, publisher: &str, ts: u64, data: &Json) -> Utf8Bytes {
    encode(&ServerFrame::Event(Event {
        topic: topic.to_owned(),
        epoch: epoch.to_owned(),
        seq,
        ts,
        publisher: publisher.to_owned(),
        data: data.clone(),
    }))
}
