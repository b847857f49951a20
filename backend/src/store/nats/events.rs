//! Events on JetStream. A publish goes to the stream with a `Nats-Msg-Id` made
//! of the publisher's identity and the publish id, so JetStream drops a repeat
//! within its duplicate window and acks it with the original sequence. Every
//! node tails the stream into its own [`EventLog`], in stream order, under the
//! stream's sequence numbers and epoch: the same positions on every node.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::context::Context;
use axum::body::Bytes;
use bridge_core::protocol::{Id, Json};
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, ready};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::health::NatsHealth;
use super::stream::{self, StreamState};
use crate::clock::unix_ms;
use crate::config::Config;
use crate::store::StoreError;
use crate::store::events::{EventLog, EventStore, PublishAck, Published};
use crate::store::history::Appended;

/// What is stored per event: everything of the `event` frame but its position.
#[derive(Debug, Serialize)]
struct Outgoing<'a> {
    topic: &'a str,
    publisher: &'a str,
    ts: u64,
    data: &'a Json,
}

#[derive(Debug, Deserialize)]
struct Incoming {
    topic: String,
    publisher: String,
    ts: u64,
    data: Json,
}

/// The `Nats-Msg-Id` of a publish: publisher and id, hex-encoded (header-safe,
/// and a string id "1" stays apart from the number 1).
fn msg_id(publisher: &str, id: &Id) -> String {
    let (kind, id) = match id {
        Id::Num(n) => ('n', n.to_string()),
        Id::Str(s) => ('s', s.clone()),
    };
    format!("{}-{kind}{}", hex(publisher.as_bytes()), hex(id.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsEvents {
    js: Context,
    subject: String,
    log: Arc<EventLog>,
    health: Arc<NatsHealth>,
}

impl NatsEvents {
    /// Starts tailing `stream` into a new log and waits until the log holds
    /// what the stream held at start (so a resume is served at once).
    pub(super) async fn start(
        js: Context,
        config: &Config,
        state: StreamState,
        health: Arc<NatsHealth>,
    ) -> Result<Self, String> {
        // The same count as the stream and twice its bytes (a frame here is a little larger than
        // the stored event): the log holds all the stream holds, so every position the stream can
        // still serve is served from here, without a round trip.
        let log = Arc::new(EventLog::new(
            &state.epoch,
            state.first_seq,
            config.evolution.history_events,
            config.evolution.history_bytes.saturating_mul(2),
        ));
        let tail = Tail { js: js.clone(), config: config.clone(), log: Arc::clone(&log), health: Arc::clone(&health) };
        tokio::spawn(tail.run());
        let mut head = log.watch_head();
        let caught_up = async {
            while *head.borrow_and_update() < state.last_seq {
                if head.changed().await.is_err() {
                    return;
                }
            }
        };
        let limit = Duration::from_secs(30);
        tokio::time::timeout(limit, caught_up).await.map_err(|_| {
            format!(
                "could not read the event stream up to seq {} within {} s (at {})",
                state.last_seq,
                limit.as_secs(),
                log.head()
            )
        })?;
        tracing::info!(epoch = %state.epoch, first = state.first_seq, last = state.last_seq, "event stream read");
        Ok(Self { js, subject: stream::events_subject(config), log, health })
    }
}

impl EventStore for NatsEvents {
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
        if let Some(why) = self.health.unreachable() {
            return ready(Err(StoreError::Unavailable(why))).boxed();
        }
        let body = Outgoing { topic, publisher, ts: unix_ms(), data };
        let payload = Bytes::from(serde_json::to_vec(&body).expect("events serialize"));
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id(publisher, id).as_str());
        let (js, subject, log) = (self.js.clone(), self.subject.clone(), Arc::clone(&self.log));
        let unavailable =
            |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("JetStream did not take it: {e}"));
        async move {
            let confirmation = js.publish_with_headers(subject, headers, payload).await.map_err(|e| unavailable(&e))?;
            let ack: PublishAck = async move {
                let ack = confirmation.await.map_err(|e| unavailable(&e))?;
                Ok(Published { position: log.position(ack.sequence), duplicate: ack.duplicate })
            }
            .boxed();
            Ok(ack)
        }
        .boxed()
    }
}

