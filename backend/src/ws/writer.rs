//! A connection's writer: drains the bounded outbound queue and reads the
//! service's feed at its own cursor. Frames are fed in batches and flushed once
//! per batch; heartbeats, the write timeout and close requests are handled here
//! too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bridge_core::protocol::close;
use futures_util::{Sink, SinkExt};
use tokio::time::Instant;

use super::peer::{ABORT, Outbound};
use super::queue::Queue;
use super::{Feed, Service, Transport};

/// Outbound queue items handled per batch before flushing.
const MAX_QUEUE_BATCH: usize = 64;

/// How the writer ended.
#[derive(Debug)]
pub(crate) enum WriterEnd {
    /// A close frame was sent with this code.
    Closed(u16),
    /// Writing failed or timed out; the connection is dead.
    Broken,
}

pub(crate) struct Writer<'a, S: Service, K> {
    pub(crate) sink: K,
    pub(crate) queue: &'a Queue<Outbound<S::Command>>,
    pub(crate) feed: S::Feed,
    pub(crate) service: &'a S,
    pub(crate) transport: &'a Transport,
    /// Milliseconds since `start` when the reader last heard from the client.
    pub(crate) last_seen: &'a AtomicU64,
    pub(crate) start: Instant,
}

impl<S: Service, K: Sink<Message, Error = axum::Error> + Unpin + Send> Writer<'_, S, K> {
    async fn feed_frame(&mut self, frame: Utf8Bytes) -> Result<(), ()> {
        self.transport.0.metrics.frames_out(S::SOCKET, frame_type(&frame), 1);
        self.sink.feed(Message::Text(frame)).await.map_err(|_| ())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        let timeout = Duration::from_millis(self.transport.0.limits.write_timeout_ms);
        match tokio::time::timeout(timeout, self.sink.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(()),
            Err(_) => {
                self.transport.0.metrics.dropped("write_timeout");
                Err(())
            }
        }
    }

    async fn send_close(&mut self, code: u16, reason: &str) -> WriterEnd {
        let reason: String = reason
            .chars()
            .scan(0, |n, c| {
                *n += c.len_utf8();
                (*n <= 123).then_some(c)
            })
            .collect();
        let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
        let timeout = Duration::from_secs(2);
        match tokio::time::timeout(timeout, self.sink.send(Message::Close(Some(frame)))).await {
            Ok(Ok(())) => WriterEnd::Closed(code),
            _ => WriterEnd::Broken,
        }
    }

    /// Handles one queue item (may write several frames).
    async fn handle(&mut self, item: Outbound<S::Command>) -> Result<(), ()> {
        match item {
            Outbound::Frame(frame) => self.feed_frame(frame).await,
            Outbound::Command(command) => {
                for f in self.service.command(&mut self.feed, *command) {
                    self.feed_frame(f).await?;
                }
                Ok(())
            }
        }
    }

    /// Writes the feed's next batch; Err(Some(reason)) when it fell too far behind.
    async fn deliver(&mut self, scratch: &mut Vec<Utf8Bytes>) -> Result<(), Option<String>> {
        scratch.clear();
        let oldest = self.feed.next_batch(scratch).map_err(Some)?;
        if let Some(at) = oldest {
            self.transport.0.metrics.delivered(Instant::now().saturating_duration_since(at).as_secs_f64());
        }
        self.transport.0.metrics.frames_out(S::SOCKET, "event", scratch.len() as u64);
        for f in scratch.drain(..) {
            self.sink.feed(Message::Text(f)).await.map_err(|_| None)?;
        }
        Ok(())
    }

    /// Runs until the connection closes.
    /// (Not an `async fn`: that would keep a second copy of `self` in the future,
    /// which every idle connection pays for.)
    #[allow(clippy::manual_async_fn, reason = "an async fn keeps a second copy of self")]
    pub(crate) fn run(mut self) -> impl Future<Output = WriterEnd> + Send
    where
        S::Feed: Send,
    {
        async move {
            let timeout = self.transport.0.heartbeat.timeout_ms;
            let mut clock = self.transport.0.clock.subscribe();
            let mut beats = clock.borrow_and_update().beats;
            let mut scratch = Vec::new();
            loop {
                let asked = self.queue.close_request();
                if let Some(req) = asked.as_ref().filter(|r| r.code == ABORT) {
                    tracing::debug!(reason = %req.reason, "connection cut");
                    return WriterEnd::Broken;
                }
                if let Some(req) = asked {
                    if req.code == close::SLOW_CONSUMER {
                        // Only a full queue asks for this close: the mailbox's push found no room.
                        self.transport.0.metrics.dropped("outbound_queue_full");
                    }
                    // What was queued before the close (typically the error frames explaining it) goes first.
                    while let Some(item) = self.queue.try_pop() {
                        if self.handle(item).await.is_err() {
                            return WriterEnd::Broken;
                        }
                    }
                    if self.flush().await.is_err() {
                        return WriterEnd::Broken;
                    }
                    return self.send_close(req.code, &req.reason).await;
                }
                let now = *clock.borrow_and_update();
                if now.shutdown {
                    return self.send_close(close::GOING_AWAY, "server shutting down").await;
                }
                // Do everything that is ready, then flush once.
                let mut wrote = false;
                for _ in 0..MAX_QUEUE_BATCH {
                    let Some(item) = self.queue.try_pop() else { break };
                    wrote = true;
                    if self.handle(item).await.is_err() {
                        return WriterEnd::Broken;
                    }
                }
                if self.feed.pending() {
                    wrote = true;
                    match self.deliver(&mut scratch).await {
                        Ok(()) => {}
                        Err(Some(reason)) => {
                            self.transport.0.metrics.dropped("slow_consumer");
                            return self.send_close(close::SLOW_CONSUMER, &reason).await;
                        }
                        Err(None) => return WriterEnd::Broken,
                    }
                }
                if now.beats != beats {
                    beats = now.beats;
                    let silent = self.start.elapsed().as_millis() as u64 - self.last_seen.load(Ordering::Relaxed);
                    if silent > timeout {
                        return self
                            .send_close(close::HEARTBEAT_TIMEOUT, "no frame received within the heartbeat timeout")
                            .await;
                    }
                    if self.sink.feed(Message::Ping(Default::default())).await.is_err() {
                        return WriterEnd::Broken;
                    }
                    wrote = true;
                }
                if wrote {
                    if self.flush().await.is_err() {
                        return WriterEnd::Broken;
                    }
                    continue;
                }
                // Nothing ready: wait for something.
                let feed_active = self.feed.is_active();
                let (queue, feed) = (self.queue, &mut self.feed);
                tokio::select! {
                    () = queue.changed() => {}
                    _ = clock.changed() => {}
                    () = feed.changed(), if feed_active => {}
                }
            }
        }
    }
}

/// The `type` of an encoded server frame, for metrics (frames start with `{"type":"...`).
fn frame_type(frame: &str) -> &'static str {
    const TYPES: [&str; 11] =
        ["welcome", "pong", "ack", "error", "event", "reset", "request", "response", "message", "agents", "presence"];
    let rest = frame.strip_prefix("{\"type\":\"").unwrap_or("");
    TYPES.iter().find(|t| rest.starts_with(**t) && rest[t.len()..].starts_with('"')).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_types() {
        assert_eq!(super::frame_type(r#"{"type":"ack","id":1}"#), "ack");
        assert_eq!(super::frame_type(r#"{"type":"agents","id":1}"#), "agents");
        assert_eq!(super::frame_type("junk"), "other");
    }
}
