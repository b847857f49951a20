//! Drives the socket's [`Session`](bridge_core::session::Session) with a real
//! browser WebSocket and timers: one connection's life, from the open and the
//! hello to the close, and what the session's outputs mean to the page.

use std::rc::Rc;
use std::time::Duration;

use bridge_core::retry::Failure;
use bridge_core::retry::driver::{Either, race};
use bridge_core::session::{Inbound, Output};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::conn::{Conn, WsEvent};
use super::inbound::read;
use super::{Socket, refusal};
use crate::platform;
use crate::resilience::Attempt;

fn closed(code: u16, reason: String) -> Failure {
    Failure::SocketClosed { code, reason }
}

/// One connect attempt to `node`: open the socket, say hello, wait for welcome.
pub(super) async fn connect(socket: &Rc<Socket>, node: &str) -> Result<Conn, Attempt> {
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
    let hello = socket.session.borrow_mut().opened();
    conn.send(&hello).map_err(|m| Attempt::new(Failure::Network { message: m }))?;
    loop {
        let why = match conn.next().await {
            Some(WsEvent::Text(t)) => match read(&t) {
                Some(frame) => {
                    take(socket, &t, frame);
                    if socket.session.borrow().is_open() {
                        return Ok(conn);
                    }
                    continue;
                }
                None => Failure::Protocol { message: "the server sent an unreadable frame".into() },
            },
            Some(WsEvent::Closed { code, reason }) => closed(code, reason),
            Some(WsEvent::Open) => continue,
            None => Failure::Network { message: "the socket went away".into() },
        };
        return Err(Attempt::new(socket.session.borrow_mut().handshake_failed(why)));
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
pub(super) async fn run(socket: &Rc<Socket>, mut conn: Conn) -> Failure {
    loop {
        drain(socket);
        if let Err(m) = flush(socket, &conn) {
            return Failure::Network { message: m };
        }
        let Some(beat) = socket.session.borrow().heartbeat_interval() else {
            return Failure::Other { message: "the session ended".into(), retryable: true };
        };
        let event =
            race(conn.next(), race(race(socket.wake.notified(), socket.role.notified()), platform::sleep(beat))).await;
        // Another tab leads now (this page is being frozen or cached): it keeps the connection.
        if socket.share.is_follower() {
            conn.close(1000, "another tab leads");
            socket.hand_over();
            return Failure::Other { message: "another tab leads this connection now".into(), retryable: false };
        }
        match event {
            Either::Left(Some(WsEvent::Text(text))) => on_frame(socket, &text),
            Either::Left(Some(WsEvent::Closed { code, reason })) => return closed(code, reason),
            Either::Left(Some(WsEvent::Open)) => {}
            Either::Left(None) => return Failure::Network { message: "the socket went away".into() },
            Either::Right(Either::Left(_)) => {}
            Either::Right(Either::Right(())) => {
                let tick = socket.session.borrow_mut().tick(platform::now());
                if let Err(dead) = tick {
                    conn.close(4000, "heartbeat lost");
                    return dead;
                }
            }
        }
    }
}

/// A frame from the server (on this tab's connection, or shared by the tab that leads).
pub(super) fn on_frame(socket: &Rc<Socket>, text: &str) {
    match read(text) {
        Some(frame) => take(socket, text, frame),
        None => crate::js::warn("the server sent a frame this bridge cannot read", &JsValue::from(text)),
    }
}

/// Gives the session a frame read from `text`.
fn take(socket: &Rc<Socket>, text: &str, frame: Inbound<JsValue>) {
    // What every tab sharing the connection gets.
    if matches!(
        frame,
        Inbound::Event { .. } | Inbound::Reset { .. } | Inbound::Message { .. } | Inbound::Presence { .. }
    ) {
        socket.share.share_frame(socket.kind.name(), text);
    }
    socket.session.borrow_mut().frame(platform::now(), frame);
    drain(socket);
}

/// Writes what the session has to send on this connection.
fn flush(socket: &Socket, conn: &Conn) -> Result<(), String> {
    loop {
        let Some(text) = socket.session.borrow_mut().poll_transmit() else { return Ok(()) };
        conn.send(&text)?;
    }
}

/// Does what the session asks of the page, in order. (What it has to send,
/// the connection's loop writes: it drains and flushes after every event.)
pub(super) fn drain(socket: &Rc<Socket>) {
    loop {
        // One output at a time: page callbacks below may call back into the socket.
        let Some(out) = socket.session.borrow_mut().poll_output() else { break };
        match out {
            Output::Answer { key, reply } => socket.answer(key, reply.map_err(Attempt::new)),
            Output::Refused { key, refusal: r } => socket.answer(key, Err(refusal(socket.kind, r))),
            Output::Event { subs, payload } => {
                for f in socket.callbacks(&subs) {
                    if let Err(err) = f.call1(&JsValue::NULL, &payload) {
                        crate::js::warn("a subscription callback threw", &err);
                    }
                }
            }
            Output::Reset(payload) => {
                socket.events.emit("reset", &payload);
            }
            Output::Presence(payload) => {
                socket.events.emit("presence", &payload);
            }
            Output::Message { payload, ack } => on_message(socket, &payload, ack),
            Output::ServerError(failure) => {
                crate::js::warn("the server reported an error", &JsValue::from(failure.describe()))
            }
            Output::Changed => socket.changed.notify(),
        }
    }
}

/// Hands an agent message to the page; acknowledges it once every listener has
/// finished. A listener that fails leaves it unacknowledged, so the server
/// redelivers it after a reconnect.
fn on_message(socket: &Rc<Socket>, detail: &JsValue, ack: Option<String>) {
    let results = socket.events.emit("message", detail);
    let Some(ack) = ack else { return };
    let promises: Vec<js_sys::Promise> =
        results.into_iter().filter_map(|v| v.dyn_into::<js_sys::Promise>().ok()).collect();
    if promises.is_empty() {
        socket.push(ack);
        return;
    }
    let all = js_sys::Promise::all(&promises.into_iter().collect::<js_sys::Array>());
    let socket = Rc::clone(socket);
    let lifetime = socket.lifetime();
    lifetime.spawn(async move {
        match JsFuture::from(all).await {
            Ok(_) => socket.push(ack),
            Err(e) => crate::js::warn("a message listener failed; the message stays unacknowledged", &e),
        }
    });
}
