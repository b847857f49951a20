//! One connection's life: open, hello/welcome, resume, then frames in both
//! directions and a heartbeat until it closes.

use std::rc::Rc;
use std::time::Duration;

use bridge_core::heartbeat::{Heartbeat, Tick};
use bridge_core::protocol::{ClientFrame, Hello, Id, MessageAck, PROTOCOL_VERSION, Ping, Register, Subscribe};
use bridge_core::retry::Failure;
use bridge_core::retry::driver::{Either, race};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::conn::{Conn, WsEvent};
use super::inbound::{Inbound, read};
use super::{Kind, SEEN_MESSAGES, Socket};
use crate::platform;
use crate::resilience::Attempt;

fn closed(code: u16, reason: String) -> Failure {
    Failure::SocketClosed { code, reason }
}

/// One connect attempt to `node`: open the socket, say hello, wait for welcome.
pub(super) async fn connect(socket: &Socket, node: &str) -> Result<(Conn, u64), Attempt> {
    let url = socket.url_on(node);
    let mut conn = Conn::open(&url).map_err(|m| Attempt::new(Failure::Validation { message: m }))?;
    match conn.next().await {
        Some(WsEvent::Open) => {}
        // A browser is not told why an upgrade failed: ask the node.
        Some(WsEvent::Closed { code, reason }) => {
            return Err(Attempt::new(why_not_open(&url, closed(code, reason)).await));
        }
        _ => return Err(Attempt::new(Failure::Network { message: "the socket failed to open".into() })),
    }
    let hello = ClientFrame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        client: socket.client.clone(),
        token: socket.token.clone(),
    });
    conn.send(&hello.to_json()).map_err(|m| Attempt::new(Failure::Network { message: m }))?;
    let mut refused = None;
    loop {
        match conn.next().await {
            Some(WsEvent::Text(t)) => match read(&t) {
                Some(Inbound::Welcome { heartbeat_ms }) => return Ok((conn, heartbeat_ms)),
                // The server explains before it closes: keep the explanation, wait for the close.
                Some(Inbound::Error { failure, .. }) => refused = Some(failure),
                Some(_) => {}
                None => {
                    return Err(Attempt::new(Failure::Protocol {
                        message: "the server sent an unreadable frame".into(),
                    }));
                }
            },
            Some(WsEvent::Closed { code, reason }) => {
                return Err(Attempt::new(refused.unwrap_or_else(|| closed(code, reason))));
            }
            Some(WsEvent::Open) => {}
            None => return Err(Attempt::new(Failure::Network { message: "the socket went away".into() })),
        }
    }
}

/// Why a socket failed to open, asked of the node with a plain GET on the same
/// path (the backend answers what an upgrade would get now, taking nothing):
/// its refusal (`too_many_handshakes` with the turn to come back at, a full
/// node, a foreign origin...), `unreachable` when it does not answer, or
/// `otherwise` when it would admit the connection.
async fn why_not_open(url: &str, otherwise: Failure) -> Failure {
    let http = url.replacen("ws", "http", 1);
    let Some(window) = web_sys::window() else { return otherwise };
    let init = web_sys::RequestInit::new();
    init.set_cache(web_sys::RequestCache::NoStore);
    let fetched = JsFuture::from(window.fetch_with_str_and_init(&http, &init));
    let response = match race(fetched, platform::sleep(Duration::from_secs(3))).await {
        Either::Left(Ok(r)) => r.unchecked_into::<web_sys::Response>(),
        Either::Left(Err(e)) => {
            return Failure::Network { message: format!("the node does not answer: {}", crate::js::message_of(&e)) };
        }
        Either::Right(()) => return Failure::Timeout { after_ms: 3_000 },
    };
    if response.status() == 426 || response.ok() {
        return otherwise;
    }
    let body = match response.json() {
        Ok(p) => JsFuture::from(p).await.ok(),
        Err(_) => None,
    };
    let field = |k: &str| body.as_ref().and_then(|b| crate::js::get(b, k));
    match field("code").and_then(|c| c.as_string()) {
        Some(code) => Failure::Server {
            code,
            message: field("message").and_then(|m| m.as_string()).unwrap_or_default(),
            retryable: field("retryable").and_then(|r| r.as_bool()).unwrap_or(false),
            retry_after_ms: field("retry_after_ms").and_then(|r| r.as_f64()).map(|ms| ms as u64),
        },
        None => Failure::http(
            response.status(),
            response.headers().get("retry-after").ok().flatten().as_deref(),
            platform::unix_ms(),
        ),
    }
}

