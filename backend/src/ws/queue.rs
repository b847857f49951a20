//! One connection's outbound queue and close request, in one small struct.
//!
//! Every connection has one, idle or not, so its size is paid thousands of
//! times: it allocates nothing until a frame is queued, and gives its buffer
//! back once a burst has drained. Bounded: a push into a full queue is refused
//! (the caller closes the connection as a slow consumer), or waits for room.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::sync::lock;

/// Buffers larger than this are given back when the queue empties.
const KEEP_CAPACITY: usize = 16;

/// Why and how a connection should close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// A push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No room.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The first close asked for (later ones are ignored).
    close: Option<CloseRequest>,
    /// The writer has ended: nothing more is taken.
    ended: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Wakes the writer: an item, or a close request.
    writer: Notify,
    /// Wakes a producer waiting for room.
    room: Notify,
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State { items: VecDeque::new(), close: None, ended: false }),
            capacity: capacity.max(1),
            writer: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Queues `item` if there is room.
    pub(crate) fn try_push(&self, item: T) -> Result<(), Refused> {
        let mut s = lock(&self.state);
        if s.ended {
            return Err(Refused::Closed);
        }
        if s.items.len() >= self.capacity {
            return Err(Refused::Full);
        }
        s.items.push_back(item);
        drop(s);
        self.writer.notify_one();
        Ok(())
    }

    /// Queues `item`, waiting for room.
    pub(crate) async fn push(&self, item: T) -> Result<(), Refused> {
        let mut item = Some(item);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut s = lock(&self.state);
                if s.ended {
                    return Err(Refused::Closed);
                }
                if s.items.len() < self.capacity {
                    s.items.push_back(item.take().expect("pushed once"));
                    drop(s);
                    self.writer.notify_one();
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// The next item, if one is queued.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut s = lock(&self.state);
        let item = s.items.pop_front()?;
        if s.items.is_empty() && s.items.capacity() > KEEP_CAPACITY {
            s.items = VecDeque::new();
        }
        drop(s);
        self.room.notify_one();
        Some(item)
    }

    /// Completes when an item or a close request may be waiting (the writer's wait).
    pub(crate) async fn changed(&self) {
        let notified = self.writer.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let s = lock(&self.state);
            if !s.items.is_empty() || s.close.is_some() {
                return;
            }
        }
        notified.await;
    }

    /// Asks for a close (the first request wins); false when one was asked already.
    pub(crate) fn close(&self, code: u16, reason: &str) -> bool {
        let mut s = lock(&self.state);
        if s.close.is_some() {
            return false;
        }
        s.close = Some(CloseRequest { code, reason: reason.to_owned() });
        drop(s);
        self.writer.notify_one();
        true
    }

    /// The close asked for, if any.
    pub(crate) fn close_request(&self) -> Option<CloseRequest> {
        lock(&self.state).close.clone()
    }

    pub(crate) fn is_closing(&self) -> bool {
        lock(&self.state).close.is_some()
    }

    /// The writer has ended: refuse everything from now on and drop what is queued.
    pub(crate) fn end(&self) {
        let mut s = lock(&self.state);
        s.ended = true;
        s.items = VecDeque::new();
        drop(s);
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_then_waits_for_room_and_gives_memory_back() {
        let q = Queue::new(2);
        assert_eq!(q.try_push(1), Ok(()));
        assert_eq!(q.try_push(2), Ok(()));
        assert_eq!(q.try_push(3), Err(Refused::Full));
        let q = std::sync::Arc::new(q);
        let waiting = tokio::spawn({
            let q = std::sync::Arc::clone(&q);
            async move { q.push(3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no room yet");
        assert_eq!(q.try_pop(), Some(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!((q.try_pop(), q.try_pop(), q.try_pop()), (Some(2), Some(3), None));
        let big = Queue::new(64);
        for i in 0..50 {
            big.try_push(i).unwrap();
        }
        while big.try_pop().is_some() {}
        assert_eq!(lock(&big.state).items.capacity(), 0, "a drained burst gives its buffer back");
    }

    #[tokio::test]
    async fn the_first_close_wins_and_wakes_the_writer() {
        let q: Queue<u8> = Queue::new(4);
        assert!(q.close(4000, "slow"));
        assert!(!q.close(1000, "later"));
        q.changed().await;
        assert_eq!(q.close_request().map(|c| c.code), Some(4000));
        q.end();
        assert_eq!(q.try_push(1), Err(Refused::Closed));
    }

    #[test]
    fn an_idle_queue_is_small() {
        // Every connection has one: keep it well under the old channel's 1.4 KiB block.
        let size = std::mem::size_of::<Queue<super::super::Outbound<()>>>();
        assert!(size <= 160, "{size} bytes");
    }
}
