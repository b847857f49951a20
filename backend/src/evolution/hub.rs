//! The evolution hub: the event log with its epoch, publish deduplication,
//! and the wake-up signal subscribers' writers wait on.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bridge_core::protocol::{Event, Id, Json, Position, ServerFrame};
use tokio::sync::watch;
use tokio::time::Instant;

use super::history::{History, Read, StoredEvent};
use super::requests::Routes;
use crate::config;
use crate::dedup::DedupWindow;
use crate::sync::lock;

/// The result of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    pub(crate) position: Position,
    /// The (publisher, id) pair was seen before; nothing new was published.
    pub(crate) duplicate: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct EvolutionHub {
    epoch: String,
    history: RwLock<History>,
    head: watch::Sender<u64>,
    published: Mutex<DedupWindow<(String, Id), u64>>,
    pub(crate) routes: Mutex<Routes>,
    pub(crate) config: config::Evolution,
}

impl EvolutionHub {
    pub(crate) fn new(config: &config::Evolution) -> Self {
        Self {
            epoch: new_epoch(),
            history: RwLock::new(History::new(config.history_events, config.history_bytes)),
            head: watch::Sender::new(0),
            published: Mutex::new(DedupWindow::new(config.dedup_entries, Duration::from_millis(config.dedup_ttl_ms))),
            routes: Mutex::new(Routes::new(config)),
            config: config.clone(),
        }
    }

    /// This run's epoch: a new one at every start, because the in-memory history starts empty.
    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The last seq published.
    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// The seq before the oldest event still held.
    pub(crate) fn floor(&self) -> u64 {
        self.history.read().unwrap_or_else(std::sync::PoisonError::into_inner).floor()
    }

    /// Events and bytes held.
    pub(crate) fn history_size(&self) -> (usize, usize) {
        self.history.read().unwrap_or_else(std::sync::PoisonError::into_inner).size()
    }

    /// A receiver that changes whenever an event is published.
    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Publishes `data` on `topic`, once per (`publisher`, `id`) within the dedup window.
    pub(crate) fn publish(&self, publisher: &str, id: &Id, topic: &str, data: &Json) -> Published {
        let now = Instant::now();
        let key = (publisher.to_owned(), id.clone());
        // The dedup lock is held across the append so two concurrent publishes
        // of the same id cannot both get through.
        let mut published = lock(&self.published);
        if let Some(seq) = published.get(&key, now) {
            return Published { position: self.position(*seq), duplicate: true };
        }
        let ts = unix_ms();
        let topic: Arc<str> = topic.into();
        let seq = {
            let mut history = self.history.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let seq = history.append(Arc::clone(&topic), now, |seq| {
                crate::ws::encode(&ServerFrame::Event(Event {
                    topic: topic.to_string(),
                    epoch: self.epoch.clone(),
                    seq,
                    ts,
                    publisher: publisher.to_owned(),
                    data: data.clone(),
                }))
            });
            self.head.send_replace(seq);
            seq
        };
        published.insert(key, seq, now);
        Published { position: self.position(seq), duplicate: false }
    }

    /// Appends to `out` the events after `*cursor` matching `matches`; see [`History::read`].
    pub(crate) fn read(
        &self,
        cursor: &mut u64,
        max_scan: usize,
        matches: impl FnMut(&str) -> bool,
        out: &mut Vec<StoredEvent>,
    ) -> Read {
        self.history.read().unwrap_or_else(std::sync::PoisonError::into_inner).read(cursor, max_scan, matches, out)
    }

    pub(crate) fn position(&self, seq: u64) -> Position {
        Position { epoch: self.epoch.clone(), seq }
    }
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh random epoch id (std's hasher keys are randomly seeded per process and call).
fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_is_idempotent_per_publisher_and_id() {
        let hub = EvolutionHub::new(&config::Evolution::default());
        let data = Json::from_value(&serde_json::json!({"n": 1}));
        let a = hub.publish("p1", &Id::Num(1), "t", &data);
        let again = hub.publish("p1", &Id::Num(1), "t", &data);
        let other = hub.publish("p2", &Id::Num(1), "t", &data);
        assert_eq!((a.position.seq, a.duplicate), (1, false));
        assert_eq!((again.position.seq, again.duplicate), (1, true));
        assert_eq!(other.position.seq, 2);
        assert_eq!(hub.head(), 2);
        let mut out = Vec::new();
        let mut cursor = 0;
        hub.read(&mut cursor, 10, |_| true, &mut out);
        let frame: serde_json::Value = serde_json::from_str(out[0].frame.as_str()).unwrap();
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["epoch"], hub.epoch());
        assert_eq!(frame["data"], serde_json::json!({"n": 1}));
    }

    #[test]
    fn epochs_differ_between_hubs() {
        let a = EvolutionHub::new(&config::Evolution::default());
        let b = EvolutionHub::new(&config::Evolution::default());
        assert_ne!(a.epoch(), b.epoch());
    }
}
