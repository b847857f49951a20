//! The evolution socket: an event stream daemons publish to and pages
//! subscribe to (with resume), plus request/response to handler daemons.
//!
//! - [`feed`]: a connection's subscriptions and cursor (owned by its writer).
//! - [`requests`]: routing requests to handlers and answers back.
//!
//! Events and publish deduplication live in the store ([`EventStore`]); this
//! module checks roles, speaks the frames, and routes requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::{Ack, ClientFrame, ErrorCode, FrameError, Id, Json, Position, ServerFrame};
use futures_util::FutureExt;

use crate::auth::forbidden;
use crate::config::{self, Role};
use crate::demo::Faults;
use crate::mailbox::Mailbox;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::events::{EventLog, EventStore, Published};
use crate::store::requests::{Answer, RequestBus};
use crate::sync::lock;
use crate::wire::encode;
use crate::ws::{Outbound, Peer, Service};

pub(crate) mod feed;
mod requests;

use requests::{Routed, Routes};

/// A subscription change, carried from the reader to the connection's feed.
#[derive(Debug)]
pub(crate) enum SubscriptionChange {
    Subscribe { id: Id, topics: Vec<String>, since: Option<Position> },
    Unsubscribe { id: Id, topics: Vec<String> },
}

/// The evolution domain of one node (see the module docs).
#[derive(Debug)]
pub(crate) struct Evolution {
    events: Arc<dyn EventStore>,
    bus: Arc<dyn RequestBus>,
    routes: Arc<Mutex<Routes>>,
    metrics: Arc<Metrics>,
    /// The demo fault switch, in demo mode only.
    faults: Option<Arc<Faults>>,
    config: config::Evolution,
    /// HTTP publishes without an Idempotency-Key get a key nobody can repeat:
    /// this process's random prefix and a counter (unique across nodes and restarts).
    auto_prefix: String,
    auto_next: AtomicU64,
}

/// What `/status` shows of evolution.
#[derive(Debug, Clone)]
pub(crate) struct EvolutionStatus {
    pub(crate) epoch: Arc<str>,
    pub(crate) head: u64,
    pub(crate) history_events: usize,
    pub(crate) history_bytes: usize,
    pub(crate) pending_requests: usize,
    pub(crate) handlers: Vec<(String, usize)>,
}

impl Evolution {
    pub(crate) fn new(
        events: Arc<dyn EventStore>,
        bus: Arc<dyn RequestBus>,
        metrics: Arc<Metrics>,
        faults: Option<Arc<Faults>>,
        config: &config::Evolution,
    ) -> Arc<Self> {
        let evolution = Arc::new(Self {
            routes: Arc::new(Mutex::new(Routes::new(config))),
            events,
            bus,
            metrics,
            faults,
            config: config.clone(),
            auto_prefix: crate::clock::random_hex(),
            auto_next: AtomicU64::new(1),
        });
        if let Some(mut incoming) = evolution.bus.incoming() {
            // Requests from other nodes for this node's handlers.
            let routes = Arc::clone(&evolution.routes);
            tokio::spawn(async move {
                while let Some(req) = incoming.recv().await {
                    let routed = lock(&routes).request_from_node(req);
                    match routed {
                        Ok((server_id, timeout)) => arm_timer(&routes, server_id, timeout),
                        Err(req) => {
                            let message = format!("no live handler for action \"{}\"", req.action);
                            let _ = req.reply.send(Answer::Failed { code: ErrorCode::NoHandler, message });
                        }
                    }
                }
            });
        }
        evolution
    }

    /// This node's copy of the stream.
    pub(crate) fn log(&self) -> &Arc<EventLog> {
        self.events.log()
    }

