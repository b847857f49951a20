//! One WebSocket connection: the `hello` handshake, then a reader and a
//! writer running concurrently in the connection's task. The reader decodes,
//! polices (size, rate, bad frames) and dispatches; the writer owns the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bridge_core::protocol::{
    ClientFrame, ErrorCode, ErrorFrame, FrameError, Hello, PROTOCOL_VERSION, Pong, ServerFrame, Welcome, close,
    decode_client,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::bucket::TokenBucket;
use super::peer::{CloseRequest, Peer, SocketKind, encode};
use super::writer::{Writer, WriterEnd};
use crate::auth::{Grant, TokenError};
use crate::evolution::feed::Feed;
use crate::{AppState, agents, evolution};

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Serves one upgraded connection until it closes.
///
/// This future lives as long as the connection, so its size is paid by every idle
/// connection: the socket is split before it starts (so it does not keep the
/// socket's own slot), and the once-only or per-frame steps (the handshake,
/// dispatching a frame, sending an error) are boxed for their duration instead of
/// being laid out in it.
pub(crate) fn serve(
    socket: WebSocket,
    state: AppState,
    kind: SocketKind,
    slot: super::ConnectionSlot,
) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    run(sink, stream, state, kind, slot)
}

async fn run(mut sink: Sink, mut stream: Stream, state: AppState, kind: SocketKind, _slot: super::ConnectionSlot) {
    let _tracked = state.inner.shutdown.track();
    let Some((hello, grant)) = Box::pin(handshake(&mut sink, &mut stream, &state, kind)).await else { return };
    let id = state.inner.next_peer_id.fetch_add(1, Ordering::Relaxed);
    let session = format!("{}-{id}", kind.as_str());
    let limits = &state.config().limits;
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let (peer, close_rx) = Peer::new(id, kind, hello.client.clone(), grant, tx);
    let peer = Arc::new(peer);
    crate::sync::lock(&state.inner.live).insert(peer.id, Arc::clone(&peer));
    let welcome = encode(&ServerFrame::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        session: session.clone(),
        heartbeat_ms: state.config().heartbeat.interval_ms,
        server: format!("bridge-backend/{}", bridge_core::VERSION),
        max_frame_bytes: limits.max_frame_bytes as u64,
    }));
    if sink.send(Message::Text(welcome)).await.is_err() {
        return;
    }
    state.inner.metrics.frames_out(kind.as_str(), "welcome", 1);
    tracing::debug!(session, client = %hello.client, token = %peer.grant.name, "connected");

    let start = Instant::now();
    let last_seen = AtomicU64::new(0);
    let feed = (kind == SocketKind::Evolution)
        .then(|| Feed::new(Arc::clone(&state.inner.evolution), state.inner.evolution.config.max_subscriptions));
    let writer =
        Writer { sink, queue: rx, close: close_rx, feed, peer: &peer, state: &state, last_seen: &last_seen, start }
            .run();
    let reader = read_loop(stream, &peer, &state, &last_seen, start);
    tokio::pin!(writer, reader);
    let end = tokio::select! {
        asked = &mut reader => {
            // The reader stopped: the client closed, or misbehaved. Let the writer say goodbye.
            let req = asked.unwrap_or(CloseRequest { code: close::NORMAL, reason: String::new() });
            peer.close(req.code, &req.reason);
            tokio::time::timeout(Duration::from_secs(3), &mut writer).await.unwrap_or(WriterEnd::Broken)
        }
        end = &mut writer => {
            // We sent a close frame: give the client a moment to answer it (RFC 6455 §5.5.1)
            // before dropping the TCP connection, so it sees our close code rather than a reset.
            if matches!(end, WriterEnd::Closed(_)) {
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut reader).await;
            }
            end
        }
    };
    crate::sync::lock(&state.inner.live).remove(&peer.id);
    match kind {
        SocketKind::Evolution => evolution::disconnect(&state, peer.id),
        SocketKind::Agents => agents::disconnect(&state, peer.id),
    }
    match end {
        WriterEnd::Closed(code) => tracing::debug!(session, code, "closed"),
        WriterEnd::Broken => tracing::debug!(session, "connection lost"),
    }
}

