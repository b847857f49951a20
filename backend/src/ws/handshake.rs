//! The first exchange of every connection: `hello` within the hello timeout,
//! the protocol version, the token; or a refusal (an `error` frame, then a close
//! frame with the code that says why).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bridge_core::protocol::{
    ClientFrame, ErrorCode, ErrorFrame, Hello, PROTOCOL_VERSION, ServerFrame, close, decode_client,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::Transport;
use crate::auth::{Grant, TokenError};
use crate::wire::encode;

/// Sends an error frame and a close frame, for handshake failures.
async fn refuse<K>(sink: &mut K, transport: &Transport, error: ErrorFrame, code: u16)
where
    K: Sink<Message, Error = axum::Error> + Unpin,
{
    transport.0.metrics.error(error.code.as_str());
    let reason = error.message.chars().take(100).collect::<String>();
    let _ = sink.feed(Message::Text(encode(&ServerFrame::Error(error)))).await;
    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))).await;
}

/// Waits for `hello`: the first frame, within the hello timeout. None when the
/// connection was refused (the refusal is sent) or went away.
pub(super) async fn handshake<K, R>(
    sink: &mut K,
    stream: &mut R,
    transport: &Transport,
    socket: &'static str,
) -> Option<(Hello, Grant)>
where
    K: Sink<Message, Error = axum::Error> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let limits = &transport.0.limits;
    let wait = Duration::from_millis(transport.0.heartbeat.hello_timeout_ms);
    let first = loop {
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => {
                let e =
                    ErrorFrame::new(None, ErrorCode::HelloRequired, format!("no hello within {} ms", wait.as_millis()));
                refuse(sink, transport, e, close::PROTOCOL_ERROR).await;
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
                refuse(sink, transport, e, close::PROTOCOL_ERROR).await;
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
        refuse(sink, transport, e, close::PROTOCOL_ERROR).await;
        return None;
    }
    let hello = match decode_client(&first) {
        Ok(ClientFrame::Hello(h)) => h,
        Ok(other) => {
            let e = ErrorFrame::new(
                other.id().cloned(),
                ErrorCode::HelloRequired,
                format!("the first frame must be hello, got \"{}\"", other.kind()),
            );
            refuse(sink, transport, e, close::PROTOCOL_ERROR).await;
            return None;
        }
        Err(e) => {
            refuse(sink, transport, e.to_frame(), close::PROTOCOL_ERROR).await;
            return None;
        }
    };
    if hello.protocol != PROTOCOL_VERSION {
        let e = ErrorFrame::new(
            None,
            ErrorCode::UnsupportedProtocol,
            format!("protocol {} is not supported; this server speaks {PROTOCOL_VERSION}", hello.protocol),
        );
        refuse(sink, transport, e, close::UNSUPPORTED_PROTOCOL).await;
        return None;
    }
    match transport.0.gate.check_token(hello.token.as_deref()) {
        Ok(grant) => {
            transport.0.metrics.frame_in(socket, "hello");
            Some((hello, grant))
        }
        Err(why) => {
            let message = match why {
                TokenError::Missing => "this server requires a token in hello",
                TokenError::Wrong => "the token is not valid",
            };
            let e = ErrorFrame::new(None, ErrorCode::Unauthorized, message);
            refuse(sink, transport, e, close::UNAUTHORIZED).await;
            None
        }
    }
}