    /// Publishes and waits for the store's answer (HTTP). Without `key`, the
    /// event gets a key nobody can repeat.
    pub(crate) async fn publish(
        &self,
        publisher: &str,
        key: Option<Id>,
        topic: &str,
        data: &Json,
    ) -> Result<Published, StoreError> {
        let key = key.unwrap_or_else(|| {
            Id::Str(format!("auto-{}-{}", self.auto_prefix, self.auto_next.fetch_add(1, Ordering::Relaxed)))
        });
        let ack = self.events.publish(publisher, &key, topic, data).await?;
        let published = ack.await?;
        self.metrics.published(published.duplicate);
        Ok(published)
    }

    pub(crate) fn status(&self) -> EvolutionStatus {
        let log = self.log();
        let (history_events, history_bytes) = log.size();
        let routes = lock(&self.routes);
        EvolutionStatus {
            epoch: log.epoch(),
            head: log.head(),
            history_events,
            history_bytes,
            pending_requests: routes.pending_count(),
            handlers: routes.handler_counts(),
        }
    }

    /// A socket publish: the store takes it in order; its ack is written when the
    /// store confirms (at once for the embedded store; for NATS when JetStream
    /// answers, while the reader goes on with the next frame).
    async fn publish_frame(&self, peer: &Arc<Peer<SubscriptionChange>>, p: bridge_core::protocol::Publish) {
        let answer = match self.events.publish(&peer.identity(), &p.id, &p.topic, &p.data).await {
            Err(e) => answer_publish(&self.metrics, self.faults.as_deref(), &**peer, p.id, Err(e)),
            Ok(mut ack) => match (&mut ack).now_or_never() {
                Some(result) => answer_publish(&self.metrics, self.faults.as_deref(), &**peer, p.id, result),
                None => {
                    let (metrics, faults, peer) = (Arc::clone(&self.metrics), self.faults.clone(), Arc::clone(peer));
                    tokio::spawn(async move {
                        let result = ack.await;
                        if let Some(frame) = answer_publish(&metrics, faults.as_deref(), &*peer, p.id, result) {
                            // Wait for room like every answer: a publisher reading its acks slowly is slowed
                            // down (JetStream's bound on unconfirmed publishes holds the reader back), not cut.
                            let _ = peer.send_frame(&frame).await;
                        }
                    });
                    return;
                }
            },
        };
        // Answered at once: wait for room, so a client that does not read its acks is slowed down.
        if let Some(frame) = answer {
            let _ = peer.send_frame(&frame).await;
        }
    }
}

/// The answer to a publish: its ack, or a retryable `unavailable` error; None
/// when the demo cuts the connection instead.
fn answer_publish(
    metrics: &Metrics,
    faults: Option<&Faults>,
    peer: &dyn Mailbox,
    id: Id,
    result: Result<Published, StoreError>,
) -> Option<ServerFrame> {
    match result {
        Ok(published) => {
            metrics.published(published.duplicate);
            if faults.is_some_and(|f| f.cut_after_accept("evolution")) {
                peer.abort("demo: accepted, then cut before the ack");
                return None;
            }
            let ack = Ack { position: Some(published.position), duplicate: published.duplicate, ..Ack::new(id) };
            Some(ServerFrame::Ack(ack))
        }
        Err(StoreError::Unavailable(why)) => {
            metrics.error(ErrorCode::Unavailable.as_str());
            let message = format!("the event was not published: {why}; retry with the same id");
            Some(ServerFrame::Error(bridge_core::protocol::ErrorFrame::new(Some(id), ErrorCode::Unavailable, message)))
        }
    }
}

/// Fails a routed request with `timeout` when its time is up.
fn arm_timer(routes: &Arc<Mutex<Routes>>, server_id: u64, timeout: Duration) {
    let expiring = Arc::clone(routes);
    let timer = tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        lock(&expiring).expire(server_id);
    });
    lock(routes).set_timer(server_id, timer.abort_handle());
}

impl Service for Evolution {
    type Feed = feed::Feed;
    type Command = SubscriptionChange;
    const SOCKET: &'static str = "evolution";