/// Sends an error frame and a close frame, for handshake failures.
async fn refuse(sink: &mut Sink, state: &AppState, error: ErrorFrame, code: u16) {
    state.inner.metrics.error(&error.code);
    let reason = error.message.chars().take(100).collect::<String>();
    let _ = sink.feed(Message::Text(encode(&ServerFrame::Error(error)))).await;
    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))).await;
}

/// Waits for `hello`: the first frame, within the hello timeout.
async fn handshake(sink: &mut Sink, stream: &mut Stream, state: &AppState, kind: SocketKind) -> Option<(Hello, Grant)> {
    let limits = &state.config().limits;
    let wait = Duration::from_millis(state.config().heartbeat.hello_timeout_ms);
    let first = loop {
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => {
                let e =
                    ErrorFrame::new(None, ErrorCode::HelloRequired, format!("no hello within {} ms", wait.as_millis()));
                refuse(sink, state, e, close::PROTOCOL_ERROR).await;
                return None;
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return None,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Binary(_)))) => {
                let e = ErrorFrame::new(
                    None,
                    ErrorCode::UnsupportedFrame,
                    "binary frames are not accepted; the first frame must be a hello text frame",
                );
                refuse(sink, state, e, close::PROTOCOL_ERROR).await;
                return None;
            }
            Ok(Some(Ok(Message::Text(t)))) => break t,
        }
    };
    if first.len() > limits.max_frame_bytes {
        let e = ErrorFrame::new(
            None,
            ErrorCode::TooLarge,
            format!("frames are limited to {} bytes", limits.max_frame_bytes),
        );
        refuse(sink, state, e, close::PROTOCOL_ERROR).await;
        return None;
    }
    let hello = match decode_client(&first) {
        Ok(ClientFrame::Hello(h)) => h,
        Ok(other) => {
            let e = ErrorFrame::new(
                frame_id(&other),
                ErrorCode::HelloRequired,
                format!("the first frame must be hello, got \"{}\"", other.kind()),
            );
            refuse(sink, state, e, close::PROTOCOL_ERROR).await;
            return None;
        }
        Err(e) => {
            refuse(sink, state, e.to_frame(), close::PROTOCOL_ERROR).await;
            return None;
        }
    };
    if hello.protocol != PROTOCOL_VERSION {
        let e = ErrorFrame::new(
            None,
            ErrorCode::UnsupportedProtocol,
            format!("protocol {} is not supported; this server speaks {PROTOCOL_VERSION}", hello.protocol),
        );
        refuse(sink, state, e, close::UNSUPPORTED_PROTOCOL).await;
        return None;
    }
    match state.inner.gate.check_token(hello.token.as_deref()) {
        Ok(grant) => {
            state.inner.metrics.frame_in(kind.as_str(), "hello");
            Some((hello, grant))
        }
        Err(why) => {
            let message = match why {
                TokenError::Missing => "this server requires a token in hello",
                TokenError::Wrong => "the token is not valid",
            };
            refuse(sink, state, ErrorFrame::new(None, ErrorCode::Unauthorized, message), close::UNAUTHORIZED).await;
            None
        }
    }
}

/// The id of a decoded frame, when it has one.
pub(crate) fn frame_id(frame: &ClientFrame) -> Option<bridge_core::protocol::Id> {
    match frame {
        ClientFrame::Hello(_) => None,
        ClientFrame::Ping(f) => Some(f.id.clone()),
        ClientFrame::Subscribe(f) => Some(f.id.clone()),
        ClientFrame::Unsubscribe(f) => Some(f.id.clone()),
        ClientFrame::Publish(f) => Some(f.id.clone()),
        ClientFrame::Handle(f) => Some(f.id.clone()),
        ClientFrame::Request(f) => Some(f.id.clone()),
        ClientFrame::Response(f) => Some(f.id.clone()),
        ClientFrame::Register(f) => Some(f.id.clone()),
        ClientFrame::Send(f) => Some(f.id.clone()),
        ClientFrame::Ack(f) => Some(f.id.clone()),
        ClientFrame::Broadcast(f) => Some(f.id.clone()),
        ClientFrame::Discover(f) => Some(f.id.clone()),
    }
}

