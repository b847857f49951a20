//! The NATS store (`store = "nats"`): the evolution stream on NATS JetStream,
//! so any number of nodes serve one stream under one epoch, and a restart of
//! every node loses nothing. A node keeps no state on its own disk.
//!
//! - [`stream`]: the JetStream stream: created once with the epoch in its
//!   metadata, checked by every node that starts.
//! - [`events`]: publish with `Nats-Msg-Id` deduplication; the tail that fills
//!   this node's log.
//! - [`requests`]: requests to handlers on other nodes, over request/reply.
//! - [`health`]: the connection and the tail, for readiness and status.
//!
//! - [`reports`]: every bridge's latest report, in a key-value bucket every node mirrors.
//! - [`members`]: the nodes, each announcing itself in a key-value bucket.
//! - [`agents`]: the agent directory, queues and deduplication for the whole cluster.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::store::Stores;

mod agents;
mod events;
mod health;
mod members;
mod reports;
mod requests;
mod stream;

/// Connects to NATS, finds or creates the stream, and reads it into this node's
/// log. Err says what is wrong: NATS unreachable, JetStream off, a stream with
/// other settings.
pub(crate) async fn open(config: &Config, node_id: &str, incarnation: &str) -> Result<Stores, String> {
    let nats = &config.nats;
    let health = Arc::new(health::NatsHealth::new(&nats.url, &nats.stream));
    let events_health = Arc::clone(&health);
    let connect_timeout = Duration::from_millis(nats.connect_timeout_ms);
    let options = async_nats::ConnectOptions::new()
        .name(format!("bridge-backend {node_id}"))
        .connection_timeout(connect_timeout)
        .request_timeout(Some(Duration::from_millis(nats.request_timeout_ms)))
        .max_reconnects(None)
        // Back quickly after a restart of nats-server; at most a second apart while it is down.
        .reconnect_delay_callback(|attempts| Duration::from_millis((50 * attempts as u64).min(1_000)))
        .event_callback(move |event| {
            let health = Arc::clone(&events_health);
            async move { health.event(&event) }
        });
    let client = tokio::time::timeout(connect_timeout + Duration::from_secs(1), options.connect(&nats.url))
        .await
        .map_err(|_| format!("cannot reach NATS at {}: no answer within {} ms", nats.url, connect_timeout.as_millis()))?
        .map_err(|e| {
            format!(
                "cannot connect to NATS at {}: {e} (is nats-server running there? see nats.url, --nats-url)",
                nats.url
            )
        })?;
    health.set_client(client.clone());
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(Duration::from_millis(nats.request_timeout_ms));
    let (_, state) = stream::ensure(&js, config).await?;
    health.stream_seen(&state);
    let reports = reports::NatsReports::start(&js, config, node_id, Arc::clone(&health)).await?;
    let members: Arc<dyn crate::store::members::Members> =
        Arc::new(members::NatsMembers::start(&js, config, node_id, incarnation).await?);
    let agents = agents::NatsAgents::start(
        client.clone(),
        js.clone(),
        config,
        node_id,
        incarnation,
        Arc::clone(&members),
        Arc::clone(&health),
    )
    .await?;
    let events = events::NatsEvents::start(js, config, state, Arc::clone(&health)).await?;
    tracing::info!(url = %nats.url, stream = %nats.stream, epoch = %events_epoch(&events), "using the NATS store");
    Ok(Stores {
        events: Arc::new(events),
        requests: Arc::new(requests::NatsBus::new(client, &nats.subject_prefix, Arc::clone(&health))),
        agents: Arc::new(agents),
        reports: Arc::new(reports),
        members,
        health,
    })
}

fn events_epoch(events: &events::NatsEvents) -> String {
    crate::store::events::EventStore::log(events).epoch().to_string()
}
