//! Frames waiting to be sent, and requests waiting for their answer.
//!
//! A request stays until it is answered or its caller gives up, and is sent
//! again (same id) on every new connection until then: the server
//! de-duplicates by id, so it takes effect once. Other frames (acks,
//! subscribes made while connected) belong to one connection and are dropped
//! with it.

use crate::protocol::Id;
use crate::vecmap::VecMap;

/// One waiting frame.
#[derive(Debug, Clone)]
struct Entry {
    /// The request id its answer carries (none for frames nobody waits for).
    id: Option<Id>,
    frame: String,
    sent: bool,
}

/// See the module docs. Keys order the entries: the oldest is sent first.
#[derive(Debug, Clone, Default)]
pub(super) struct Outbox {
    entries: VecMap<u64, Entry>,
    next: u64,
    /// How many requests may wait at once.
    limit: u32,
}

impl Outbox {
    pub(super) fn new(limit: u32) -> Self {
        Self { limit, ..Self::default() }
    }

    pub(super) fn limit(&self) -> u32 {
        self.limit
    }

    /// Requests waiting (sent or not).
    pub(super) fn requests(&self) -> usize {
        self.entries.values().filter(|e| e.id.is_some()).count()
    }

    fn next_key(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Queues request `id`; `None` when full. Returns its key.
    pub(super) fn request(&mut self, id: Id, frame: String) -> Option<u64> {
        if self.requests() >= self.limit as usize {
            return None;
        }
        let key = self.next_key();
        self.entries.insert(key, Entry { id: Some(id), frame, sent: false });
        Some(key)
    }

    /// Queues a frame for this connection only.
    pub(super) fn push(&mut self, frame: String) {
        let key = self.next_key();
        self.entries.insert(key, Entry { id: None, frame, sent: false });
    }

    /// Queues a frame ahead of everything else (the resume after a welcome).
    pub(super) fn push_first(&mut self, frame: String) {
        let key = self.entries.first().map_or(0, |(k, _)| k.saturating_sub(1));
        self.entries.insert(key, Entry { id: None, frame, sent: false });
    }

    /// The next frame not sent yet, now marked sent; frames nobody waits for leave.
    pub(super) fn next_unsent(&mut self) -> Option<String> {
        let &(key, _) = self.entries.iter().find(|(_, e)| !e.sent)?;
        let entry = self.entries.get_mut(&key)?;
        entry.sent = true;
        if entry.id.is_some() { Some(entry.frame.clone()) } else { self.entries.remove(&key).map(|e| e.frame) }
    }

    /// Takes request `id` out: it has its answer. Returns its key.
    pub(super) fn answered(&mut self, id: &Id) -> Option<u64> {
        let key = self.entries.iter().find(|(_, e)| e.id.as_ref() == Some(id)).map(|(k, _)| *k)?;
        self.entries.remove(&key);
        Some(key)
    }

    /// Drops request `key` (its caller gave up).
    pub(super) fn cancel(&mut self, key: u64) {
        self.entries.remove(&key);
    }

    /// The connection ended: requests wait to be sent again, the rest goes.
    pub(super) fn disconnected(&mut self) {
        self.entries.retain(|_, e| e.id.is_some());
        for e in self.entries.values_mut() {
            e.sent = false;
        }
    }

    /// Empties the outbox; returns the keys of the requests that were waiting.
    pub(super) fn drain(&mut self) -> Vec<u64> {
        self.entries.take().into_iter().filter(|(_, e)| e.id.is_some()).map(|(k, _)| k).collect()
    }
}
