//! One connection: the handshake, then the reader and the writer running
//! concurrently in the connection's task. The reader decodes, polices (size,
//! rate, bad frames) and dispatches to the service; the writer owns the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Message;
use bridge_core::protocol::{
    ClientFrame, ErrorCode, ErrorFrame, FrameError, PROTOCOL_VERSION, Pong, ServerFrame, Welcome, close, decode_client,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;

use super::bucket::TokenBucket;
use super::handshake::handshake;
use super::peer::Peer;
use super::queue::CloseRequest;
use super::writer::{Writer, WriterEnd};
use super::{Service, Slot, Transport};
use crate::mailbox::Mailbox;
use crate::wire::encode;

/// Serves one upgraded connection until it closes.
///
/// This future lives as long as the connection, so its size is paid by every idle
/// connection: the caller splits the socket before it starts (so it does not keep
/// the socket's own slot), and the once-only or per-frame steps (the handshake,
/// dispatching a frame, sending an error) are boxed for their duration instead of
/// being laid out in it.
///
/// (Not an `async fn`: that would keep a second copy of its arguments in the future.)
#[allow(clippy::manual_async_fn, reason = "an async fn keeps a second copy of its arguments")]
pub(crate) fn serve<S, K, R>(
    mut sink: K,
    mut stream: R,
    service: Arc<S>,
    transport: Transport,
    slot: Slot,
) -> impl Future<Output = ()> + Send
where
    S: Service,
    K: Sink<Message, Error = axum::Error> + Unpin + Send,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    async move {
        let _slot = slot;
        let _tracked = transport.0.shutdown.track();
        let Some((hello, grant)) = Box::pin(handshake(&mut sink, &mut stream, &transport, S::SOCKET)).await else {
            return;
        };
        let connections = transport.connections();
        let id = connections.next_id();
        let limits = &transport.0.limits;
        let peer = Arc::new(Peer::new(id, hello.client, grant, limits.outbound_queue));
        connections.insert(S::SOCKET, Arc::clone(&peer) as Arc<dyn Mailbox>);
        let welcome = encode(&ServerFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            session: format!("{}-{id}", S::SOCKET),
            heartbeat_ms: transport.0.heartbeat.interval_ms,
            server: format!("bridge-backend/{}", bridge_core::VERSION),
            max_frame_bytes: limits.max_frame_bytes as u64,
        }));
        if sink.send(Message::Text(welcome)).await.is_err() {
            connections.remove(id);
            return;
        }
        transport.0.metrics.frames_out(S::SOCKET, "welcome", 1);
        tracing::debug!(session = id, socket = S::SOCKET, client = %peer.client, token = %peer.grant.name, "connected");

        let start = Instant::now();
        let last_seen = AtomicU64::new(0);
        let writer = Writer::<S, K> {
            sink,
            queue: &peer.queue,
            feed: service.open(),
            service: &service,
            transport: &transport,
            last_seen: &last_seen,
            start,
        }
        .run();
        let reader = read_loop(stream, &peer, &*service, &transport, &last_seen, start);
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
        // Nothing is queued for a connection that is gone: pushes fail from now on.
        peer.queue.end();
        connections.remove(peer.id);
        service.closed(&peer);
        match end {
            WriterEnd::Closed(code) => tracing::debug!(session = id, socket = S::SOCKET, code, "closed"),
            WriterEnd::Broken => tracing::debug!(session = id, socket = S::SOCKET, "connection lost"),
        }
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
async fn read_loop<S: Service, R>(
    mut stream: R,
    peer: &Arc<Peer<S::Command>>,
    service: &S,
    transport: &Transport,
    last_seen: &AtomicU64,
    start: Instant,
) -> Option<CloseRequest>
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    let limits = &transport.0.limits;
    let metrics = &transport.0.metrics;
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
                    metrics.error("too_large");
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
                    metrics.error("rate_limited");
                    let _ = Box::pin(peer.send_error(e)).await;
                    if allowance.take(now).is_err() {
                        return Some(too_many_errors());
                    }
                    continue;
                } else {
                    match decode_client(&text) {
                        Err(e) => Some(e),
                        Ok(frame) => {
                            metrics.frame_in(S::SOCKET, frame.kind());
                            Box::pin(dispatch(frame, peer, service)).await.err()
                        }
                    }
                }
            }
        };
        if let Some(e) = error {
            metrics.error(e.code.as_str());
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

/// `hello` and `ping` are the engine's; everything else goes to the service.
async fn dispatch<S: Service>(frame: ClientFrame, peer: &Arc<Peer<S::Command>>, service: &S) -> Result<(), FrameError> {
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
        frame => service.handle(frame, peer).await,
    }
}