/// Runs a welcomed connection until it ends; returns why it ended.
pub(super) async fn run(socket: &Rc<Socket>, mut conn: Conn, heartbeat_ms: u64) -> Failure {
    {
        let mut i = socket.inner.borrow_mut();
        i.connects += 1;
        i.connected_since = Some(platform::now());
        i.last_error = None;
    }
    resume(socket);
    socket.set_state(bridge_core::report::SocketState::Open);
    let beat = Duration::from_millis(heartbeat_ms.clamp(100, 60_000));
    let mut heartbeat = Heartbeat::new(beat.as_secs_f64() * 1000.0);
    let mut pings = 0u64;
    loop {
        if let Err(m) = flush(socket, &conn) {
            return Failure::Network { message: m };
        }
        let event =
            race(conn.next(), race(race(socket.wake.notified(), socket.role.notified()), platform::sleep(beat))).await;
        // Another tab leads now (this page is being frozen or cached): it keeps the connection.
        if socket.share.is_follower() {
            conn.close(1000, "another tab leads");
            socket.hand_over();
            return Failure::Other { message: "another tab leads this connection now".into(), retryable: false };
        }
        match event {
            Either::Left(Some(WsEvent::Text(text))) => {
                heartbeat.heard();
                on_frame(socket, &text);
            }
            Either::Left(Some(WsEvent::Closed { code, reason })) => return closed(code, reason),
            Either::Left(Some(WsEvent::Open)) => {}
            Either::Left(None) => return Failure::Network { message: "the socket went away".into() },
            Either::Right(Either::Left(_)) => {}
            Either::Right(Either::Right(())) => {
                let now = platform::now_f64();
                if heartbeat.tick(now) == Tick::Dead {
                    conn.close(4000, "heartbeat lost");
                    return Failure::Timeout { after_ms: heartbeat.waited_ms(now) as u64 };
                }
                pings += 1;
                let ping = ClientFrame::Ping(Ping { id: Id::Str(format!("hb-{pings}")) });
                if let Err(m) = conn.send(&ping.to_json()) {
                    return Failure::Network { message: m };
                }
            }
        }
    }
}

/// Sends what the outbox holds and has not sent on this connection.
fn flush(socket: &Rc<Socket>, conn: &Conn) -> Result<(), String> {
    let mut i = socket.inner.borrow_mut();
    for (_, out) in i.outbox.values_mut() {
        if !out.sent {
            conn.send(&out.frame)?;
            out.sent = true;
        }
    }
    // Frames nobody waits for are done once sent.
    i.outbox.retain(|_, (_, o)| o.reply.is_some() || !o.sent);
    Ok(())
}

/// After welcome: subscribe again from the last position, re-register the agent.
/// These go out before the outbox's waiting requests (the outbox is flushed next).
fn resume(socket: &Rc<Socket>) {
    if socket.kind == Kind::Evolution {
        // Leading tabs: the followers' patterns, and those of the leader this tab took over from.
        let mut remote = socket.share.followers_patterns();
        for p in socket.share.leader_union() {
            if !remote.contains(&p) {
                remote.push(p);
            }
        }
        let mut i = socket.inner.borrow_mut();
        i.remote = remote;
        // A tab that took over and saw no event yet resumes from where the old leader was.
        if i.position.is_none()
            && let Some((epoch, seq)) = socket.share.leader_position().as_deref().and_then(|p| p.rsplit_once(':'))
            && let Ok(seq) = seq.parse()
        {
            i.position = Some(bridge_core::protocol::Position { epoch: epoch.to_owned(), seq });
        }
    }
    let frame = {
        let i = socket.inner.borrow();
        match socket.kind {
            Kind::Evolution if !i.patterns.is_empty() || !i.remote.is_empty() => {
                let mut topics: Vec<String> = i.patterns.keys().cloned().collect();
                topics.extend(i.remote.iter().filter(|p| !i.patterns.contains_key(*p)).cloned());
                Some(ClientFrame::Subscribe(Subscribe { id: Id::Num(0), topics, since: i.position.clone() }))
            }
            Kind::Agents => i.agent.as_ref().map(|a| {
                ClientFrame::Register(Register {
                    id: Id::Num(0),
                    agent: a.name.clone(),
                    capabilities: a.capabilities.clone(),
                    presence: true,
                    takeover: true,
                })
            }),
            Kind::Evolution => None,
        }
    };
    if let Some(mut frame) = frame {
        let id = socket.new_id();
        match &mut frame {
            ClientFrame::Subscribe(s) => s.id = id,
            ClientFrame::Register(r) => r.id = id,
            _ => {}
        }
        // Ahead of everything else in the outbox: a key below every existing one.
        let mut i = socket.inner.borrow_mut();
        let key = i.outbox.keys().next().map_or(0, |k| k.saturating_sub(1));
        let out = super::Outgoing { frame: frame.to_json(), sent: false, resend: false, reply: None };
        i.outbox.insert(key, (Id::Num(0), out));
    }
}

