//! Every frame of wire contract v1, in both directions.
//!
//! Field names are the wire names (snake_case). Optional fields may be
//! omitted; unknown fields are ignored, so newer peers can add fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::codes::ErrorCode;
use super::json::Json;
use crate::json::{Fields, Out, ToJson};

/// A request id chosen by the client: a string or a non-negative integer,
/// echoed back exactly in the `ack` or `error` that answers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// An integer id.
    Num(u64),
    /// A string id (1..=128 bytes).
    Str(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(s.to_owned())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::Str(s)
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Id::Num(n)
    }
}

/// A point in the event stream: `seq` within `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Identifies one run of the stream's history; changes when history is lost.
    pub epoch: String,
    /// The last sequence number seen.
    pub seq: u64,
}

/// Message priority; passed through to the recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Background.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Important.
    High,
}

/// `hello`: must be the first frame on every socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks (1).
    pub protocol: u32,
    /// Free-form client name and version, for logs and the dashboard.
    pub client: String,
    /// Access token, when the server requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `ping`: answered by `pong` with the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed back.
    pub id: Id,
}

/// `subscribe` (evolution): receive events of these topics, optionally resuming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    /// Request id.
    pub id: Id,
    /// Topic names; `*` means every topic and `prefix.*` every topic under `prefix.`.
    pub topics: Vec<String>,
    /// Resume after this position: replay what was missed (or `reset` first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Position>,
}

/// `unsubscribe` (evolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// Request id.
    pub id: Id,
    /// Topics to drop, exactly as subscribed.
    pub topics: Vec<String>,
}

/// `publish` (evolution): idempotent by (publisher, id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    /// Request id; also the deduplication key.
    pub id: Id,
    /// An exact topic name (no wildcard).
    pub topic: String,
    /// Any JSON.
    pub data: Json,
}

/// `handle` (evolution): this connection answers requests for these actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handle {
    /// Request id.
    pub id: Id,
    /// Action names.
    pub actions: Vec<String>,
}

/// `request` (evolution): client → server to ask, and server → handler to route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Request id (the server uses its own ids toward handlers).
    pub id: Id,
    /// The action.
    pub action: String,
    /// Any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Json>,
    /// How long to wait for the handler (server default when absent; capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// What a failed `response` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    /// The handler's own code.
    pub code: String,
    /// A human message.
    #[serde(default)]
    pub message: String,
}

/// `response`: handler → server, then server → requester, answering one `request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The id of the request answered.
    pub id: Id,
    /// Whether the action succeeded.
    pub ok: bool,
    /// The result when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Json>,
    /// The error when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

/// `register` (agents): take an agent name on this connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Request id.
    pub id: Id,
    /// The agent name.
    pub agent: String,
    /// What this agent can do (for `discover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Also receive `presence` frames when agents come and go.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub presence: bool,
    /// Take the name over from a live connection holding the same token
    /// identity (a reconnect racing its own stale connection).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub takeover: bool,
}

/// `send` (agents): one message to one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Send {
    /// Request id; with the sender's name, the deduplication key.
    pub id: Id,
    /// Recipient agent name.
    pub to: String,
    /// Application-defined message type.
    pub message_type: String,
    /// Any JSON.
    pub content: Json,
    /// Passed through to the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Drop the message if not delivered within this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
}

/// `ack` (agents, client → server): the recipient acknowledges a `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAck {
    /// The message's id.
    pub id: Id,
    /// The message's sender.
    pub from: String,
}

/// `broadcast` (agents): one message to every other registered, connected agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    /// Request id.
    pub id: Id,
    /// Application-defined message type.
    pub message_type: String,
    /// Any JSON.
    pub content: Json,
}

/// `discover` (agents): list agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discover {
    /// Request id.
    pub id: Id,
    /// Only agents with this capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
}

/// Every frame a client may send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame.
    Hello(Hello),
    /// Application-level ping.
    Ping(Ping),
    /// Evolution: subscribe.
    Subscribe(Subscribe),
    /// Evolution: unsubscribe.
    Unsubscribe(Unsubscribe),
    /// Evolution: publish.
    Publish(Publish),
    /// Evolution: register as handler.
    Handle(Handle),
    /// Evolution: ask a handler.
    Request(Request),
    /// Evolution: a handler's answer.
    Response(Response),
    /// Agents: take a name.
    Register(Register),
    /// Agents: send a message.
    Send(Send),
    /// Agents: acknowledge a message.
    Ack(MessageAck),
    /// Agents: message everyone.
    Broadcast(Broadcast),
    /// Agents: list agents.
    Discover(Discover),
}

