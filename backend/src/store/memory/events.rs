//! The embedded event store: this process numbers the events, and its log is
//! the whole stream. A new epoch at every start, because the log starts empty.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_core::protocol::{Id, Json};
use futures_util::future::{BoxFuture, FutureExt, ready};
use tokio::time::Instant;

use crate::clock::{random_hex, unix_ms};
use crate::config;
use crate::dedup::DedupWindow;
use crate::store::StoreError;
use crate::store::events::{EventLog, EventStore, PublishAck, Published};
use crate::sync::lock;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MemoryEvents {
    log: Arc<EventLog>,
    /// (publisher, id) -> seq, for publish idempotency.
    published: Mutex<DedupWindow<(String, Id), u64>>,
}

impl MemoryEvents {
    pub(crate) fn new(config: &config::Evolution) -> Self {
        Self {
            log: Arc::new(EventLog::new(&random_hex(), 1, config.history_events, config.history_bytes)),
            published: Mutex::new(DedupWindow::new(config.dedup_entries, Duration::from_millis(config.dedup_ttl_ms))),
        }
    }
}

impl EventStore for MemoryEvents {
    fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    fn publish(
        &self,
        publisher: &str,
        id: &Id,
        topic: &str,
        data: &Json,
    ) -> BoxFuture<'static, Result<PublishAck, StoreError>> {
        let now = Instant::now();
        let key = (publisher.to_owned(), id.clone());
        // The dedup lock is held across the append so two concurrent publishes
        // of the same id cannot both get through.
        let mut published = lock(&self.published);
        let result = match published.get(&key, now) {
            Some(seq) => Published { position: self.log.position(*seq), duplicate: true },
            None => {
                let seq = self.log.append(topic, publisher, unix_ms(), data, now);
                published.insert(key, seq, now);
                Published { position: self.log.position(seq), duplicate: false }
            }
        };
        let ack: PublishAck = ready(Ok(result)).boxed();
        ready(Ok(ack)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::history::Read;

    #[tokio::test]
    async fn publish_is_idempotent_per_publisher_and_id() {
        let store = MemoryEvents::new(&config::Evolution::default());
        let data = Json::from_value(&serde_json::json!({"n": 1}));
        let publish = |p: &'static str| store.publish(p, &Id::Num(1), "t", &data);
        let a = publish("p1").await.unwrap().await.unwrap();
        let again = publish("p1").await.unwrap().await.unwrap();
        let other = publish("p2").await.unwrap().await.unwrap();
        assert_eq!((a.position.seq, a.duplicate), (1, false));
        assert_eq!((again.position.seq, again.duplicate), (1, true));
        assert_eq!(other.position.seq, 2);
        let log = store.log();
        assert_eq!(log.head(), 2);
        let mut out = Vec::new();
        let mut cursor = 0;
        assert_eq!(log.read(&mut cursor, 10, |_| true, |e| out.push(e.clone())), Read::Ok);
        let frame: serde_json::Value = serde_json::from_str(out[0].frame.as_str()).unwrap();
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["epoch"], &*log.epoch());
        assert_eq!(frame["data"], serde_json::json!({"n": 1}));
    }

    #[test]
    fn epochs_differ_between_stores() {
        let a = MemoryEvents::new(&config::Evolution::default());
        let b = MemoryEvents::new(&config::Evolution::default());
        assert_ne!(a.log().epoch(), b.log().epoch());
    }
}
