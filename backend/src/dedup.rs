//! A bounded memory of recently seen keys, for idempotency: publish ids,
//! agent message ids, answered requests. Entries leave after a time-to-live
//! or, oldest first, when the window is full, so memory is bounded whatever
//! clients send.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Remembers up to `capacity` keys for at most `ttl`, each with a value.
#[derive(Debug)]
pub(crate) struct DedupWindow<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<(K, u64, Instant)>,
    capacity: usize,
    ttl: Duration,
    next: u64,
}

impl<K: Hash + Eq + Clone, V> DedupWindow<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1), ttl, next: 0 }
    }

    /// The value remembered for `key`, if it is still in the window.
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        self.expire(now);
        self.map.get(key).map(|(v, _)| v)
    }

    /// Remembers `key` (replacing an older value for it).
    pub(crate) fn insert(&mut self, key: K, value: V, now: Instant) {
        self.expire(now);
        self.next += 1;
        self.map.insert(key.clone(), (value, self.next));
        self.order.push_back((key, self.next, now));
        while self.map.len() > self.capacity {
            self.pop_oldest();
        }
        // Replaced keys leave stale entries in `order`; keep it from outgrowing the map.
        if self.order.len() > self.capacity * 2 {
            self.order.retain(|(k, stamp, _)| self.map.get(k).is_some_and(|(_, s)| s == stamp));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn pop_oldest(&mut self) {
        if let Some((key, stamp, _)) = self.order.pop_front()
            && self.map.get(&key).is_some_and(|(_, s)| *s == stamp)
        {
            self.map.remove(&key);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, _, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            self.pop_oldest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_capacity_and_ttl() {
        let t0 = Instant::now();
        let mut w = DedupWindow::new(2, Duration::from_secs(10));
        w.insert("a", 1, t0);
        w.insert("b", 2, t0);
        assert_eq!(w.get(&"a", t0), Some(&1));
        w.insert("c", 3, t0);
        assert_eq!(w.get(&"a", t0), None, "oldest leaves when full");
        assert_eq!(w.len(), 2);
        assert_eq!(w.get(&"c", t0 + Duration::from_secs(10)), None, "expired");
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn replacing_a_key_keeps_the_bound() {
        let t0 = Instant::now();
        let mut w = DedupWindow::new(3, Duration::from_secs(10));
        for i in 0..1000 {
            w.insert("same", i, t0);
        }
        assert_eq!(w.get(&"same", t0), Some(&999));
        assert!(w.order.len() <= 6);
    }
}
