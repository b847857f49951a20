//! The server's decoder of client frames: any text gives a frame or a FrameError
//! with a stable code, never a panic; a decoded frame encodes and decodes again to itself.
#![no_main]

use bridge_core::protocol::decode_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match decode_client(text) {
        Ok(frame) => {
            let again = decode_client(&frame.to_json()).expect("a decoded frame re-encodes to a valid frame");
            assert_eq!(again, frame, "a frame survives encode and decode");
        }
        Err(e) => assert!(!e.message.is_empty(), "every error says what is wrong"),
    }
});