/// Reads the stream into the log, forever: through NATS outages (the ordered
/// consumer re-creates itself where it stopped), and through the loss of the
/// stream (recreated with a new epoch; the log starts over).
struct Tail {
    js: Context,
    config: Config,
    log: Arc<EventLog>,
    health: Arc<NatsHealth>,
}

impl Tail {
    async fn run(self) {
        let name = self.config.nats.stream.clone();
        let mut check = tokio::time::interval(Duration::from_secs(2));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconnected = self.health.watch_reconnects();
        loop {
            let start = self.log.next_seq();
            let messages = async {
                let stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            };
            let mut messages = match messages.await {
                Ok(m) => m,
                Err(e) => {
                    self.health.tail_failed(&e);
                    self.recover().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            self.health.tail_ok();
            reconnected.borrow_and_update();
            let mut last_message = Instant::now();
            loop {
                tokio::select! {
                    next = messages.next() => match next {
                        Some(Ok(message)) => {
                            last_message = Instant::now();
                            self.append(&message);
                        }
                        Some(Err(e)) => {
                            self.health.tail_failed(&e.to_string());
                            break;
                        }
                        None => break,
                    },
                    // NATS came back: a restarted server has forgotten our (ephemeral) consumer.
                    _ = reconnected.changed() => break,
                    _ = check.tick() => match self.recover().await {
                        // The ordered consumer waits out outages by itself, but not the loss of its stream.
                        Checked::Restarted => break,
                        // The stream has events we did not get for a while: start the consumer over.
                        Checked::Behind if last_message.elapsed() > Duration::from_secs(3) => break,
                        _ => {}
                    },
                }
            }
        }
    }

    fn append(&self, message: &async_nats::jetstream::Message) {
        let Ok(info) = message.info() else { return };
        let seq = info.stream_sequence;
        let event: Incoming = match serde_json::from_slice(&message.payload) {
            Ok(e) => e,
            Err(e) => {
                // Not ours (someone published on our subject by hand): keep the seqs contiguous anyway.
                tracing::warn!(seq, error = %e, "an event in the stream is not bridge-backend's; it is skipped");
                let data = Json::from_value(&serde_json::json!({"unreadable": e.to_string()}));
                self.log.append_at(seq, "bridge.unreadable", "nats", unix_ms(), &data, Instant::now());
                return;
            }
        };
        // Publish time on this node's clock, for the publish→deliver latency.
        let age = Duration::from_millis(unix_ms().saturating_sub(event.ts));
        let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        if self.log.append_at(seq, &event.topic, &event.publisher, event.ts, &event.data, at) == Appended::AfterGap {
            tracing::warn!(seq, "events before seq {seq} left the stream before this node read them");
        }
        self.health.tailed(seq);
    }

    /// Checks that the stream is still the one the log counts in; when it was
    /// lost or recreated, starts the log over in its (new) epoch.
    async fn recover(&self) -> Checked {
        let name = &self.config.nats.stream;
        let state = match stream::current(&self.js, name).await {
            Ok(Some(state)) => state,
            Ok(None) => match stream::ensure(&self.js, &self.config).await {
                Ok((_, state)) => state,
                Err(e) => {
                    self.health.tail_failed(&e);
                    return Checked::Unknown;
                }
            },
            // NATS unreachable: nothing to decide now.
            Err(_) => return Checked::Unknown,
        };
        self.health.stream_seen(&state);
        if *self.log.epoch() != *state.epoch {
            tracing::warn!(old = %self.log.epoch(), new = %state.epoch, "the event stream was recreated: a new epoch");
            self.log.restart(&state.epoch, state.first_seq);
            return Checked::Restarted;
        }
        if state.last_seq >= self.log.next_seq() { Checked::Behind } else { Checked::Fine }
    }
}

/// What a look at the stream found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// The log holds what the stream holds.
    Fine,
    /// The stream holds events the log does not have yet.
    Behind,
    /// The stream was new: the log started over.
    Restarted,
    /// The stream could not be read.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_keep_publishers_and_id_kinds_apart() {
        assert_ne!(msg_id("a/b", &Id::Num(1)), msg_id("a/b", &Id::Str("1".into())));
        assert_ne!(msg_id("a", &Id::Str("b-c".into())), msg_id("a-b", &Id::Str("c".into())));
        assert_eq!(msg_id("a", &Id::Num(1)), "61-n31");
        assert!(msg_id("x\r\ny", &Id::Str("\u{0}".into())).bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
