//! One connection's life: open, hello/welcome, resume, then frames in both
//! directions and a heartbeat until it closes.

use std::rc::Rc;
use std::time::Duration;

use bridge_core::protocol::{
    ClientFrame, ErrorFrame, Hello, Id, MessageAck, PROTOCOL_VERSION, Ping, Register, ServerFrame, Subscribe, Welcome,
    decode_server,
};
use bridge_core::retry::Failure;
use bridge_core::retry::driver::{Either, race};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::conn::{Conn, WsEvent};
use super::{Kind, SEEN_MESSAGES, Socket};
use crate::platform;
use crate::resilience::Attempt;

/// The failure a server `error` frame stands for.
pub(crate) fn server_failure(e: &ErrorFrame) -> Failure {
    match e.code.as_str() {
        "unauthorized" | "forbidden" => Failure::Auth { message: e.message.clone() },
        "unsupported_protocol" | "hello_required" | "already_hello" => Failure::Protocol { message: e.message.clone() },
        _ => Failure::Server {
            code: e.code.clone(),
            message: e.message.clone(),
            retryable: e.retryable,
            retry_after_ms: e.retry_after_ms,
        },
    }
}

fn closed(code: u16, reason: String) -> Failure {
    Failure::SocketClosed { code, reason }
}

/// One connect attempt: open the socket, say hello, wait for welcome.
pub(super) async fn connect(socket: &Socket) -> Result<(Conn, Welcome), Attempt> {
    let mut conn = Conn::open(&socket.url).map_err(|m| Attempt::new(Failure::Validation { message: m }))?;
    match conn.next().await {
        Some(WsEvent::Open) => {}
        Some(WsEvent::Closed { code, reason }) => return Err(Attempt::new(closed(code, reason))),
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
            Some(WsEvent::Text(t)) => match decode_server(&t) {
                Ok(ServerFrame::Welcome(w)) => return Ok((conn, w)),
                // The server explains before it closes: keep the explanation, wait for the close.
                Ok(ServerFrame::Error(e)) => refused = Some(server_failure(&e)),
                Ok(_) => {}
                Err(e) => return Err(Attempt::new(Failure::Protocol { message: e.message })),
            },
            Some(WsEvent::Closed { code, reason }) => {
                return Err(Attempt::new(refused.unwrap_or_else(|| closed(code, reason))));
            }
            Some(WsEvent::Open) => {}
            None => return Err(Attempt::new(Failure::Network { message: "the socket went away".into() })),
        }
    }
}

