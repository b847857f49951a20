//! `POST /api/evolution/publish`'s body: taken or refused with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = bridge_backend::input::publish_body(data) {
        bridge_core::protocol::rules::check_topic(&body.topic).expect("a taken body has a valid topic");
    }
});
