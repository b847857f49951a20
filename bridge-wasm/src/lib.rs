//! The browser bridge's WebAssembly module: the bridge's state and every
//! decision on it, for the JS driver in `js/` that a page imports with it
//! (`/pkg/bridge_wasm.js` is that driver bundled with this module's glue, `js/core.js`):
//!
//! ```js
//! import init, { Bridge } from "/pkg/bridge_wasm.js";
//! await init();
//! const bridge = new Bridge({ healthIntervalMs: 10000 });
//! bridge.addEventListener("health", (change) => console.log(change));
//! await bridge.start();
//! const subscription = bridge.subscribe(["evolution.*"], (event) => console.log(event.data));
//! const response = await bridge.fetch("/api/data");
//! ```
//!
//! Full API: `docs/bridge.md`; types: `pkg/bridge_wasm.d.ts`.
//!
//! # Layout
//!
//! Rust decides, JS does. Here: [`state::Core`], bridge-core's policies,
//! breakers, retry budgets and metrics, the retry of each operation, health,
//! the backend nodes and the sockets' sessions, behind plain calls, which
//! [`exports`] (wasm only) hands to `js/core.js` as plain wasm functions. In `js/`,
//! bottom to top: the platform (clock, timers, lifetimes), the adapters
//! (WebSocket, fetch, IndexedDB, Web Locks, BroadcastChannel, the page's life),
//! the retry driver, the operations (`ops.js`), and the `Bridge` class and the
//! WebMCP tools, which both run the operations.
//!
//! Why the I/O is JS: every `web-sys` call costs the module an import shim and
//! marshalling code, and every `async fn` a state machine; the same adapters in
//! JS weigh a fraction of that. What stays here is what the bridge decides, and
//! it is the same code the backend and the native tests run.

use bridge_core::random::SeededRandom;
use bridge_core::retry::PolicySet;
use bridge_core::time::duration_ms;

#[cfg(target_arch = "wasm32")]
mod exports;
pub mod state;

/// A free-list allocator of a few hundred bytes instead of the 5 KB dlmalloc std brings:
/// the module allocates little and briefly (frames, JSON text). Measured beside dlmalloc
/// in Chromium: 3,000 `state()` calls of 83 KB each and 200,000 `call()`s took the same
/// time, and linear memory ended at 1.9 MB against 1.8 MB.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// The bridge's version.
pub fn version() -> String {
    bridge_core::VERSION.to_owned()
}

/// The built-in per-tool retry policies, by name, plus `default`, as JSON.
pub fn default_policies_json() -> String {
    let set = PolicySet::default();
    let map: bridge_core::vecmap::VecMap<&str, &bridge_core::retry::RetryPolicy> =
        set.named().chain([("default", set.default_policy())]).collect();
    state::json(&map)
}

/// The retry policy a tool named `name` gets (unknown names get the default), as JSON.
pub fn policy_for_json(name: &str) -> String {
    state::json(PolicySet::default().get(name))
}

/// The delays, in ms, that the tool `name`'s policy would wait between its
/// retries, drawing jitter from a generator seeded with `seed`.
pub fn backoff_delays(name: &str, seed: u32) -> Vec<f64> {
    PolicySet::default().get(name).backoff(SeededRandom::new(u64::from(seed))).map(|d| duration_ms(d) as f64).collect()
}