impl ClientFrame {
    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Hello(_) => "hello",
            ClientFrame::Ping(_) => "ping",
            ClientFrame::Subscribe(_) => "subscribe",
            ClientFrame::Unsubscribe(_) => "unsubscribe",
            ClientFrame::Publish(_) => "publish",
            ClientFrame::Handle(_) => "handle",
            ClientFrame::Request(_) => "request",
            ClientFrame::Response(_) => "response",
            ClientFrame::Register(_) => "register",
            ClientFrame::Send(_) => "send",
            ClientFrame::Ack(_) => "ack",
            ClientFrame::Broadcast(_) => "broadcast",
            ClientFrame::Discover(_) => "discover",
        }
    }

    /// The frame's request id: what an `ack`, `error` or answer to it echoes (`hello` has none).
    pub fn id(&self) -> Option<&Id> {
        match self {
            ClientFrame::Hello(_) => None,
            ClientFrame::Ping(f) => Some(&f.id),
            ClientFrame::Subscribe(f) => Some(&f.id),
            ClientFrame::Unsubscribe(f) => Some(&f.id),
            ClientFrame::Publish(f) => Some(&f.id),
            ClientFrame::Handle(f) => Some(&f.id),
            ClientFrame::Request(f) => Some(&f.id),
            ClientFrame::Response(f) => Some(&f.id),
            ClientFrame::Register(f) => Some(&f.id),
            ClientFrame::Send(f) => Some(&f.id),
            ClientFrame::Ack(f) => Some(&f.id),
            ClientFrame::Broadcast(f) => Some(&f.id),
            ClientFrame::Discover(f) => Some(&f.id),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        crate::json::to_text(self, crate::json::no_floats)
    }
}

/// Untagged: the number or the string.
impl ToJson for Id {
    fn write_json(&self, out: &mut Out) {
        match self {
            Id::Num(n) => out.unsigned(*n),
            Id::Str(s) => out.str(s),
        }
    }
}

crate::json_object!(Position, |s| "epoch": s.epoch, "seq": s.seq);
crate::json_names!(Priority { Low: "low", Normal: "normal", High: "high" });
crate::json_object!(Hello, |s| "protocol": s.protocol, "client": s.client, "token"?: s.token);
crate::json_object!(Ping, |s| "id": s.id);
crate::json_object!(Subscribe, |s| "id": s.id, "topics": s.topics, "since"?: s.since);
crate::json_object!(Unsubscribe, |s| "id": s.id, "topics": s.topics);
crate::json_object!(Publish, |s| "id": s.id, "topic": s.topic, "data": s.data);
crate::json_object!(Handle, |s| "id": s.id, "actions": s.actions);
crate::json_object!(Request, |s|
    "id": s.id,
    "action": s.action,
    "params"?: s.params,
    "timeout_ms"?: s.timeout_ms,
);
crate::json_object!(ResponseError, |s| "code": s.code, "message": s.message);
crate::json_object!(Response, |s| "id": s.id, "ok": s.ok, "result"?: s.result, "error"?: s.error);
crate::json_object!(Register, |s|
    "id": s.id,
    "agent": s.agent,
    "capabilities"?: s.capabilities,
    "presence"?: s.presence,
    "takeover"?: s.takeover,
);
crate::json_object!(Send, |s|
    "id": s.id,
    "to": s.to,
    "message_type": s.message_type,
    "content": s.content,
    "priority"?: s.priority,
    "expires_in_ms"?: s.expires_in_ms,
);
crate::json_object!(MessageAck, |s| "id": s.id, "from": s.from);
crate::json_object!(Broadcast, |s| "id": s.id, "message_type": s.message_type, "content": s.content);
crate::json_object!(Discover, |s| "id": s.id, "capability"?: s.capability);

/// Tagged by `type`, as serde writes it.
impl ToJson for ClientFrame {
    fn write_json(&self, out: &mut Out) {
        let fields: &dyn Fields = match self {
            ClientFrame::Hello(f) => f,
            ClientFrame::Ping(f) => f,
            ClientFrame::Subscribe(f) => f,
            ClientFrame::Unsubscribe(f) => f,
            ClientFrame::Publish(f) => f,
            ClientFrame::Handle(f) => f,
            ClientFrame::Request(f) => f,
            ClientFrame::Response(f) => f,
            ClientFrame::Register(f) => f,
            ClientFrame::Send(f) => f,
            ClientFrame::Ack(f) => f,
            ClientFrame::Broadcast(f) => f,
            ClientFrame::Discover(f) => f,
        };
        out.tagged("type", self.kind(), fields);
    }
}

