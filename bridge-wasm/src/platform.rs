//! The browser at the platform seam: the clock, timers, randomness, task
//! spawning and the stop signal. Everything else in the bridge reaches the
//! browser's event loop through here.
//!
//! Every timer the bridge starts is a [`sleep`] future that clears its
//! `setTimeout` when dropped, and every task is spawned with [`Lifetime::spawn`],
//! which drops it when the bridge stops: so `stop()` leaves no timer running.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bridge_core::random::SeededRandom;
use bridge_core::retry::driver::{Clock, Either, Sleeper, race};
use bridge_core::time::Millis;
use wasm_bindgen::JsCast;

thread_local! {
    static PERFORMANCE: Option<web_sys::Performance> = js_sys::global()
        .dyn_into::<web_sys::Window>()
        .ok()
        .and_then(|w| w.performance());
    static LIVE_TIMERS: Cell<u32> = const { Cell::new(0) };
    /// The last time read, for hot paths that must not read the clock (~200 ns in Chromium).
    static COARSE: Cell<u64> = const { Cell::new(0) };
}

/// Milliseconds on the page's monotonic clock (`performance.timeOrigin + performance.now()`,
/// i.e. wall-clock-like but never going backwards), fractional.
pub(crate) fn now_f64() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |p| p.time_origin() + p.now()))
}

/// [`now_f64`] as whole milliseconds.
pub(crate) fn now() -> Millis {
    let now = now_f64() as u64;
    COARSE.with(|c| c.set(now));
    Millis(now)
}

/// The last time [`now`] read: never ahead of the clock, and behind it only by the
/// time since the bridge last looked (hot paths refresh it on a sample of calls).
pub(crate) fn coarse_now() -> Millis {
    Millis(COARSE.with(Cell::get))
}

/// Wall-clock milliseconds since the Unix epoch (for `Retry-After` dates and reports).
pub(crate) fn unix_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The browser's clock for the retry driver.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WebClock;

impl Clock for WebClock {
    fn now(&self) -> Millis {
        now()
    }
    fn now_micros(&self) -> u64 {
        (now_f64() * 1000.0) as u64
    }
}

/// Timers for the retry driver.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WebSleeper;

impl Sleeper for WebSleeper {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        sleep(d)
    }
}

/// A `setTimeout` as a future; dropping it clears the timeout.
pub(crate) struct Sleep {
    inner: gloo_timers::future::TimeoutFuture,
}

impl Drop for Sleep {
    fn drop(&mut self) {
        LIVE_TIMERS.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Sleeps for `d` (clamped to what `setTimeout` accepts).
pub(crate) fn sleep(d: Duration) -> Sleep {
    LIVE_TIMERS.with(|n| n.set(n.get() + 1));
    let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX).min(i32::MAX as u32);
    Sleep { inner: gloo_timers::future::TimeoutFuture::new(ms) }
}

/// Timers currently scheduled by the bridge (shown in `state()`, checked by tests after `stop()`).
pub(crate) fn live_timers() -> u32 {
    LIVE_TIMERS.with(Cell::get)
}

/// A random seed from `crypto.getRandomValues` (falling back to `Math.random`).
pub(crate) fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let from_crypto = js_sys::global()
        .dyn_into::<web_sys::Window>()
        .ok()
        .and_then(|w| w.crypto().ok())
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if from_crypto {
        u64::from_le_bytes(bytes)
    } else {
        (js_sys::Math::random() * u64::MAX as f64) as u64 ^ now_f64().to_bits()
    }
}

/// A fresh jitter source.
pub(crate) fn rng() -> SeededRandom {
    SeededRandom::new(random_seed())
}

/// A random identifier of `n` hex digits.
pub(crate) fn random_id(n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        s.push_str(&format!("{:016x}", random_seed()));
    }
    s.truncate(n);
    s
}

