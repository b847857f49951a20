//! The agent directory for the whole cluster.
//!
//! - Names: a key-value bucket holds each agent's record (the node and the
//!   connection holding it, who may take it over, its capabilities, whether it
//!   is online). A register writes the record with compare-and-set, so a name
//!   is held by one live connection cluster-wide; a holder whose node is down
//!   counts as gone. Every node mirrors the bucket for `discover` and counts.
//! - Messages: a JetStream stream with one subject per recipient is the offline
//!   queue, durable across restarts of every node, bounded per recipient by
//!   `agents.queue_messages` and in all by `agents.total_queue_bytes`, aged out
//!   after `agents.max_expiry_ms`. A send is accepted once per (sender, id) by
//!   `Nats-Msg-Id`. The node holding the recipient reads its subject from the
//!   start, so queued and redelivered messages come first and in order, then
//!   new ones; a recipient's `ack` deletes the message from the stream.
//! - Broadcasts, presence and takeovers travel on plain subjects every node
//!   listens to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::context::Context;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType};
use axum::body::Bytes;
use bridge_core::protocol::{
    Ack, AgentInfo, DeliveryStatus, ErrorCode, FrameError, Id, Json, Message, Presence, Priority, Register, Send,
    ServerFrame, close,
};
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, ready};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::health::NatsHealth;
use crate::clock::unix_ms;
use crate::config::Config;
use crate::mailbox::Mailbox;
use crate::store::agents::{AgentCounts, AgentStore};
use crate::store::members::Members;
use crate::sync::lock;
use crate::wire::encode;

type Conn = Arc<dyn Mailbox>;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn error(id: &Id, code: ErrorCode, message: impl Into<String>) -> FrameError {
    FrameError { code, message: message.into(), id: Some(id.clone()) }
}

/// An agent's record in the directory bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    node: String,
    /// The run of the node that holds it (a restarted node does not revive it).
    incarnation: String,
    conn: u64,
    holder: String,
    capabilities: Vec<String>,
    online: bool,
    since: u64,
}

/// A queued message, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Queued {
    id: Id,
    from: String,
    message_type: String,
    content: Json,
    priority: Priority,
    ts: u64,
    expires_unix_ms: u64,
    /// The recipient was online when it was sent (so it may have been delivered once already).
    sent_online: bool,
}

/// A broadcast or presence notice, as it travels between nodes. Externally
/// tagged: the content is raw JSON, which an internally tagged enum cannot carry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Notice {
    Broadcast { from: String, id: Id, message_type: String, content: Json, ts: u64 },
    Presence { agent: String, online: bool, ts: u64 },
    Replace { conn: u64 },
}

/// An agent held by a connection of this node.
#[derive(Debug)]
struct Held {
    name: String,
    conn: Conn,
    /// Reads its queue into the connection.
    delivery: JoinHandle<()>,
    /// Messages given to the connection and not acked yet: (from, id) -> stream seq.
    delivered: Arc<Mutex<HashMap<(String, Id), u64>>>,
}

#[derive(Debug, Default)]
struct Local {
    by_conn: HashMap<u64, Held>,
    watchers: HashMap<u64, Conn>,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct NatsAgents {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: async_nats::Client,
    js: Context,
    directory: kv::Store,
    mirror: Mutex<HashMap<String, Record>>,
    queue_stream: String,
    queued_total: std::sync::atomic::AtomicU64,
    members: Arc<dyn Members>,
    node: String,
    incarnation: String,
    prefix: String,
    health: Arc<NatsHealth>,
    config: crate::config::Agents,
    local: Mutex<Local>,
}

impl Inner {
    fn queue_subject(&self, agent: &str) -> String {
        format!("{}.agents.q.{}", self.prefix, hex(agent))
    }

    fn notices(&self) -> String {
        format!("{}.agents.notices", self.prefix)
    }

    /// The record of `agent` as this node last saw it.
    fn record(&self, agent: &str) -> Option<Record> {
        lock(&self.mirror).get(agent).cloned()
    }

    /// Whether `r` is held by a live connection (its node is up).
    fn live(&self, r: &Record) -> bool {
        r.online && self.members.is_up(&r.node, &r.incarnation)
    }

