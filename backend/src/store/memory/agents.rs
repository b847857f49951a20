//! The embedded agent directory: agent names, their live connections, and
//! their queues of unacknowledged messages.
//!
//! Delivery is at-least-once toward the recipient and exactly-once from the
//! sender's point of view: a `send` is accepted once per (sender, id), kept in
//! the recipient's bounded queue until the recipient acks it, and redelivered
//! in order after every reconnect. Messages leave the queue when acked or when
//! they expire.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_core::protocol::{
    Ack, AgentInfo, DeliveryStatus, ErrorCode, FrameError, Id, Json, Message, Presence, Priority, Register, Send,
    ServerFrame, close,
};
use futures_util::future::{BoxFuture, FutureExt, ready};
use tokio::time::Instant;

use crate::clock::unix_ms;
use crate::config;
use crate::dedup::DedupWindow;
use crate::mailbox::Mailbox;
use crate::store::agents::{AgentCounts, AgentStore};
use crate::sync::lock;

type Conn = Arc<dyn Mailbox>;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MemoryAgents(Mutex<Directory>);

impl MemoryAgents {
    pub(crate) fn new(config: &config::Agents) -> Self {
        Self(Mutex::new(Directory::new(config)))
    }
}

impl AgentStore for MemoryAgents {
    fn register(&self, conn: &Conn, reg: &Register) -> BoxFuture<'static, Result<(), FrameError>> {
        // Ack and queued messages are pushed under the lock, so nothing sent
        // meanwhile can overtake them.
        let mut dir = lock(&self.0);
        let result = dir.register(conn, reg).map(|queued| {
            let _ = conn
                .push_frame(&ServerFrame::Ack(Ack { queued: Some(queued.unwrap_or(0)), ..Ack::new(reg.id.clone()) }));
            if queued.is_some() {
                dir.deliver_queued(&reg.agent);
            }
        });
        ready(result).boxed()
    }

    fn send(&self, sender: &Conn, msg: Send) -> BoxFuture<'static, Result<(DeliveryStatus, bool), FrameError>> {
        ready(lock(&self.0).send(sender.id(), msg)).boxed()
    }

    fn ack(&self, conn: &Conn, id: &Id, from: &str) -> BoxFuture<'static, Result<(), FrameError>> {
        ready(lock(&self.0).ack(conn.id(), id, from)).boxed()
    }

    fn broadcast(
        &self,
        sender: &Conn,
        id: &Id,
        message_type: &str,
        content: &Json,
    ) -> BoxFuture<'static, Result<u32, FrameError>> {
        ready(lock(&self.0).broadcast(sender.id(), id, message_type, content)).boxed()
    }

    fn discover(&self, capability: Option<&str>) -> BoxFuture<'static, Result<Vec<AgentInfo>, FrameError>> {
        ready(Ok(lock(&self.0).discover(capability))).boxed()
    }

    fn disconnect(&self, conn_id: u64) {
        lock(&self.0).disconnect(conn_id);
    }

    fn counts(&self) -> AgentCounts {
        lock(&self.0).counts()
    }
}

#[derive(Debug)]
struct Queued {
    id: Id,
    from: String,
    message_type: String,
    content: Json,
    priority: Priority,
    ts: u64,
    expires_at: Instant,
    deliveries: u32,
    bytes: usize,
}

impl Queued {
    fn frame(&self) -> ServerFrame {
        ServerFrame::Message(Message {
            id: self.id.clone(),
            from: self.from.clone(),
            message_type: self.message_type.clone(),
            content: self.content.clone(),
            ts: self.ts,
            priority: self.priority,
            broadcast: false,
            redelivery: self.deliveries.saturating_sub(1),
        })
    }
}

#[derive(Debug)]
struct Agent {
    capabilities: Vec<String>,
    online: Option<Conn>,
    /// Who registered it last (token name / client): the identity allowed to take it over.
    holder: String,
    since: u64,
    last_change: Instant,
    queue: VecDeque<Queued>,
    queue_bytes: usize,
}

/// Every agent the node knows.
#[derive(Debug)]
struct Directory {
    agents: HashMap<String, Agent>,
    /// Connection id -> agent name.
    by_peer: HashMap<u64, String>,
    accepted: DedupWindow<(String, Id), DeliveryStatus>,
    watchers: HashMap<u64, Conn>,
    /// Bytes queued for all agents together (bounded by `agents.total_queue_bytes`).
    total_bytes: usize,
    config: config::Agents,
}

fn error(id: &Id, code: ErrorCode, message: String) -> FrameError {
    FrameError { code, message, id: Some(id.clone()) }
}

impl Directory {
    fn new(config: &config::Agents) -> Self {
        Self {
            agents: HashMap::new(),
            by_peer: HashMap::new(),
            accepted: DedupWindow::new(config.dedup_entries, Duration::from_millis(config.dedup_ttl_ms)),
            watchers: HashMap::new(),
            total_bytes: 0,
            config: config.clone(),
        }
    }