#[derive(Debug, Default)]
struct StopState {
    stopped: bool,
    /// Wakers of the futures waiting for the stop, by registration; a future removes its own on drop.
    wakers: bridge_core::vecmap::VecMap<u64, Waker>,
    next: u64,
}

/// The bridge's lifetime: tasks spawned through it end when it stops.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lifetime {
    state: Rc<RefCell<StopState>>,
}

impl Lifetime {
    /// Ends the lifetime: every task spawned through it is woken and dropped, with its timers.
    pub(crate) fn stop(&self) {
        let wakers = {
            let mut s = self.state.borrow_mut();
            s.stopped = true;
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.state.borrow().stopped
    }

    /// Completes when the lifetime ends.
    pub(crate) fn stopped(&self) -> Stopped {
        Stopped { state: Rc::clone(&self.state), key: None }
    }

    /// Runs `task` until it finishes or the lifetime ends (then it is dropped, with its timers).
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.spawn_boxed(Box::pin(task));
    }

    /// One instantiation of `spawn_local` for every task (module size).
    fn spawn_boxed(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        let stopped = self.stopped();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = race(task, stopped).await;
        });
    }

    /// Runs `task` unless the lifetime ends first.
    pub(crate) async fn run<T>(&self, task: impl Future<Output = T>) -> Option<T> {
        match race(task, self.stopped()).await {
            Either::Left(v) => Some(v),
            Either::Right(()) => None,
        }
    }
}

/// See [`Lifetime::stopped`].
#[derive(Debug)]
pub(crate) struct Stopped {
    state: Rc<RefCell<StopState>>,
    key: Option<u64>,
}

impl Future for Stopped {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let state = Rc::clone(&self.state);
        let mut s = state.borrow_mut();
        if s.stopped {
            return Poll::Ready(());
        }
        let key = *self.key.get_or_insert_with(|| {
            s.next += 1;
            s.next
        });
        s.wakers.insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.state.borrow_mut().wakers.remove(&key);
        }
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use wasm_bindgen_test::*;

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    async fn finished_waits_leave_no_wakers_behind() {
        let l = Lifetime::default();
        for _ in 0..100 {
            assert_eq!(l.run(sleep(Duration::from_millis(0))).await, Some(()));
        }
        assert_eq!(l.state.borrow().wakers.len(), 0, "every finished run deregistered");
    }

    #[wasm_bindgen_test]
    async fn stopping_drops_tasks_and_their_timers() {
        let l = Lifetime::default();
        let before = live_timers();
        l.spawn(async { sleep(Duration::from_secs(3600)).await });
        sleep(Duration::from_millis(5)).await;
        assert_eq!(live_timers(), before + 1, "the task is sleeping");
        l.stop();
        sleep(Duration::from_millis(5)).await;
        assert_eq!(live_timers(), before, "stop() dropped the task and cleared its timer");
        assert!(l.run(std::future::pending::<()>()).await.is_none(), "runs end at once after stop");
    }

    #[wasm_bindgen_test]
    async fn signals_remember_one_notification() {
        let s = Signal::default();
        s.notify();
        s.notify();
        s.notified().await;
        let second = race(s.notified(), sleep(Duration::from_millis(20))).await;
        assert!(matches!(second, Either::Right(())), "two notifications before a wait count once");
    }
}

/// A wake-up flag with one waiter: `notify()` from anywhere, `notified().await` in the task that owns it.
/// Notifications while nobody waits are remembered (once).
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    state: Rc<RefCell<(bool, Option<Waker>)>>,
}

impl Signal {
    pub(crate) fn notify(&self) {
        let waker = {
            let mut s = self.state.borrow_mut();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Completes at the next (or a pending) notification.
    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified { signal: self }
    }
}

/// See [`Signal::notified`].
#[derive(Debug)]
pub(crate) struct Notified<'a> {
    signal: &'a Signal,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.signal.state.borrow_mut();
        if std::mem::take(&mut s.0) {
            return Poll::Ready(());
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}
