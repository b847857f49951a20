//! A bridge report body (and its URL id): taken or refused with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the URL's bridge id, the rest the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let id = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    if let Ok((report, _)) = bridge_backend::input::report(&id, body) {
        assert_eq!(report.bridge_id, id, "a report is taken only for its own bridge");
    }
});