    /// The name the connection `peer_id` registered, if any.
    fn name_of(&self, peer_id: u64) -> Option<&str> {
        self.by_peer.get(&peer_id).map(String::as_str)
    }

    /// `register`: takes the name and returns how many queued messages follow the ack,
    /// or `None` when this connection already holds the name (nothing follows).
    /// The caller sends the ack first, then calls [`Directory::deliver_queued`].
    fn register(&mut self, peer: &Conn, reg: &Register) -> Result<Option<u32>, FrameError> {
        let now = Instant::now();
        if let Some(current) = self.by_peer.get(&peer.id()) {
            if *current == reg.agent {
                return Ok(None);
            }
            return Err(error(
                &reg.id,
                ErrorCode::BadRequest,
                format!(
                    "this connection is already registered as \"{current}\"; open another connection for another agent"
                ),
            ));
        }
        let identity = peer.identity();
        if let Some(agent) = self.agents.get(&reg.agent)
            && let Some(holder) = &agent.online
        {
            if !(reg.takeover && agent.holder == identity) {
                let how = if agent.holder == identity {
                    "send register with \"takeover\": true to replace that connection"
                } else {
                    "only a connection with the same client name (and token) may take it over"
                };
                return Err(error(
                    &reg.id,
                    ErrorCode::NameTaken,
                    format!("\"{}\" is held by a live connection; {how}", reg.agent),
                ));
            }
            holder.close(close::REPLACED, "replaced by a newer connection of the same agent");
            self.by_peer.remove(&holder.id());
        }
        if !self.agents.contains_key(&reg.agent) && self.agents.len() >= self.config.max_agents {
            self.forget_one().ok_or_else(|| {
                error(
                    &reg.id,
                    ErrorCode::LimitExceeded,
                    format!("the server knows {} agents, its limit", self.config.max_agents),
                )
            })?;
        }
        let agent = self.agents.entry(reg.agent.clone()).or_insert_with(|| Agent {
            capabilities: Vec::new(),
            online: None,
            holder: identity.clone(),
            since: 0,
            last_change: now,
            queue: VecDeque::new(),
            queue_bytes: 0,
        });
        agent.capabilities = reg.capabilities.clone();
        agent.online = Some(Arc::clone(peer));
        agent.holder = identity;
        agent.since = unix_ms();
        agent.last_change = now;
        self.total_bytes -= purge_expired(agent, now);
        let queued = u32::try_from(agent.queue.len()).unwrap_or(u32::MAX);
        self.by_peer.insert(peer.id(), reg.agent.clone());
        if reg.presence {
            self.watchers.insert(peer.id(), Arc::clone(peer));
        }
        self.announce(&reg.agent, true);
        Ok(Some(queued))
    }

    /// Sends `name`'s queued messages, oldest first, to its live connection.
    fn deliver_queued(&mut self, name: &str) {
        let Some(agent) = self.agents.get_mut(name) else { return };
        let Some(peer) = agent.online.clone() else { return };
        for msg in agent.queue.iter_mut() {
            msg.deliveries += 1;
            if peer.push_frame(&msg.frame()).is_err() {
                // The connection is being closed as a slow consumer; the rest
                // stay queued and go out after the reconnect.
                break;
            }
        }
    }

    /// Forgets the longest-idle offline agent with nothing queued.
    fn forget_one(&mut self) -> Option<()> {
        let name = self
            .agents
            .iter()
            .filter(|(_, a)| a.online.is_none() && a.queue.is_empty())
            .min_by_key(|(_, a)| a.last_change)
            .map(|(n, _)| n.clone())?;
        self.agents.remove(&name);
        Some(())
    }

    /// `send` from the agent registered on the connection `sender`.
    fn send(&mut self, sender: u64, msg: Send) -> Result<(DeliveryStatus, bool), FrameError> {
        let now = Instant::now();
        let from = self.registered(sender, &msg.id)?.to_owned();
        let key = (from.clone(), msg.id.clone());
        if let Some(status) = self.accepted.get(&key, now) {
            return Ok((*status, true));
        }
        let max_bytes = self.config.queue_bytes;
        let max_messages = self.config.queue_messages;
        let max_expiry = Duration::from_millis(self.config.max_expiry_ms);
        let agent = self.agents.get_mut(&msg.to).ok_or_else(|| {
            error(
                &msg.id,
                ErrorCode::UnknownAgent,
                format!("no agent \"{}\" has registered on this server; use discover to list agents", msg.to),
            )
        })?;
        self.total_bytes -= purge_expired(agent, now);
        let bytes = msg.content.get().len() + msg.message_type.len() + from.len() + 64;
        if agent.queue.len() >= max_messages || agent.queue_bytes + bytes > max_bytes {
            return Err(error(
                &msg.id,
                ErrorCode::QueueFull,
                format!("\"{}\" has too many unacknowledged messages; retry later", msg.to),
            ));
        }
        if self.total_bytes + bytes > self.config.total_queue_bytes {
            return Err(error(
                &msg.id,
                ErrorCode::QueueFull,
                "the server holds its limit of unacknowledged agent messages; retry later".into(),
            ));
        }
        let expiry = msg.expires_in_ms.map_or(max_expiry, Duration::from_millis).min(max_expiry);
        let mut queued = Queued {
            id: msg.id.clone(),
            from,
            message_type: msg.message_type,
            content: msg.content,
            priority: msg.priority.unwrap_or_default(),
            ts: unix_ms(),
            expires_at: now + expiry,
            deliveries: 0,
            bytes,
        };
        let status = match &agent.online {
            Some(peer) => {
                queued.deliveries = 1;
                match peer.push_frame(&queued.frame()) {
                    Ok(()) => DeliveryStatus::Delivered,
                    Err(_) => DeliveryStatus::Queued,
                }
            }
            None => DeliveryStatus::Queued,
        };
        agent.queue_bytes += queued.bytes;
        self.total_bytes += queued.bytes;
        agent.queue.push_back(queued);
        self.accepted.insert(key, status, now);
        Ok((status, false))
    }