    fn notify(&self, notice: &Notice) {
        let body = Bytes::from(serde_json::to_vec(notice).expect("notices serialize"));
        let (client, subject) = (self.client.clone(), self.notices());
        tokio::spawn(async move {
            let _ = client.publish(subject, body).await;
        });
    }

    /// How many messages wait in `agent`'s queue (None: JetStream did not say).
    async fn queued(&self, agent: &str) -> Option<usize> {
        let stream = self.js.get_stream(&self.queue_stream).await.ok()?;
        let mut subjects = stream.info_with_subjects(self.queue_subject(agent)).await.ok()?;
        let mut n = 0;
        while let Some(Ok((_, count))) = subjects.next().await {
            n += count;
        }
        Some(n)
    }

    /// Makes room for a new name: forgets the longest-offline agent whose queue
    /// is empty, as `store = "memory"` does. False when there is none.
    async fn forget_one(&self) -> bool {
        let mut offline: Vec<(u64, String)> =
            lock(&self.mirror).iter().filter(|(_, r)| !self.live(r)).map(|(n, r)| (r.since, n.clone())).collect();
        offline.sort();
        for (_, name) in offline.into_iter().take(16) {
            if self.queued(&name).await != Some(0) {
                continue;
            }
            let Ok(Some(entry)) = self.directory.entry(&name).await else { continue };
            let still_offline = serde_json::from_slice::<Record>(&entry.value).is_ok_and(|r| !self.live(&r));
            if still_offline && self.directory.delete_expect_revision(&name, Some(entry.revision)).await.is_ok() {
                lock(&self.mirror).remove(&name);
                return true;
            }
        }
        false
    }