/// Runs a welcomed connection until it ends; returns why it ended.
pub(super) async fn run(socket: &Rc<Socket>, mut conn: Conn, welcome: Welcome) -> Failure {
    {
        let mut i = socket.inner.borrow_mut();
        i.connects += 1;
        i.connected_since = Some(platform::now());
        i.last_error = None;
    }
    resume(socket);
    socket.set_state(bridge_core::report::SocketState::Open);
    let beat = Duration::from_millis(welcome.heartbeat_ms.clamp(100, 60_000));
    let mut last_heard = platform::now_f64();
    let mut pings = 0u64;
    loop {
        if let Err(m) = flush(socket, &conn) {
            return Failure::Network { message: m };
        }
        let event = race(conn.next(), race(socket.wake.notified(), platform::sleep(beat))).await;
        match event {
            Either::Left(Some(WsEvent::Text(text))) => {
                last_heard = platform::now_f64();
                on_frame(socket, &text);
            }
            Either::Left(Some(WsEvent::Closed { code, reason })) => return closed(code, reason),
            Either::Left(Some(WsEvent::Open)) => {}
            Either::Left(None) => return Failure::Network { message: "the socket went away".into() },
            Either::Right(Either::Left(())) => {}
            Either::Right(Either::Right(())) => {
                // Two intervals without a single frame (pongs included): the connection is dead.
                if platform::now_f64() - last_heard > 2.0 * beat.as_secs_f64() * 1000.0 {
                    conn.close(4000, "heartbeat lost");
                    return Failure::Timeout { after_ms: 2 * beat.as_millis() as u64 };
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
    let frame = {
        let i = socket.inner.borrow();
        match socket.kind {
            Kind::Evolution if !i.patterns.is_empty() => Some(ClientFrame::Subscribe(Subscribe {
                id: Id::Num(0),
                topics: i.patterns.keys().cloned().collect(),
                since: i.position.clone(),
            })),
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

fn on_frame(socket: &Rc<Socket>, text: &str) {
    let frame = match decode_server(text) {
        Ok(f) => f,
        Err(e) => {
            crate::js::warn("the server sent a frame this bridge cannot read", &JsValue::from(e.message));
            return;
        }
    };
    match frame {
        ServerFrame::Ack(ack) => {
            if let Some(p) = &ack.position {
                let mut i = socket.inner.borrow_mut();
                if i.position.is_none() {
                    i.position = Some(p.clone());
                }
            }
            let id = ack.id.clone();
            answer(socket, &id, Ok(ServerFrame::Ack(ack)));
        }
        ServerFrame::Error(e) => match e.id.clone() {
            Some(id) => answer(socket, &id, Err(Attempt::new(server_failure(&e)))),
            None => crate::js::warn("the server reported an error", &JsValue::from(e.message)),
        },
        ServerFrame::Response(r) => {
            let id = r.id.clone();
            answer(socket, &id, Ok(ServerFrame::Response(r)));
        }
        ServerFrame::Agents(a) => {
            let id = a.id.clone();
            answer(socket, &id, Ok(ServerFrame::Agents(a)));
        }
        ServerFrame::Event(e) => on_event(socket, e, text),
        ServerFrame::Reset(r) => {
            {
                let mut i = socket.inner.borrow_mut();
                i.position = Some(bridge_core::protocol::Position { epoch: r.epoch.clone(), seq: r.seq });
                i.resets += 1;
            }
            socket.changed.notify();
            if let Ok(detail) = js_sys::JSON::parse(text) {
                socket.events.emit("reset", &detail);
            }
        }
        ServerFrame::Message(m) => on_message(socket, m, text),
        ServerFrame::Presence(_) => {
            if let Ok(detail) = js_sys::JSON::parse(text) {
                socket.events.emit("presence", &detail);
            }
        }
        // Pongs prove liveness (already noted); welcome and routed requests are not expected here.
        ServerFrame::Pong(_) | ServerFrame::Welcome(_) | ServerFrame::Request(_) => {}
    }
}

/// Hands an answer to whoever waits for request `id`.
fn answer(socket: &Rc<Socket>, id: &Id, reply: Result<ServerFrame, Attempt>) {
    let mut i = socket.inner.borrow_mut();
    let key = i.outbox.iter().find(|(_, (oid, o))| oid == id && o.reply.is_some()).map(|(k, _)| *k);
    if let Some(key) = key
        && let Some((_, out)) = i.outbox.remove(&key)
        && let Some(tx) = out.reply
    {
        let _ = tx.send(reply);
    }
}

fn on_event(socket: &Rc<Socket>, e: bridge_core::protocol::Event, text: &str) {
    let subs: Vec<js_sys::Function> = {
        let mut i = socket.inner.borrow_mut();
        if let Some(p) = &i.position
            && p.epoch == e.epoch
            && e.seq <= p.seq
        {
            i.duplicates_dropped += 1;
            return;
        }
        i.position = Some(bridge_core::protocol::Position { epoch: e.epoch.clone(), seq: e.seq });
        i.subs
            .values()
            .filter(|s| s.patterns.iter().any(|p| bridge_core::protocol::rules::pattern_matches(p, &e.topic)))
            .map(|s| s.callback.clone())
            .collect()
    };
    if subs.is_empty() {
        return;
    }
    let Ok(detail) = js_sys::JSON::parse(text) else { return };
    for f in subs {
        if let Err(err) = f.call1(&JsValue::NULL, &detail) {
            crate::js::warn("a subscription callback threw", &err);
        }
    }
}

fn on_message(socket: &Rc<Socket>, m: bridge_core::protocol::Message, text: &str) {
    let key = (m.from.clone(), m.id.clone());
    let ack = ClientFrame::Ack(MessageAck { id: m.id.clone(), from: m.from.clone() });
    if m.broadcast {
        if let Ok(detail) = js_sys::JSON::parse(text) {
            socket.events.emit("message", &detail);
        }
        return;
    }
    if socket.inner.borrow().seen_set.contains(&key) {
        // Handled before; our ack was lost. Ack again, do not hand it to the page twice.
        socket.push(&ack);
        return;
    }
    let Ok(detail) = js_sys::JSON::parse(text) else { return };
    let results = socket.events.emit("message", &detail);
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
    let mut i = socket.inner.borrow_mut();
    if i.seen_set.insert(key.clone()) {
        i.seen.push_back(key);
        if i.seen.len() > SEEN_MESSAGES
            && let Some(old) = i.seen.pop_front()
        {
            i.seen_set.remove(&old);
        }
    }
}
