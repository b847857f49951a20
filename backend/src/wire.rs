//! Server frames as they go on the wire: encoded once, shared by every
//! connection that writes them (`Utf8Bytes` clones are reference counts).

use axum::extract::ws::Utf8Bytes;
use bridge_core::protocol::ServerFrame;

/// Serializes a frame for the wire.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}
