//! What the state needs of the JS side (`js/core.js`, module `b`): the
//! engine's number text, and the values the page handed over (a frame's
//! parsed JSON) that the sessions keep until the page gets them back.
//! Natively (the unit tests) there is no engine: Rust prints the floats, and
//! a value is only its handle.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "b")]
#[allow(unsafe_code)]
unsafe extern "C" {
    /// Writes `String(x)` (ASCII, at most 32 bytes) at `to`; its length.
    safe fn number(x: f64, to: *mut u8) -> usize;
    /// The module no longer holds value `handle`.
    safe fn release(handle: u32);
}

/// A JS value the page handed over, by its handle in the driver's table; dropping
/// it tells the driver (`release`).
#[derive(Debug)]
pub struct Value(pub u32);

impl Drop for Value {
    fn drop(&mut self) {
        #[cfg(target_arch = "wasm32")]
        release(self.0);
    }
}

/// Floats written by the engine (no float printer in the module; `JSON.parse` reads them back exactly).
#[cfg(target_arch = "wasm32")]
fn js_floats(x: f64, out: &mut String) {
    let mut text = [0u8; 32];
    let n = number(x, text.as_mut_ptr()).min(32);
    out.extend(text[..n].iter().map(|b| char::from(*b)));
}

/// Natively (the unit tests) there is no engine: Rust prints the floats.
#[cfg(not(target_arch = "wasm32"))]
use bridge_core::json::rust_floats as js_floats;

/// `value` as JSON text for the driver's `JSON.parse`.
pub(crate) fn json(value: &dyn bridge_core::json::ToJson) -> String {
    bridge_core::json::to_text(value, js_floats)
}
