//! One browser WebSocket with its events as an async stream. The `Conn` owns
//! its four listeners: dropping it unhooks them and closes the socket, so a
//! connection can never outlive the code waiting on it.

use futures_channel::mpsc;
use futures_util_lite::next;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// What the socket reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WsEvent {
    Open,
    Text(String),
    Closed { code: u16, reason: String },
}

/// See the module docs.
pub(crate) struct Conn {
    ws: WebSocket,
    events: mpsc::UnboundedReceiver<WsEvent>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("url", &self.ws.url()).field("state", &self.ws.ready_state()).finish()
    }
}

impl Conn {
    /// Opens `url`; events start arriving once the socket opens or fails.
    pub(crate) fn open(url: &str) -> Result<Conn, String> {
        let ws = WebSocket::new(url).map_err(|e| crate::js::message_of(&e))?;
        let (tx, events) = mpsc::unbounded();
        let t = tx.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| {
            let _ = t.unbounded_send(WsEvent::Open);
        });
        let t = tx.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                let _ = t.unbounded_send(WsEvent::Text(text));
            }
        });
        let t = tx.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let _ = t.unbounded_send(WsEvent::Closed { code: e.code(), reason: e.reason() });
        });
        // An error is always followed by a close event, which carries the code.
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {});
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Conn { ws, events, _on_open: on_open, _on_message: on_message, _on_close: on_close, _on_error: on_error })
    }

    /// The next event; `None` only if the listeners are gone.
    pub(crate) async fn next(&mut self) -> Option<WsEvent> {
        next(&mut self.events).await
    }

    /// Sends a text frame.
    pub(crate) fn send(&self, text: &str) -> Result<(), String> {
        self.ws.send_with_str(text).map_err(|e| crate::js::message_of(&e))
    }

    /// Closes with `code` (listeners stay until drop, so the close event is still seen).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        if self.ws.ready_state() == WebSocket::CONNECTING || self.ws.ready_state() == WebSocket::OPEN {
            let _ = self.ws.close_with_code_and_reason(1000, "bridge closing");
        }
    }
}

/// A tiny `StreamExt::next` so the crate does not need futures-util.
mod futures_util_lite {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_channel::mpsc::UnboundedReceiver;

    pub(crate) async fn next<T>(rx: &mut UnboundedReceiver<T>) -> Option<T> {
        poll_fn(|cx| futures_core_poll(Pin::new(&mut *rx), cx)).await
    }

    fn futures_core_poll<T>(
        rx: Pin<&mut UnboundedReceiver<T>>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        use futures_core::Stream;
        rx.poll_next(cx)
    }
}
