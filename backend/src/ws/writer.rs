//! A connection's writer: drains the bounded outbound queue and, on the
//! evolution socket, reads events from the shared log at its own cursor.
//! Frames are fed in batches and flushed once per batch; heartbeats, the
//! write timeout and close requests are handled here too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bridge_core::protocol::{ServerFrame, close};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::peer::{CloseRequest, Outbound, Peer, Subscription};
use crate::AppState;
use crate::evolution::feed::Feed;
use crate::evolution::history::Read;

/// Outbound queue items handled per batch before flushing.
const MAX_QUEUE_BATCH: usize = 64;

type Sink = SplitSink<WebSocket, Message>;

/// How the writer ended.
#[derive(Debug)]
pub(crate) enum WriterEnd {
    /// A close frame was sent with this code.
    Closed(u16),
    /// Writing failed or timed out; the connection is dead.
    Broken,
}

pub(crate) struct Writer<'a> {
    pub(crate) sink: Sink,
    pub(crate) queue: mpsc::Receiver<Outbound>,
    pub(crate) close: watch::Receiver<Option<CloseRequest>>,
    pub(crate) feed: Option<Feed>,
    pub(crate) peer: &'a Peer,
    pub(crate) state: &'a AppState,
    /// Milliseconds since `start` when the reader last heard from the client.
    pub(crate) last_seen: &'a AtomicU64,
    pub(crate) start: Instant,
}

impl Writer<'_> {
    fn socket(&self) -> &'static str {
        self.peer.kind.as_str()
    }

    async fn feed(&mut self, frame: Utf8Bytes) -> Result<(), ()> {
        self.sink.feed(Message::Text(frame)).await.map_err(|_| ())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        let timeout = Duration::from_millis(self.state.config().limits.write_timeout_ms);
        match tokio::time::timeout(timeout, self.sink.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(()),
            Err(_) => {
                self.state.inner.metrics.drop("write_timeout");
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
    async fn handle(&mut self, item: Outbound) -> Result<(), ()> {
        match item {
            Outbound::Frame(frame) => {
                self.state.inner.metrics.frames_out(self.socket(), frame_type(&frame), 1);
                self.feed(frame).await
            }
            Outbound::Subscribe(sub) => {
                let Some(feed) = self.feed.as_mut() else { return Ok(()) };
                let Subscription { id, patterns, since } = *sub;
                let frames = match feed.subscribe(id, patterns, since) {
                    Ok(frames) => frames,
                    Err(e) => {
                        self.state.inner.metrics.error(e.code.as_str());
                        vec![super::encode(&ServerFrame::Error(e.to_frame()))]
                    }
                };
                for f in frames {
                    self.state.inner.metrics.frames_out(self.socket(), frame_type(&f), 1);
                    self.feed(f).await?;
                }
                Ok(())
            }
            Outbound::Unsubscribe(sub) => {
                let Some(feed) = self.feed.as_mut() else { return Ok(()) };
                let ack = feed.unsubscribe(sub.id, &sub.patterns);
                self.state.inner.metrics.frames_out(self.socket(), "ack", 1);
                self.feed(ack).await
            }
        }
    }

    /// Writes the next batch of events; Err(Some(seq)) when the cursor fell off the log.
    async fn deliver(&mut self, scratch: &mut Vec<crate::evolution::history::StoredEvent>) -> Result<(), Option<u64>> {
        let Some(feed) = self.feed.as_mut() else { return Ok(()) };
        scratch.clear();
        if feed.next_batch(scratch) == Read::Lagged {
            return Err(Some(feed.cursor()));
        }
        if let Some(oldest) = scratch.first() {
            self.state.inner.metrics.delivered(Instant::now().saturating_duration_since(oldest.at).as_secs_f64());
            self.state.inner.metrics.frames_out(self.socket(), "event", scratch.len() as u64);
        }
        for e in scratch.drain(..) {
            self.sink.feed(Message::Text(e.frame)).await.map_err(|_| None)?;
        }
        Ok(())
    }

    /// Runs until the connection closes.
    /// (Not an `async fn`: that would keep a second copy of `self` in the future,
    /// which every idle connection pays for.)
    #[allow(clippy::manual_async_fn, reason = "an async fn keeps a second copy of self")]
    pub(crate) fn run(mut self) -> impl Future<Output = WriterEnd> + Send {
        async move {
            let hb = &self.state.config().heartbeat;
            let (interval, timeout) = (Duration::from_millis(hb.interval_ms), hb.timeout_ms);
            let mut next_ping = Instant::now() + interval;
            let mut shutdown = self.state.inner.shutdown.subscribe();
            let mut scratch = Vec::new();
            loop {
                let asked = self.close.borrow_and_update().clone();
                if let Some(req) = asked.as_ref().filter(|r| r.code == super::peer::ABORT) {
                    tracing::debug!(reason = %req.reason, "connection cut");
                    return WriterEnd::Broken;
                }
                if let Some(req) = asked {
                    if req.code == close::SLOW_CONSUMER {
                        // Only `Peer::push` asks for this close: its queue was full.
                        self.state.inner.metrics.drop("outbound_queue_full");
                    }
                    // What was queued before the close (typically the error frames explaining it) goes first.
                    while let Ok(item) = self.queue.try_recv() {
                        if self.handle(item).await.is_err() {
                            return WriterEnd::Broken;
                        }
                    }
                    if self.flush().await.is_err() {
                        return WriterEnd::Broken;
                    }
                    return self.send_close(req.code, &req.reason).await;
                }
                if *shutdown.borrow_and_update() {
                    return self.send_close(close::GOING_AWAY, "server shutting down").await;
                }
                // Do everything that is ready, then flush once.
                let mut wrote = false;
                for _ in 0..MAX_QUEUE_BATCH {
                    match self.queue.try_recv() {
                        Ok(item) => {
                            wrote = true;
                            if self.handle(item).await.is_err() {
                                return WriterEnd::Broken;
                            }
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return WriterEnd::Broken,
                    }
                }
                if self.feed.as_ref().is_some_and(Feed::pending) {
                    wrote = true;
                    match self.deliver(&mut scratch).await {
                        Ok(()) => {}
                        Err(Some(cursor)) => {
                            self.state.inner.metrics.drop("slow_consumer");
                            let reason =
                                format!("slow consumer: events after seq {cursor} were trimmed; resume with since");
                            return self.send_close(close::SLOW_CONSUMER, &reason).await;
                        }
                        Err(None) => return WriterEnd::Broken,
                    }
                }
                if Instant::now() >= next_ping {
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
                    next_ping = Instant::now() + interval;
                }
                if wrote {
                    if self.flush().await.is_err() {
                        return WriterEnd::Broken;
                    }
                    continue;
                }
                // Nothing ready: wait for something.
                let feed = self.feed.as_mut().filter(|f| f.is_active());
                let feed_active = feed.is_some();
                let woke = tokio::select! {
                    _ = self.close.changed() => None,
                    _ = shutdown.changed() => None,
                    item = self.queue.recv() => Some(item),
                    () = async move { feed.expect("guarded by the condition").changed().await }, if feed_active => None,
                    () = tokio::time::sleep_until(next_ping) => None,
                };
                if let Some(item) = woke {
                    let Some(item) = item else { return WriterEnd::Broken };
                    if self.handle(item).await.is_err() || self.flush().await.is_err() {
                        return WriterEnd::Broken;
                    }
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