/// `welcome`: the answer to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version in use.
    pub protocol: u32,
    /// This connection's session id.
    pub session: String,
    /// How often the client should `ping`; the server closes a connection
    /// silent for about twice this.
    pub heartbeat_ms: u64,
    /// Server name and version.
    pub server: String,
    /// The largest frame the server accepts, bytes.
    pub max_frame_bytes: u64,
}

/// `pong`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's id.
    pub id: Id,
}

/// Delivery status in a `send` ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Handed to the recipient's live connection.
    Delivered,
    /// Kept in the recipient's offline queue.
    Queued,
}

/// `ack` (server → client): a request succeeded. Which optional fields are
/// present depends on the request (see docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The request's id.
    pub id: Id,
    /// `send`: delivered or queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
    /// `publish`: the event's position; `subscribe`: the stream's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// `publish`/`send`: true when this id was seen before and nothing new happened.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// `broadcast`: how many agents received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// `register`: messages waiting in the queue, delivered right after this ack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u32>,
}

impl Ack {
    /// A bare ack for `id`.
    pub fn new(id: Id) -> Self {
        Self { id, status: None, position: None, duplicate: false, recipients: None, queued: None }
    }
}

/// `error`: a request (or frame) failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The failed request's id, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// Stable code (see [`ErrorCode`]); clients should accept unknown codes.
    pub code: String,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// Whether sending the same request again later may succeed.
    pub retryable: bool,
    /// How long to wait first, when the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorFrame {
    /// An error with `code`'s default retryability.
    pub fn new(id: Option<Id>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            code: code.as_str().to_owned(),
            message: message.into(),
            retryable: code.retryable(),
            retry_after_ms: None,
        }
    }
}

/// `event` (evolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The topic.
    pub topic: String,
    /// The history's epoch.
    pub epoch: String,
    /// Position in the stream (one sequence for all topics).
    pub seq: u64,
    /// Server wall-clock time of publication, ms since the Unix epoch.
    pub ts: u64,
    /// The publisher, as identified by the server.
    pub publisher: String,
    /// The published JSON.
    pub data: Json,
}

/// `reset` (evolution): the server cannot replay from the client's `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reset {
    /// The current epoch.
    pub epoch: String,
    /// Replay starts after this seq: the oldest event still held, minus one.
    pub seq: u64,
    /// `epoch_changed` or `history_trimmed`.
    pub reason: String,
}

/// One entry of an `agents` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent name.
    pub agent: String,
    /// Its capabilities.
    pub capabilities: Vec<String>,
    /// Connected right now.
    pub online: bool,
    /// Last connected or disconnected, ms since the Unix epoch.
    pub since: u64,
}

/// `agents`: the answer to `discover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agents {
    /// The discover request's id.
    pub id: Id,
    /// Matching agents, by name.
    pub agents: Vec<AgentInfo>,
}

/// `message` (agents): delivered to the recipient, who must `ack` it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's request id.
    pub id: Id,
    /// The sender, stamped by the server.
    pub from: String,
    /// Application-defined message type.
    pub message_type: String,
    /// The sent JSON.
    pub content: Json,
    /// When it was sent, ms since the Unix epoch.
    pub ts: u64,
    /// Priority, as sent.
    #[serde(default)]
    pub priority: Priority,
    /// True for a broadcast (broadcasts are not queued and need no ack).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
    /// How many times this message was delivered before (0 on first delivery).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redelivery: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `presence` (agents): an agent came or went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// The agent.
    pub agent: String,
    /// True when it connected, false when it left.
    pub online: bool,
    /// When, ms since the Unix epoch.
    pub ts: u64,
}

/// Every frame a server may send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to hello.
    Welcome(Welcome),
    /// Answer to ping.
    Pong(Pong),
    /// A request succeeded.
    Ack(Ack),
    /// A request failed.
    Error(ErrorFrame),
    /// Evolution: an event.
    Event(Event),
    /// Evolution: history cannot cover the client's position.
    Reset(Reset),
    /// Evolution: a request routed to this handler.
    Request(Request),
    /// Evolution: the answer to a request.
    Response(Response),
    /// Agents: a message.
    Message(Message),
    /// Agents: discover's answer.
    Agents(Agents),
    /// Agents: an agent came or went.
    Presence(Presence),
}

impl ServerFrame {
    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Welcome(_) => "welcome",
            ServerFrame::Pong(_) => "pong",
            ServerFrame::Ack(_) => "ack",
            ServerFrame::Error(_) => "error",
            ServerFrame::Event(_) => "event",
            ServerFrame::Reset(_) => "reset",
            ServerFrame::Request(_) => "request",
            ServerFrame::Response(_) => "response",
            ServerFrame::Message(_) => "message",
            ServerFrame::Agents(_) => "agents",
            ServerFrame::Presence(_) => "presence",
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }
}
