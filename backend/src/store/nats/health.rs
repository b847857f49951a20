//! How the NATS store is doing: the connection (from the client's events and
//! state), the tail of the event stream, and the stream's last known size.

use std::sync::Mutex;

use async_nats::connection::State;
use serde_json::json;
use tokio::sync::watch;

use super::stream::StreamState;
use crate::clock::unix_ms;
use crate::store::{StoreHealth, StoreStatus};
use crate::sync::lock;

#[derive(Debug, Default)]
struct Seen {
    /// When the connection was last lost (ms since the Unix epoch), while it is down.
    down_since: Option<u64>,
    last_error: Option<String>,
    reconnects: u64,
    tail_error: Option<String>,
    tailed_seq: u64,
    stream: Option<StreamState>,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsHealth {
    url: String,
    stream: String,
    client: Mutex<Option<async_nats::Client>>,
    seen: Mutex<Seen>,
    /// Counts reconnections, so the tail can start its consumer over at once.
    reconnected: watch::Sender<u64>,
}

impl NatsHealth {
    pub(super) fn new(url: &str, stream: &str) -> Self {
        Self {
            url: url.to_owned(),
            stream: stream.to_owned(),
            client: Mutex::new(None),
            seen: Mutex::default(),
            reconnected: watch::Sender::new(0),
        }
    }

    /// Changes at every reconnection to NATS.
    pub(super) fn watch_reconnects(&self) -> watch::Receiver<u64> {
        self.reconnected.subscribe()
    }

    pub(super) fn set_client(&self, client: async_nats::Client) {
        *lock(&self.client) = Some(client);
    }

    fn state(&self) -> State {
        lock(&self.client).as_ref().map_or(State::Pending, async_nats::Client::connection_state)
    }

    /// Why NATS cannot be used now, if it cannot.
    pub(super) fn unreachable(&self) -> Option<String> {
        if self.state() == State::Connected {
            return None;
        }
        let seen = lock(&self.seen);
        let since = seen.down_since.map_or_else(String::new, |t| format!(" for {} ms", unix_ms().saturating_sub(t)));
        let error = seen.last_error.as_deref().map_or_else(String::new, |e| format!(" ({e})"));
        Some(format!("NATS at {} is unreachable{since}{error}; reconnecting", self.url))
    }

    /// A connection event from the client.
    pub(super) fn event(&self, event: &async_nats::Event) {
        let mut seen = lock(&self.seen);
        match event {
            async_nats::Event::Connected => {
                if seen.down_since.take().is_some() {
                    seen.reconnects += 1;
                    self.reconnected.send_replace(seen.reconnects);
                    tracing::info!(url = %self.url, "NATS connection back");
                }
            }
            async_nats::Event::Disconnected => {
                seen.down_since.get_or_insert_with(unix_ms);
                tracing::warn!(url = %self.url, "NATS connection lost; reconnecting");
            }
            other => {
                seen.last_error = Some(other.to_string());
                tracing::debug!(url = %self.url, event = %other, "NATS");
            }
        }
    }

    pub(super) fn tailed(&self, seq: u64) {
        lock(&self.seen).tailed_seq = seq;
    }

    pub(super) fn tail_ok(&self) {
        lock(&self.seen).tail_error = None;
    }

    pub(super) fn tail_failed(&self, why: &str) {
        let mut seen = lock(&self.seen);
        if seen.tail_error.as_deref() != Some(why) {
            tracing::warn!(stream = %self.stream, error = %why, "cannot read the event stream; retrying");
        }
        seen.tail_error = Some(why.to_owned());
    }

    pub(super) fn stream_seen(&self, state: &StreamState) {
        lock(&self.seen).stream = Some(state.clone());
    }
}

impl StoreHealth for NatsHealth {
    fn status(&self) -> StoreStatus {
        let problem = self.unreachable();
        let seen = lock(&self.seen);
        let problem = problem.or_else(|| {
            seen.tail_error.as_ref().map(|e| format!("the event stream {} cannot be read: {e}", self.stream))
        });
        let state = match self.state() {
            State::Connected => "connected",
            State::Disconnected => "disconnected",
            State::Pending => "connecting",
        };
        StoreStatus {
            kind: "nats",
            problem,
            details: json!({
                "url": self.url,
                "state": state,
                "reconnects": seen.reconnects,
                "lastError": seen.last_error,
                "stream": self.stream,
                "epoch": seen.stream.as_ref().map(|s| s.epoch.clone()),
                "firstSeq": seen.stream.as_ref().map(|s| s.first_seq),
                "lastSeq": seen.stream.as_ref().map(|s| s.last_seq),
                "tailedSeq": seen.tailed_seq,
            }),
        }
    }
}