    fn open(&self) -> feed::Feed {
        feed::Feed::new(Arc::clone(self.log()), self.config.max_subscriptions)
    }

    async fn handle(&self, frame: ClientFrame, peer: &Arc<Peer<SubscriptionChange>>) -> Result<(), FrameError> {
        let needs = |role: Role| if peer.grant.allows(role) { Ok(()) } else { Err(forbidden(&frame, role)) };
        match &frame {
            ClientFrame::Subscribe(_) | ClientFrame::Unsubscribe(_) => needs(Role::Subscribe)?,
            ClientFrame::Publish(_) | ClientFrame::Request(_) => needs(Role::Publish)?,
            ClientFrame::Handle(_) | ClientFrame::Response(_) => needs(Role::Handle)?,
            _ => {}
        }
        let kind = frame.kind();
        let conn: Arc<dyn Mailbox> = Arc::clone(peer) as Arc<dyn Mailbox>;
        match frame {
            ClientFrame::Subscribe(s) => {
                let change = SubscriptionChange::Subscribe { id: s.id, topics: s.topics, since: s.since };
                let _ = peer.send(Outbound::Command(Box::new(change))).await;
            }
            ClientFrame::Unsubscribe(u) => {
                let change = SubscriptionChange::Unsubscribe { id: u.id, topics: u.topics };
                let _ = peer.send(Outbound::Command(Box::new(change))).await;
            }
            ClientFrame::Publish(p) => self.publish_frame(peer, p).await,
            ClientFrame::Handle(h) => {
                let gained = {
                    let mut routes = lock(&self.routes);
                    if routes.actions_of(peer.id) + h.actions.len() > self.config.max_actions {
                        return Err(FrameError {
                            code: ErrorCode::LimitExceeded,
                            message: format!("a connection may handle at most {} actions", self.config.max_actions),
                            id: Some(h.id),
                        });
                    }
                    routes.handle(&conn, &h.actions)
                };
                for action in gained {
                    self.bus.advertise(&action).await;
                }
                let _ = peer.send_frame(&ServerFrame::Ack(Ack::new(h.id))).await;
            }
            ClientFrame::Request(r) => {
                let routed = lock(&self.routes).request(&conn, &r, self.bus.reaches_other_nodes())?;
                match routed {
                    Routed::Sent { server_id, timeout } => arm_timer(&self.routes, server_id, timeout),
                    Routed::Forward { server_id, timeout } => {
                        let answer = self.bus.forward(&r.action, r.params.as_ref(), timeout);
                        let routes = Arc::clone(&self.routes);
                        tokio::spawn(async move {
                            let answer = answer.await;
                            lock(&routes).forwarded(server_id, answer);
                        });
                    }
                    Routed::Done => {}
                }
            }
            ClientFrame::Response(r) => lock(&self.routes).respond(peer.id, r)?,
            other => {
                return Err(FrameError {
                    code: ErrorCode::UnknownType,
                    message: format!("\"{kind}\" is not a frame of the evolution socket"),
                    id: other.id().cloned(),
                });
            }
        }
        Ok(())
    }

    fn command(&self, feed: &mut feed::Feed, command: SubscriptionChange) -> Vec<Utf8Bytes> {
        match command {
            SubscriptionChange::Subscribe { id, topics, since } => match feed.subscribe(id, topics, since) {
                Ok(frames) => frames,
                Err(e) => {
                    self.metrics.error(e.code.as_str());
                    vec![encode(&ServerFrame::Error(e.to_frame()))]
                }
            },
            SubscriptionChange::Unsubscribe { id, topics } => vec![feed.unsubscribe(id, &topics)],
        }
    }

    fn closed(&self, peer: &Arc<Peer<SubscriptionChange>>) {
        let lost = lock(&self.routes).disconnect(peer.id);
        for action in lost {
            self.bus.withdraw(&action);
        }
    }
}