pub(super) fn on_frame(socket: &Rc<Socket>, text: &str) {
    let Some(frame) = read(text) else {
        crate::js::warn("the server sent a frame this bridge cannot read", &JsValue::from(text));
        return;
    };
    match frame {
        Inbound::Answer { id, obj, position } => {
            if let Some(p) = position {
                let mut i = socket.inner.borrow_mut();
                if i.position.is_none() {
                    i.position = Some(p);
                }
            }
            answer(socket, &id, Ok(obj));
        }
        Inbound::Error { id: Some(id), failure, .. } => answer(socket, &id, Err(Attempt::new(failure))),
        Inbound::Error { id: None, message, .. } => {
            crate::js::warn("the server reported an error", &JsValue::from(message))
        }
        Inbound::Event { position, topic, obj } => {
            socket.share.share_frame(socket.kind.name(), text);
            on_event(socket, position, &topic, &obj);
        }
        Inbound::Reset { position, obj } => {
            socket.share.share_frame(socket.kind.name(), text);
            {
                let mut i = socket.inner.borrow_mut();
                i.position = Some(position);
                i.resets += 1;
            }
            socket.changed.notify();
            socket.events.emit("reset", &obj);
        }
        Inbound::Message { id, from, broadcast, obj } => {
            socket.share.share_frame(socket.kind.name(), text);
            on_message(socket, id, from, broadcast, &obj);
        }
        Inbound::Presence { obj } => {
            socket.share.share_frame(socket.kind.name(), text);
            socket.events.emit("presence", &obj);
        }
        // Pongs prove liveness (already noted).
        Inbound::Welcome { .. } | Inbound::Other => {}
    }
}

/// Hands an answer to whoever waits for request `id`.
fn answer(socket: &Rc<Socket>, id: &Id, reply: super::Reply) {
    let mut i = socket.inner.borrow_mut();
    let key = i.outbox.iter().find(|(_, (oid, o))| oid == id && o.reply.is_some()).map(|(k, _)| *k);
    if let Some(key) = key
        && let Some((_, out)) = i.outbox.remove(&key)
        && let Some(tx) = out.reply
    {
        let _ = tx.send(reply);
    }
}

fn on_event(socket: &Rc<Socket>, position: bridge_core::protocol::Position, topic: &str, detail: &JsValue) {
    let subs: Vec<js_sys::Function> = {
        let mut i = socket.inner.borrow_mut();
        if let Some(p) = &i.position
            && p.epoch == position.epoch
            && position.seq <= p.seq
        {
            i.duplicates_dropped += 1;
            return;
        }
        i.position = Some(position);
        i.subs
            .values()
            .filter(|s| s.patterns.iter().any(|p| bridge_core::protocol::rules::pattern_matches(p, topic)))
            .map(|s| s.callback.clone())
            .collect()
    };
    for f in subs {
        if let Err(err) = f.call1(&JsValue::NULL, detail) {
            crate::js::warn("a subscription callback threw", &err);
        }
    }
}

fn on_message(socket: &Rc<Socket>, id: Id, from: String, broadcast: bool, detail: &JsValue) {
    if broadcast {
        socket.events.emit("message", detail);
        return;
    }
    let ack = ClientFrame::Ack(MessageAck { id: id.clone(), from: from.clone() });
    let key = (from, id);
    if socket.inner.borrow().seen.contains(&key) {
        // Handled before; our ack was lost. Ack again, do not hand it to the page twice.
        socket.push(&ack);
        return;
    }
    let results = socket.events.emit("message", detail);
    remember(socket, key);
    // Ack once every listener has finished; a listener that fails leaves the
    // message unacknowledged, so the server redelivers it after a reconnect.
    let promises: Vec<js_sys::Promise> =
        results.into_iter().filter_map(|v| v.dyn_into::<js_sys::Promise>().ok()).collect();
    if promises.is_empty() {
        socket.push(&ack);
        return;
    }
    let all = js_sys::Promise::all(&promises.into_iter().collect::<js_sys::Array>());
    let socket = Rc::clone(socket);
    let lifetime = socket.lifetime();
    lifetime.spawn(async move {
        match JsFuture::from(all).await {
            Ok(_) => socket.push(&ack),
            Err(e) => crate::js::warn("a message listener failed; the message stays unacknowledged", &e),
        }
    });
}

fn remember(socket: &Rc<Socket>, key: (String, Id)) {
    // A bounded FIFO, searched linearly: at most a thousand short keys.
    let mut i = socket.inner.borrow_mut();
    if !i.seen.contains(&key) {
        i.seen.push_back(key);
        if i.seen.len() > SEEN_MESSAGES {
            i.seen.pop_front();
        }
    }
}
