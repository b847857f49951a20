//! The config loader: any TOML text (and a BRIDGE_* variable) gives a config or
//! an error that says what is wrong, never a panic; a config it took passes its
//! own validation again.
#![no_main]

use bridge_backend::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The last line doubles as an environment variable: NAME=value.
    let env = text
        .lines()
        .last()
        .and_then(|l| l.split_once('='))
        .map(|(k, v)| vec![(format!("BRIDGE_{}", k.trim()), v.trim().to_owned())])
        .unwrap_or_default();
    match Config::from_toml(text, env) {
        Ok(config) => config.validate().expect("a loaded config is valid"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
