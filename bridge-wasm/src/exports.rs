//! The module's exports, as plain wasm functions that `js/core.js` calls: the
//! ABI between the two, and with the imports of `state/edge.rs` the crate's
//! only unsafe code.
//!
//! - Numbers cross as they are. An optional number is `NaN` when absent; a flag is a
//!   number, true unless 0 (a `bool` parameter would trust the driver to pass only 0 or 1).
//! - Strings go in through one input buffer: the driver asks [`input`] for room, writes
//!   each string argument there in order (a little-endian `u32` byte length, `u32::MAX`
//!   for an absent one, then its UTF-8; a list is its count, then its strings, or its
//!   little-endian `f64`s), and the export reads them back in the same order ([`Args`]).
//! - A string result is left in [`OUT`]; its pointer and length (`u32::MAX`: none) sit at
//!   the address [`slot`] gives once.
//! - A socket's output goes out through the import `hand` during the call.
//! - A JS value (a parsed frame) is a handle into the driver's table ([`Value`]).
//!
//! Why not wasm-bindgen: its glue and shims weighed more than the calls they bind.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;

use crate::state::{Core, Out, Value};

#[link(wasm_import_module = "b")]
unsafe extern "C" {
    /// Hands output `kind` (`OutKind`'s number) to the driver, for the call under way.
    safe fn hand(kind: u32, key: f64, value: u32, text: *const u8, text_len: u32, subs: *const u32, n: usize);
}

/// A module-wide value: wasm runs one thread, and no export is reentered.
struct Global<T>(UnsafeCell<T>);

// SAFETY: wasm32 without threads: one thread touches it, one call at a time.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single-threaded, and `f` never reaches the same global again.
        f(unsafe { &mut *self.0.get() })
    }
}

/// The string arguments of the call under way, and how far they are read.
static INPUT: Global<(Vec<u8>, usize)> = Global(UnsafeCell::new((Vec::new(), 0)));
/// The string result of the last call, and where the driver reads it: pointer, length.
static OUT: Global<(String, [u32; 2])> = Global(UnsafeCell::new((String::new(), [0, 0])));

const NONE: u32 = u32::MAX;

/// Room for `n` bytes of string arguments; where to write them.
#[unsafe(no_mangle)]
extern "C" fn input(n: usize) -> *mut u8 {
    INPUT.with(|(buf, at)| {
        buf.clear();
        buf.resize(n, 0);
        *at = 0;
        buf.as_mut_ptr()
    })
}

/// Where the last string result's pointer and length are.
#[unsafe(no_mangle)]
extern "C" fn slot() -> *const u32 {
    OUT.with(|(_, slot)| slot.as_ptr())
}

/// Reads the string arguments in order.
struct Args;

impl Args {
    fn bytes(n: usize) -> Vec<u8> {
        INPUT.with(|(buf, at)| {
            let b = buf[*at..*at + n].to_vec();
            *at += n;
            b
        })
    }

    /// The next `N` bytes, copied out (no allocation: numbers are read per call on hot paths).
    fn take<const N: usize>() -> [u8; N] {
        INPUT.with(|(buf, at)| {
            let mut b = [0; N];
            b.copy_from_slice(&buf[*at..*at + N]);
            *at += N;
            b
        })
    }

    fn len() -> u32 {
        u32::from_le_bytes(Self::take())
    }

    fn o() -> Option<String> {
        let n = Self::len();
        // SAFETY: the glue writes each string with `TextEncoder.encodeInto`, which writes
        // well-formed UTF-8 only (a lone surrogate becomes U+FFFD) and whole characters,
        // and gives the length it wrote. Checking again cost the module 440 B gzip.
        (n != NONE).then(|| unsafe { String::from_utf8_unchecked(Self::bytes(n as usize)) })
    }

    fn s() -> String {
        Self::o().unwrap_or_default()
    }

    fn l() -> Vec<String> {
        (0..Self::len()).map(|_| Self::s()).collect()
    }

    fn f() -> Vec<f64> {
        (0..Self::len()).map(|_| f64::from_le_bytes(Self::take())).collect()
    }
}

fn give(s: Option<String>) {
    OUT.with(|(out, slot)| {
        *slot = [0, NONE];
        if let Some(s) = s {
            *out = s;
            *slot = [out.as_ptr() as u32, out.len() as u32];
        }
    });
}

fn give_json(value: &dyn bridge_core::json::ToJson) {
    give(Some(crate::state::json(value)));
}