    /// The name held by the connection `conn_id`, or `not_registered`.
    fn registered(&self, conn_id: u64, id: &Id) -> Result<String, FrameError> {
        lock(&self.local).by_conn.get(&conn_id).map(|h| h.name.clone()).ok_or_else(|| {
            error(id, ErrorCode::NotRegistered, "send register first: agent messages need a registered sender")
        })
    }
}

impl NatsAgents {
    pub(super) async fn start(
        client: async_nats::Client,
        js: Context,
        config: &Config,
        node: &str,
        incarnation: &str,
        members: Arc<dyn Members>,
        health: Arc<NatsHealth>,
    ) -> Result<Self, String> {
        let a = &config.agents;
        let directory = super::members::bucket(
            &js,
            kv::Config {
                bucket: format!("{}_AGENTS", config.nats.stream),
                description: "bridge-backend: agent names and who holds them".into(),
                history: 1,
                num_replicas: config.nats.replicas,
                ..Default::default()
            },
        )
        .await?;
        let queue_stream = format!("{}_AGENT_QUEUE", config.nats.stream);
        let max_age = Duration::from_millis(a.max_expiry_ms);
        let wanted = StreamConfig {
            name: queue_stream.clone(),
            description: Some("bridge-backend: agent messages waiting for their recipient's ack".into()),
            subjects: vec![format!("{}.agents.q.*", config.nats.subject_prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::New,
            discard_new_per_subject: true,
            max_messages_per_subject: i64::try_from(a.queue_messages).unwrap_or(i64::MAX),
            max_bytes: i64::try_from(a.total_queue_bytes).unwrap_or(i64::MAX),
            max_age,
            duplicate_window: Duration::from_millis(a.dedup_ttl_ms).min(max_age),
            num_replicas: config.nats.replicas,
            ..Default::default()
        };
        if js.get_stream(&queue_stream).await.is_err() && js.create_stream(wanted).await.is_err() {
            js.get_stream(&queue_stream)
                .await
                .map_err(|e| format!("the agent queue stream {queue_stream} can be neither read nor created: {e}"))?;
        }
        let inner = Arc::new(Inner {
            client,
            js,
            directory,
            mirror: Mutex::new(HashMap::new()),
            queue_stream,
            queued_total: std::sync::atomic::AtomicU64::new(0),
            members,
            node: node.to_owned(),
            incarnation: incarnation.to_owned(),
            prefix: config.nats.subject_prefix.clone(),
            health,
            config: a.clone(),
            local: Mutex::new(Local::default()),
        });
        tokio::spawn(mirror_directory(Arc::clone(&inner)));
        super::members::loaded(&inner.directory, || lock(&inner.mirror).len()).await;
        tokio::spawn(listen(Arc::clone(&inner)));
        tokio::spawn(count_queued(Arc::clone(&inner)));
        tokio::spawn(take_overs(Arc::clone(&inner)));
        Ok(Self { inner })
    }
}

/// Keeps this node's copy of the directory.
async fn mirror_directory(inner: Arc<Inner>) {
    loop {
        if let Ok(mut entries) = inner.directory.watch_with_history(">").await {
            while let Some(Ok(entry)) = entries.next().await {
                if entry.operation != kv::Operation::Put {
                    lock(&inner.mirror).remove(&entry.key);
                } else if let Ok(r) = serde_json::from_slice::<Record>(&entry.value) {
                    lock(&inner.mirror).insert(entry.key, r);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Broadcasts, presence and takeovers from every node, for this node's connections.
async fn listen(inner: Arc<Inner>) {
    loop {
        if let Ok(mut notices) = inner.client.subscribe(inner.notices()).await {
            while let Some(msg) = notices.next().await {
                let Ok(notice) = serde_json::from_slice::<Notice>(&msg.payload) else { continue };
                let local = lock(&inner.local);
                match notice {
                    Notice::Broadcast { from, id, message_type, content, ts } => {
                        let frame = encode(&ServerFrame::Message(Message {
                            id,
                            from: from.clone(),
                            message_type,
                            content,
                            ts,
                            priority: Priority::Normal,
                            broadcast: true,
                            redelivery: 0,
                        }));
                        for held in local.by_conn.values().filter(|h| h.name != from) {
                            let _ = held.conn.push(frame.clone());
                        }
                    }
                    Notice::Presence { agent, online, ts } => {
                        let frame = encode(&ServerFrame::Presence(Presence { agent: agent.clone(), online, ts }));
                        for (conn_id, w) in &local.watchers {
                            if local.by_conn.get(conn_id).is_none_or(|h| h.name != agent) {
                                let _ = w.push(frame.clone());
                            }
                        }
                    }
                    Notice::Replace { .. } => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Refreshes the count of queued messages for status (every 5 s).
async fn count_queued(inner: Arc<Inner>) {
    loop {
        if let Ok(mut stream) = inner.js.get_stream(&inner.queue_stream).await
            && let Ok(info) = stream.info().await
        {
            inner.queued_total.store(info.state.messages, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Reads `agent`'s queue into `conn`, from its first message on, until aborted.
async fn deliver(
    inner: Arc<Inner>,
    agent: String,
    conn: Conn,
    delivered: Arc<Mutex<HashMap<(String, Id), u64>>>,
    since: u64,
) {
    let subject = inner.queue_subject(&agent);
    loop {
        let messages = async {
            let stream = inner.js.get_stream(&inner.queue_stream).await.map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: subject.clone(),
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let mut messages = match messages.await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(agent, error = %e, "cannot read the agent's queue; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(Ok(message)) = messages.next().await {
            let Ok(info) = message.info() else { continue };
            let seq = info.stream_sequence;
            let Ok(q) = serde_json::from_slice::<Queued>(&message.payload) else { continue };
            if q.expires_unix_ms <= unix_ms() {
                let inner = Arc::clone(&inner);
                tokio::spawn(async move {
                    if let Ok(stream) = inner.js.get_stream(&inner.queue_stream).await {
                        let _ = stream.delete_message(seq).await;
                    }
                });
                continue;
            }
            // Sent to an online recipient before this connection took the name: delivered once already.
            let redelivery = u32::from(q.sent_online && q.ts < since);
            lock(&delivered).insert((q.from.clone(), q.id.clone()), seq);
            let frame = ServerFrame::Message(Message {
                id: q.id,
                from: q.from,
                message_type: q.message_type,
                content: q.content,
                ts: q.ts,
                priority: q.priority,
                broadcast: false,
                redelivery,
            });
            if conn.push_frame(&frame).is_err() {
                // The connection is closing (or a slow consumer): the rest go out after its reconnect.
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl AgentStore for NatsAgents {
    fn register(&self, conn: &Conn, reg: &Register) -> BoxFuture<'static, Result<(), FrameError>> {
        let (inner, conn, reg) = (Arc::clone(&self.inner), Arc::clone(conn), reg.clone());
        async move {
            if let Some(held) = lock(&inner.local).by_conn.get(&conn.id()) {
                if held.name == reg.agent {
                    let _ = conn.push_frame(&ServerFrame::Ack(Ack { queued: Some(0), ..Ack::new(reg.id.clone()) }));
                    return Ok(());
                }
                return Err(error(
                    &reg.id,
                    ErrorCode::BadRequest,
                    format!(
                        "this connection is already registered as \"{}\"; open another connection for another agent",
                        held.name
                    ),
                ));
            }
            if let Some(why) = inner.health.unreachable() {
                return Err(error(&reg.id, ErrorCode::Unavailable, why));
            }
            let identity = conn.identity();
            let since = unix_ms();
            for _ in 0..5 {
                let entry = inner
                    .directory
                    .entry(&reg.agent)
                    .await
                    .map_err(|e| error(&reg.id, ErrorCode::Unavailable, e.to_string()))?;
                let current = entry.as_ref().and_then(|e| serde_json::from_slice::<Record>(&e.value).ok());
                let mine =
                    |r: &Record| r.node == inner.node && r.incarnation == inner.incarnation && r.conn == conn.id();
                if let Some(r) = current.as_ref().filter(|r| inner.live(r) && !mine(r)) {
                    if !(reg.takeover && r.holder == identity) {
                        let how = if r.holder == identity {
                            "send register with \"takeover\": true to replace that connection"
                        } else {
                            "only a connection with the same client name (and token) may take it over"
                        };
                        return Err(error(
                            &reg.id,
                            ErrorCode::NameTaken,
                            format!("\"{}\" is held by a live connection on node {}; {how}", reg.agent, r.node),
                        ));
                    }
                    if r.node == inner.node && r.incarnation == inner.incarnation {
                        if let Some(old) = lock(&inner.local).by_conn.remove(&r.conn) {
                            old.delivery.abort();
                            old.conn.close(close::REPLACED, "replaced by a newer connection of the same agent");
                        }
                    } else {
                        let subject = format!("{}.agents.replace.{}", inner.prefix, hex(&r.node));
                        let body =
                            Bytes::from(serde_json::to_vec(&Notice::Replace { conn: r.conn }).expect("serialize"));
                        let _ = inner.client.publish(subject, body).await;
                    }
                }
                if entry.is_none() && lock(&inner.mirror).len() >= inner.config.max_agents && !inner.forget_one().await
                {
                    return Err(error(
                        &reg.id,
                        ErrorCode::LimitExceeded,
                        format!("the cluster knows {} agents, its limit (agents.max_agents)", inner.config.max_agents),
                    ));
                }
                let record = Record {
                    node: inner.node.clone(),
                    incarnation: inner.incarnation.clone(),
                    conn: conn.id(),
                    holder: identity.clone(),
                    capabilities: reg.capabilities.clone(),
                    online: true,
                    since,
                };
                let value = Bytes::from(serde_json::to_vec(&record).expect("records serialize"));
                let written = match &entry {
                    Some(e) => inner.directory.update(&reg.agent, value, e.revision).await.is_ok(),
                    None => inner.directory.create(&reg.agent, value).await.is_ok(),
                };
                if !written {
                    continue; // Another node wrote it meanwhile: look again.
                }
                lock(&inner.mirror).insert(reg.agent.clone(), record);
                let queued = inner.queued(&reg.agent).await.unwrap_or(0);
                // The ack goes first; the queue's messages follow it, oldest first.
                let _ = conn.push_frame(&ServerFrame::Ack(Ack {
                    queued: Some(u32::try_from(queued).unwrap_or(u32::MAX)),
                    ..Ack::new(reg.id.clone())
                }));
                let delivered = Arc::new(Mutex::new(HashMap::new()));
                let delivery = tokio::spawn(deliver(
                    Arc::clone(&inner),
                    reg.agent.clone(),
                    Arc::clone(&conn),
                    Arc::clone(&delivered),
                    since,
                ));
                let mut local = lock(&inner.local);
                local
                    .by_conn
                    .insert(conn.id(), Held { name: reg.agent.clone(), conn: Arc::clone(&conn), delivery, delivered });
                if reg.presence {
                    local.watchers.insert(conn.id(), Arc::clone(&conn));
                }
                drop(local);
                inner.notify(&Notice::Presence { agent: reg.agent.clone(), online: true, ts: since });
                return Ok(());
            }
            Err(error(&reg.id, ErrorCode::Unavailable, "the agent directory is too busy to take this name; retry"))
        }
        .boxed()
    }

    fn send(&self, sender: &Conn, msg: Send) -> BoxFuture<'static, Result<(DeliveryStatus, bool), FrameError>> {
        let inner = Arc::clone(&self.inner);
        let from = match inner.registered(sender.id(), &msg.id) {
            Ok(f) => f,
            Err(e) => return ready(Err(e)).boxed(),
        };
        async move {
            let Some(record) = inner.record(&msg.to) else {
                return Err(error(
                    &msg.id,
                    ErrorCode::UnknownAgent,
                    format!("no agent \"{}\" has registered in this cluster; use discover to list agents", msg.to),
                ));
            };
            if let Some(why) = inner.health.unreachable() {
                return Err(error(&msg.id, ErrorCode::Unavailable, why));
            }
            let online = inner.live(&record);
            let max = inner.config.max_expiry_ms;
            let now = unix_ms();
            let stored = Queued {
                id: msg.id.clone(),
                from: from.clone(),
                message_type: msg.message_type,
                content: msg.content,
                priority: msg.priority.unwrap_or_default(),
                ts: now,
                expires_unix_ms: now + msg.expires_in_ms.map_or(max, |e| e.min(max)),
                sent_online: online,
            };
            let mut headers = async_nats::HeaderMap::new();
            let kind = match &msg.id {
                Id::Num(n) => format!("n{}", hex(&n.to_string())),
                Id::Str(s) => format!("s{}", hex(s)),
            };
            headers.insert("Nats-Msg-Id", format!("{}-{kind}", hex(&from)).as_str());
            let body = Bytes::from(serde_json::to_vec(&stored).expect("messages serialize"));
            let refused = |e: &dyn std::fmt::Display| {
                let text = e.to_string();
                if text.contains("maximum messages") || text.contains("maximum bytes") {
                    error(
                        &msg.id,
                        ErrorCode::QueueFull,
                        format!("\"{}\" has too many unacknowledged messages; retry later", msg.to),
                    )
                } else {
                    error(&msg.id, ErrorCode::Unavailable, format!("the message was not accepted: {text}"))
                }
            };
            let ack = inner
                .js
                .publish_with_headers(inner.queue_subject(&msg.to), headers, body)
                .await
                .map_err(|e| refused(&e))?
                .await
                .map_err(|e| refused(&e))?;
            let status = if online { DeliveryStatus::Delivered } else { DeliveryStatus::Queued };
            Ok((status, ack.duplicate))
        }
        .boxed()
    }

    fn ack(&self, conn: &Conn, id: &Id, from: &str) -> BoxFuture<'static, Result<(), FrameError>> {
        let inner = Arc::clone(&self.inner);
        let (id, from) = (id.clone(), from.to_owned());
        let seq = {
            let local = lock(&inner.local);
            match local.by_conn.get(&conn.id()) {
                None => None,
                Some(held) => lock(&held.delivered).remove(&(from.clone(), id.clone())).map(Some).unwrap_or(Some(0)),
            }
        };
        let unknown = |id: &Id, from: &str| {
            error(
                id,
                ErrorCode::UnknownMessage,
                format!("no unacknowledged message \"{id}\" from \"{from}\" (already acked, expired, or never sent)"),
            )
        };
        match seq {
            None => ready(Err(error(
                &id,
                ErrorCode::NotRegistered,
                "send register first: agent messages need a registered sender",
            )))
            .boxed(),
            Some(0) => ready(Err(unknown(&id, &from))).boxed(),
            Some(seq) => async move {
                let stream = inner
                    .js
                    .get_stream(&inner.queue_stream)
                    .await
                    .map_err(|e| error(&id, ErrorCode::Unavailable, e.to_string()))?;
                match stream.delete_message(seq).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(unknown(&id, &from)),
                }
            }
            .boxed(),
        }
    }

    fn broadcast(
        &self,
        sender: &Conn,
        id: &Id,
        message_type: &str,
        content: &Json,
    ) -> BoxFuture<'static, Result<u32, FrameError>> {
        let inner = &self.inner;
        let from = match inner.registered(sender.id(), id) {
            Ok(f) => f,
            Err(e) => return ready(Err(e)).boxed(),
        };
        let recipients = lock(&inner.mirror).iter().filter(|(name, r)| **name != from && inner.live(r)).count();
        inner.notify(&Notice::Broadcast {
            from,
            id: id.clone(),
            message_type: message_type.to_owned(),
            content: content.clone(),
            ts: unix_ms(),
        });
        ready(Ok(u32::try_from(recipients).unwrap_or(u32::MAX))).boxed()
    }

    fn discover(&self, capability: Option<&str>) -> BoxFuture<'static, Result<Vec<AgentInfo>, FrameError>> {
        let inner = &self.inner;
        let mut list: Vec<AgentInfo> = lock(&inner.mirror)
            .iter()
            .filter(|(_, r)| capability.is_none_or(|c| r.capabilities.iter().any(|x| x == c)))
            .map(|(name, r)| AgentInfo {
                agent: name.clone(),
                capabilities: r.capabilities.clone(),
                online: inner.live(r),
                since: r.since,
            })
            .collect();
        list.sort_by(|a, b| a.agent.cmp(&b.agent));
        ready(Ok(list)).boxed()
    }

    fn disconnect(&self, conn_id: u64) {
        let inner = Arc::clone(&self.inner);
        let held = {
            let mut local = lock(&inner.local);
            local.watchers.remove(&conn_id);
            local.by_conn.remove(&conn_id)
        };
        let Some(held) = held else { return };
        held.delivery.abort();
        tokio::spawn(async move {
            for _ in 0..5 {
                let Ok(Some(entry)) = inner.directory.entry(&held.name).await else { return };
                let Ok(mut r) = serde_json::from_slice::<Record>(&entry.value) else { return };
                if r.node != inner.node || r.incarnation != inner.incarnation || r.conn != conn_id {
                    return; // Taken over meanwhile.
                }
                r.online = false;
                r.since = unix_ms();
                let value = Bytes::from(serde_json::to_vec(&r).expect("records serialize"));
                if inner.directory.update(&held.name, value, entry.revision).await.is_ok() {
                    lock(&inner.mirror).insert(held.name.clone(), r);
                    inner.notify(&Notice::Presence { agent: held.name.clone(), online: false, ts: unix_ms() });
                    return;
                }
            }
        });
    }

    fn counts(&self) -> AgentCounts {
        let inner = &self.inner;
        let mirror = lock(&inner.mirror);
        AgentCounts {
            online: mirror.values().filter(|r| inner.live(r)).count(),
            known: mirror.len(),
            queued: inner.queued_total.load(std::sync::atomic::Ordering::Relaxed) as usize,
        }
    }
}

/// Closes this node's connections that another node's register took over.
async fn take_overs(inner: Arc<Inner>) {
    let subject = format!("{}.agents.replace.{}", inner.prefix, hex(&inner.node));
    loop {
        if let Ok(mut replaced) = inner.client.subscribe(subject.clone()).await {
            while let Some(msg) = replaced.next().await {
                if let Ok(Notice::Replace { conn }) = serde_json::from_slice::<Notice>(&msg.payload) {
                    let old = lock(&inner.local).by_conn.remove(&conn);
                    if let Some(old) = old {
                        old.delivery.abort();
                        old.conn.close(close::REPLACED, "replaced by a newer connection of the same agent");
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
