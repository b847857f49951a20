//! The clients' decoder of server frames (the bridge's and the daemons'): any
//! text gives a frame or a FrameError, never a panic.
#![no_main]

use bridge_core::protocol::decode_server;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = decode_server(text) {
        decode_server(&frame.to_json()).expect("a decoded frame re-encodes to a valid frame");
    }
});
