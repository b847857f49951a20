//! Wire contract v1: the frames, codes and rules shared by the bridge, the
//! backend and every daemon. `docs/protocol.md` is the prose version.
//!
//! - [`frames`]: every message in both directions.
//! - [`codes`]: stable error codes and WebSocket close codes.
//! - [`rules`]: name rules and wire-level limits.
//! - [`decode_client`] / [`decode_server`]: text to frame, never panicking.

pub mod codes;
mod decode;
pub mod frames;
mod json;
pub mod rules;

pub use codes::{ErrorCode, close};
pub use decode::{FrameError, decode_client, decode_server, validate};
pub use frames::*;
pub use json::Json;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