fn opt(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn opt_u32(v: f64) -> Option<u32> {
    opt(v).map(|v| v as u32)
}

fn hand_over(o: Out) {
    let (text, len) = o.text.as_ref().map_or((std::ptr::null(), NONE), |t| (t.as_ptr(), t.len() as u32));
    hand(o.kind as u32, o.key, o.value.as_ref().map_or(0, |v| v.0), text, len, o.subs.as_ptr(), o.subs.len());
}

// ---- free functions ----

#[unsafe(no_mangle)]
extern "C" fn version() {
    give(Some(crate::version()));
}

#[unsafe(export_name = "defaultPoliciesJson")]
extern "C" fn default_policies_json() {
    give(Some(crate::default_policies_json()));
}

#[unsafe(export_name = "policyForJson")]
extern "C" fn policy_for_json() {
    give(Some(crate::policy_for_json(&Args::s())));
}

#[unsafe(export_name = "backoffDelays")]
extern "C" fn backoff_delays(seed: u32) {
    give_json(&crate::backoff_delays(&Args::s(), seed));
}

// ---- Core ----

#[unsafe(export_name = "coreNew")]
extern "C" fn core_new(seed: f64) -> *mut Core {
    Box::into_raw(Box::new(Core::new(seed)))
}

#[unsafe(export_name = "coreFree")]
extern "C" fn core_free(c: *mut Core) {
    // SAFETY: `c` came from `coreNew`, and the driver frees it once.
    drop(unsafe { Box::from_raw(c) });
}

/// Exports of `Core`'s methods: `name(args) => body`, with `c` the `Core`.
macro_rules! methods {
    ($($js:literal fn $name:ident($c:ident $(, $arg:ident: $t:ty)*) $(-> $r:ty)? $body:block)*) => {$(
        #[unsafe(export_name = $js)]
        extern "C" fn $name($c: &mut Core $(, $arg: $t)*) $(-> $r)? $body
    )*};
}

methods! {
    // checks
    "health" fn health(c, latency: f64, now: f64) {
        give(c.health(&Args::s(), &Args::s(), Args::s(), opt(latency), now))
    }
    "healthJson" fn health_json(c) { give(Some(c.health_json())) }
    "node" fn node(c) { give(Some(c.node())) }
    "nodeSucceeded" fn node_succeeded(c, now: f64) { c.node_succeeded(&Args::s(), now) }
    "nodeFailed" fn node_failed(c, now: f64) { give(c.node_failed(&Args::s(), now)) }
    // failures
    "failure" fn failure(c, n: f64, retryable: u32, retry_after: f64) {
        c.failure(&Args::s(), n, &Args::s(), &Args::s(), retryable != 0, opt(retry_after))
    }
    "describe" fn describe(c) { give(Some(c.describe())) }
    "isTransientStatus" fn is_transient_status(c, status: u32) -> bool { c.is_transient_status(status.min(999) as u16) }
    "shared" fn shared(c) { give(Some(c.shared(Args::o()))) }
    // operations
    "begin" fn begin(c, now: f64) -> i32 { c.begin(Args::s(), Args::s(), Args::s(), now) }
    "attempt" fn attempt(c, id: u32, now: f64) -> f64 { c.attempt(id, now) }
    "succeeded" fn succeeded(c, id: u32, now: f64) { c.succeeded(id, now) }
    "failed" fn failed(c, id: u32, now: f64, online: u32) -> f64 { c.failed(id, now, online != 0) }
    "cancelled" fn cancelled(c, id: u32, now: f64) { c.cancelled(id, now) }
    "end" fn end(c, id: u32, now: f64) { give(Some(c.end(id, now))) }
    "recordLocal" fn record_local(c) { c.record_local(&Args::s()) }
    "toolId" fn tool_id(c) -> i32 { c.tool_id(Args::s()) }
    "lane" fn lane(c, id: u32, now: f64) -> f64 { c.lane(id, now) }
    "landed" fn landed(c, id: u32, permit: f64, count: u32, now: f64) { c.landed(id, permit, count, &Args::f(), now) }
    "resume" fn resume(c, id: u32, permit: f64, started: f64, now: f64) -> i32 { c.resume(id, permit, started, now) }
    "resetBreaker" fn reset_breaker(c, now: f64) -> bool { c.reset_breaker(&Args::s(), now) }
    "isolateBreaker" fn isolate_breaker(c, now: f64) -> bool { c.isolate_breaker(&Args::s(), now) }
    // the report
    "report" fn report(c, seq: f64, ts: f64, uptime: f64, full: u32, now: f64) {
        give(Some(c.report(Args::s(), Args::s(), seq, ts, Args::o(), uptime, full != 0, now)))
    }
    "policiesJson" fn policies_json(c) { give(Some(c.policies_json())) }
    "policyJson" fn policy_json(c) { give(Some(c.policy_json(&Args::s()))) }
    // sessions
    "socketTool" fn socket_tool(c, k: usize) { give(Some(c.socket_tool(k))) }
    "newId" fn new_id(c, k: usize) { give(Some(c.new_id(k))) }
    "request" fn request(c, k: usize) -> f64 {
        match c.request(k, Args::s(), Args::s()) {
            Ok(key) => key as f64,
            Err(refused) => {
                hand_over(refused);
                -1.0
            }
        }
    }
    "cancel" fn cancel(c, k: usize, key: f64) { c.cancel(k, key) }
    "push" fn push(c, k: usize) { c.push(k, Args::s()) }
    "subscribe" fn subscribe(c, k: usize) -> f64 {
        c.subscribe(k, Args::l()).map_or(-1.0, |(id, grew)| f64::from(id) * 2.0 + f64::from(u8::from(grew)))
    }
    "unsubscribe" fn unsubscribe(c, k: usize, id: u32) -> i32 { c.unsubscribe(k, id) }
    "ownPatterns" fn own_patterns(c, k: usize) { give_json(&c.own_patterns(k)) }
    "allPatterns" fn all_patterns(c, k: usize) { give_json(&c.all_patterns(k)) }
    "setRemotePatterns" fn set_remote_patterns(c, k: usize) { c.set_remote_patterns(k, Args::l()) }
    "adoptPosition" fn adopt_position(c, k: usize, seq: f64) { c.adopt_position(k, Args::s(), seq) }
    "setAgent" fn set_agent(c, k: usize) { c.set_agent(k, Args::s(), Args::l()) }
    "agentName" fn agent_name(c, k: usize) { give(c.agent_name(k)) }
    "noteError" fn note_error(c, k: usize) { c.note_error(k, Args::s()) }
    "life" fn life(c, k: usize) { c.life(k, &Args::s()) }
    "opened" fn opened(c, k: usize) { give(Some(c.opened(k))) }
    "handshakeFailed" fn handshake_failed(c, k: usize) { give(Some(c.handshake_failed(k))) }
    "frame" fn frame(c, k: usize, now: f64, nid: f64, n: f64, flag: u32, value: u32) -> i32 {
        c.frame(k, now, Args::s(), Args::o(), opt(nid), Args::o(), Args::o(), opt(n), flag != 0, Value(value))
    }
    "isOpen" fn is_open(c, k: usize) -> bool { c.is_open(k) }
    "isReplaced" fn is_replaced(c, k: usize) -> bool { c.is_replaced(k) }
    "heartbeatMs" fn heartbeat_ms(c, k: usize) -> f64 { c.heartbeat_ms(k) }
    "tick" fn tick(c, k: usize, now: f64) { give(c.tick(k, now)) }
    "dropped" fn dropped(c, k: usize, now: f64, online: u32) -> f64 { c.dropped(k, now, online != 0) }
    "transmit" fn transmit(c, k: usize) { give(c.transmit(k)) }
    "output" fn output_of(c, k: usize) -> bool { c.output(k).map(hand_over).is_some() }
    "socketJson" fn socket_json(c, k: usize) { give(Some(c.socket_json(k))) }
    // settings
    "setPolicy" fn set_policy(c, retries: f64, base: f64, max: f64, ratio: f64, deadline: f64, timeout: f64) {
        give(c.set_policy(&Args::s(), opt_u32(retries), opt(base), opt(max), Args::o(), opt(ratio), opt(deadline), opt(timeout)))
    }
    "hasPolicy" fn has_policy(c) -> bool { c.has_policy(&Args::s()) }
    "setBreaker" fn set_breaker(c, failures: f64, reset: f64, half_open: f64, successes: f64, window: f64, min_calls: f64, threshold: f64, rate: u32) {
        let (failures, half_open, successes) = (opt_u32(failures), opt_u32(half_open), opt_u32(successes));
        give(c.set_breaker(Args::o(), failures, opt(reset), half_open, successes, opt_u32(window), opt_u32(min_calls), opt(threshold), rate != 0))
    }
    "setBudget" fn set_budget(c, window: f64, ratio: f64, min_retries: f64) {
        give(c.set_budget(opt(window), opt(ratio), opt_u32(min_retries)))
    }
    "setNodes" fn set_nodes(c, now: f64) { c.set_nodes(Args::l(), now) }
    "addSocket" fn add_socket(c, kind: usize, limit: u32) {
        c.add_socket(kind, Args::s(), Args::o(), Args::s(), limit)
    }
    "check" fn check(c) { give(c.check(&Args::s(), &Args::s())) }
}
