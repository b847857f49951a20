//! The JetStream stream that holds the events: created by the first node with
//! the configured limits and a new epoch in its metadata, then only checked.
//! An existing stream with other settings is an error that names each
//! difference; nothing is changed or deleted.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{Context, GetStreamErrorKind};
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType, Stream};

use crate::config::Config;

/// The stream's metadata key holding the epoch.
const EPOCH_KEY: &str = "bridge_epoch";

/// What a node needs to know about the stream when it starts tailing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamState {
    pub(super) epoch: String,
    /// The oldest event held (the last seq + 1 when empty).
    pub(super) first_seq: u64,
    /// The newest event held (0 when the stream never had one).
    pub(super) last_seq: u64,
}

/// The stream this node's configuration asks for.
pub(super) fn wanted(config: &Config, epoch: &str) -> StreamConfig {
    let nats = &config.nats;
    StreamConfig {
        name: nats.stream.clone(),
        description: Some("bridge-backend evolution events".into()),
        subjects: vec![events_subject(config)],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_messages: i64::try_from(config.evolution.history_events).unwrap_or(i64::MAX),
        max_bytes: i64::try_from(config.evolution.history_bytes).unwrap_or(i64::MAX),
        max_age: Duration::from_millis(nats.max_age_ms),
        duplicate_window: Duration::from_millis(config.evolution.dedup_ttl_ms),
        num_replicas: nats.replicas,
        allow_direct: true,
        metadata: [(EPOCH_KEY.to_owned(), epoch.to_owned())].into_iter().collect(),
        ..Default::default()
    }
}

/// The subject every event is published on.
pub(super) fn events_subject(config: &Config) -> String {
    format!("{}.events", config.nats.subject_prefix)
}

/// The differences that make `have` unusable for a node configured as `want`, in words.
fn differences(have: &StreamConfig, want: &StreamConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, have: String, want: String, key: &str| {
        if have != want {
            out.push(format!("{what} is {have}, this node wants {want} ({key})"));
        }
    };
    differ("subjects", format!("{:?}", have.subjects), format!("{:?}", want.subjects), "nats.subject_prefix");
    differ("storage", format!("{:?}", have.storage), format!("{:?}", want.storage), "file storage");
    differ("retention", format!("{:?}", have.retention), format!("{:?}", want.retention), "limits");
    differ("discard", format!("{:?}", have.discard), format!("{:?}", want.discard), "discard old");
    differ("max_msgs", have.max_messages.to_string(), want.max_messages.to_string(), "evolution.history_events");
    differ("max_bytes", have.max_bytes.to_string(), want.max_bytes.to_string(), "evolution.history_bytes");
    differ("max_age", ms(have.max_age), ms(want.max_age), "nats.max_age_ms");
    differ("duplicate_window", ms(have.duplicate_window), ms(want.duplicate_window), "evolution.dedup_ttl_ms");
    differ("replicas", have.num_replicas.to_string(), want.num_replicas.to_string(), "nats.replicas");
    if !have.metadata.contains_key(EPOCH_KEY) {
        out.push(format!("it has no \"{EPOCH_KEY}\" in its metadata: bridge-backend did not create it"));
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn state_of(stream: &Stream) -> Result<StreamState, String> {
    let info = stream.cached_info();
    let epoch = info.config.metadata.get(EPOCH_KEY).cloned().ok_or("the stream has no epoch")?;
    Ok(StreamState { epoch, first_seq: info.state.first_sequence.max(1), last_seq: info.state.last_sequence })
}

/// Finds the stream, or creates it with a new epoch. Err names what is wrong.
pub(super) async fn ensure(js: &Context, config: &Config) -> Result<(Stream, StreamState), String> {
    let name = &config.nats.stream;
    let want = wanted(config, &crate::clock::random_hex());
    for _ in 0..3 {
        match js.get_stream(name).await {
            Ok(stream) => {
                let have = &stream.cached_info().config;
                let diffs = differences(have, &want);
                if !diffs.is_empty() {
                    return Err(format!(
                        "the JetStream stream {name} exists with other settings: {}. Give every node the same \
                         settings, or remove the stream yourself if its events may go (nats stream rm {name}); \
                         nothing was changed",
                        diffs.join("; ")
                    ));
                }
                let state = state_of(&stream)?;
                return Ok((stream, state));
            }
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(err) if err.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    match js.create_stream(want.clone()).await {
                        Ok(stream) => {
                            tracing::info!(stream = %name, epoch = ?want.metadata.get(EPOCH_KEY), "created the event stream");
                            let state = state_of(&stream)?;
                            return Ok((stream, state));
                        }
                        // Another node created it first: read that one.
                        Err(e) => tracing::debug!(error = %e, "creating the stream failed; reading it again"),
                    }
                }
                _ => return Err(format!("JetStream cannot be used: {e} (is nats-server running with -js?)")),
            },
        }
    }
    Err(format!("the JetStream stream {name} could be neither read nor created"))
}

/// The stream's current epoch and sequence range, or None when it is gone.
pub(super) async fn current(js: &Context, name: &str) -> Result<Option<StreamState>, String> {
    match js.get_stream(name).await {
        Ok(stream) => state_of(&stream).map(Some),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err) if err.error_code() == ErrorCode::STREAM_NOT_FOUND => Ok(None),
            _ => Err(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_with_other_limits_is_described_not_changed() {
        let config = Config::default();
        let want = wanted(&config, "e1");
        assert!(differences(&wanted(&config, "e2"), &want).is_empty(), "the epoch is not a setting");
        let mut have = want.clone();
        have.max_messages = 5;
        have.metadata.clear();
        let diffs = differences(&have, &want);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].contains("max_msgs is 5, this node wants 10000 (evolution.history_events)"), "{diffs:?}");
        assert!(diffs[1].contains("did not create it"), "{diffs:?}");
    }
}