    /// `ack` from the recipient on the connection `peer` for message (`from`, `id`).
    fn ack(&mut self, peer: u64, id: &Id, from: &str) -> Result<(), FrameError> {
        let name = self.registered(peer, id)?.to_owned();
        let agent = self.agents.get_mut(&name).expect("registered agents exist");
        self.total_bytes -= purge_expired(agent, Instant::now());
        match agent.queue.iter().position(|m| m.id == *id && m.from == from) {
            Some(i) => {
                let m = agent.queue.remove(i).expect("index from position");
                agent.queue_bytes -= m.bytes;
                self.total_bytes -= m.bytes;
                Ok(())
            }
            None => Err(error(
                id,
                ErrorCode::UnknownMessage,
                format!("no unacknowledged message \"{id}\" from \"{from}\" (already acked, expired, or never sent)"),
            )),
        }
    }

    /// `broadcast`: every other online agent gets it now; it is not queued or acked.
    fn broadcast(&mut self, sender: u64, id: &Id, message_type: &str, content: &Json) -> Result<u32, FrameError> {
        let from = self.registered(sender, id)?.to_owned();
        let frame = crate::wire::encode(&ServerFrame::Message(Message {
            id: id.clone(),
            from: from.clone(),
            message_type: message_type.to_owned(),
            content: content.clone(),
            ts: unix_ms(),
            priority: Priority::Normal,
            broadcast: true,
            redelivery: 0,
        }));
        let mut n = 0;
        for (name, agent) in &self.agents {
            if *name != from
                && let Some(peer) = &agent.online
                && peer.push(frame.clone()).is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// `discover`.
    fn discover(&self, capability: Option<&str>) -> Vec<AgentInfo> {
        let mut list: Vec<AgentInfo> = self
            .agents
            .iter()
            .filter(|(_, a)| capability.is_none_or(|c| a.capabilities.iter().any(|x| x == c)))
            .map(|(name, a)| AgentInfo {
                agent: name.clone(),
                capabilities: a.capabilities.clone(),
                online: a.online.is_some(),
                since: a.since,
            })
            .collect();
        list.sort_by(|a, b| a.agent.cmp(&b.agent));
        list
    }

    /// A connection left.
    fn disconnect(&mut self, peer_id: u64) {
        self.watchers.remove(&peer_id);
        let Some(name) = self.by_peer.remove(&peer_id) else { return };
        if let Some(agent) = self.agents.get_mut(&name)
            && agent.online.as_ref().is_some_and(|p| p.id() == peer_id)
        {
            agent.online = None;
            agent.since = unix_ms();
            agent.last_change = Instant::now();
            self.announce(&name, false);
        }
    }

    /// Online and known agents, queued messages, for status.
    fn counts(&self) -> AgentCounts {
        AgentCounts {
            online: self.agents.values().filter(|a| a.online.is_some()).count(),
            known: self.agents.len(),
            queued: self.agents.values().map(|a| a.queue.len()).sum(),
        }
    }

    fn registered(&self, peer: u64, id: &Id) -> Result<&str, FrameError> {
        self.name_of(peer).ok_or_else(|| {
            error(id, ErrorCode::NotRegistered, "send register first: agent messages need a registered sender".into())
        })
    }

    fn announce(&self, agent: &str, online: bool) {
        let frame = ServerFrame::Presence(Presence { agent: agent.to_owned(), online, ts: unix_ms() });
        let frame = crate::wire::encode(&frame);
        for w in self.watchers.values() {
            if self.by_peer.get(&w.id()).is_none_or(|n| n != agent) {
                let _ = w.push(frame.clone());
            }
        }
    }
}

/// Drops expired messages; returns the bytes freed.
fn purge_expired(agent: &mut Agent, now: Instant) -> usize {
    let (count, bytes) = (agent.queue.len(), agent.queue_bytes);
    agent.queue.retain(|m| m.expires_at > now);
    if agent.queue.len() != count {
        agent.queue_bytes = agent.queue.iter().map(|m| m.bytes).sum();
    }
    bytes - agent.queue_bytes
}