/// Error codes that mean the client sent something wrong (they count toward the bad-frame limit).
fn is_misbehaviour(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadRequest
            | ErrorCode::UnknownType
            | ErrorCode::TooLarge
            | ErrorCode::UnsupportedFrame
            | ErrorCode::RateLimited
            | ErrorCode::AlreadyHello
            | ErrorCode::Forbidden
            | ErrorCode::UnknownMessage
    )
}

/// Reads until the client closes (None) or must be closed (Some).
async fn read_loop(
    mut stream: Stream,
    peer: &Arc<Peer>,
    state: &AppState,
    last_seen: &AtomicU64,
    start: Instant,
) -> Option<CloseRequest> {
    let limits = &state.config().limits;
    let socket = peer.kind.as_str();
    let now = Instant::now();
    let mut rate = TokenBucket::new(f64::from(limits.rate_per_sec), f64::from(limits.rate_burst), now);
    let mut allowance = TokenBucket::new(1.0, f64::from(limits.max_bad_frames), now);
    while let Some(msg) = stream.next().await {
        if peer.is_closing() {
            // Closing: only wait for the client's close reply; its other frames are not processed.
            if matches!(msg, Ok(Message::Close(_)) | Err(_)) {
                return None;
            }
            continue;
        }
        let now = Instant::now();
        last_seen.store(now.saturating_duration_since(start).as_millis() as u64, Ordering::Relaxed);
        let error = match msg {
            Err(e) => {
                let too_big = matches!(
                    e.into_inner().downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
                    Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
                );
                return Some(if too_big {
                    state.inner.metrics.error("too_large");
                    CloseRequest { code: 1009, reason: format!("frame larger than {} bytes", limits.hard_frame_bytes) }
                } else {
                    CloseRequest { code: 1002, reason: "WebSocket protocol error".into() }
                });
            }
            Ok(Message::Close(_)) => return None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Binary(_)) => Some(FrameError {
                code: ErrorCode::UnsupportedFrame,
                message: "binary frames are not accepted; send JSON text frames".into(),
                id: None,
            }),
            Ok(Message::Text(text)) => {
                if text.len() > limits.max_frame_bytes {
                    Some(FrameError {
                        code: ErrorCode::TooLarge,
                        message: format!(
                            "frame of {} bytes; frames are limited to {} bytes",
                            text.len(),
                            limits.max_frame_bytes
                        ),
                        id: None,
                    })
                } else if let Err(wait) = rate.take(now) {
                    let mut e = ErrorFrame::new(
                        None,
                        ErrorCode::RateLimited,
                        format!("more than {} frames per second; this frame was not processed", limits.rate_per_sec),
                    );
                    e.retry_after_ms = Some(wait.as_millis() as u64 + 1);
                    state.inner.metrics.error("rate_limited");
                    let _ = Box::pin(peer.send_error(e)).await;
                    if allowance.take(now).is_err() {
                        return Some(too_many_errors());
                    }
                    continue;
                } else {
                    match decode_client(&text) {
                        Err(e) => Some(e),
                        Ok(frame) => {
                            state.inner.metrics.frame_in(socket, frame.kind());
                            Box::pin(dispatch(frame, peer, state)).await.err()
                        }
                    }
                }
            }
        };
        if let Some(e) = error {
            state.inner.metrics.error(e.code.as_str());
            let misbehaved = is_misbehaviour(e.code);
            let _ = Box::pin(peer.send_error(e.to_frame())).await;
            if misbehaved && allowance.take(now).is_err() {
                return Some(too_many_errors());
            }
        }
    }
    None
}

fn too_many_errors() -> CloseRequest {
    CloseRequest { code: close::TOO_MANY_ERRORS, reason: "too many bad frames".into() }
}

async fn dispatch(frame: ClientFrame, peer: &Arc<Peer>, state: &AppState) -> Result<(), FrameError> {
    match frame {
        ClientFrame::Hello(_) => Err(FrameError {
            code: ErrorCode::AlreadyHello,
            message: "hello was already received on this connection".into(),
            id: None,
        }),
        ClientFrame::Ping(p) => {
            let _ = peer.send_frame(&ServerFrame::Pong(Pong { id: p.id })).await;
            Ok(())
        }
        frame => match peer.kind {
            SocketKind::Evolution => evolution::handle(frame, peer, state).await,
            SocketKind::Agents => agents::handle(frame, peer, state).await,
        },
    }
}
