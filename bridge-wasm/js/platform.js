// The browser at the seam: the clock, timers, waiting on several things at
// once, and the bridge's lifetime. Everything else reaches the event loop
// through here.
//
// A wait is a promise with a `cancel()`: `race()` cancels the losers, so a
// timer that lost is cleared at once and a signal that lost keeps its
// notification for the next waiter. Every timer the bridge sets is counted
// (`state().liveTimers`), and every task waits on its lifetime too, so `stop()`
// leaves no timer running.

import { warn } from "./errors.js";

let live = 0;
let coarse = 0;

/** Ms on the page's monotonic clock (`timeOrigin + now()`, so wall-clock-like), fractional. */
export function now() {
  coarse = performance.timeOrigin + performance.now();
  return coarse;
}

/** The last time `now()` read: for hot paths that must not read the clock. */
export const coarseNow = () => coarse;

/** Ms since the Unix epoch (for `Retry-After` dates and reports). */
export const unixMs = () => Date.now();

/** Timers the bridge has scheduled now. */
export const liveTimers = () => live;

/** A random 64-bit-ish seed as a number (`crypto.getRandomValues`). */
export function randomSeed() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return words[0] * 2 ** 21 + (words[1] >>> 11);
}

/** `n` random hex digits. */
export function randomId(n) {
  let s = "";
  for (const b of crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)))) s += b.toString(16).padStart(2, "0");
  return s.slice(0, n);
}

/** Resolves `true` after `ms` (clamped to what `setTimeout` takes); `cancel()` clears it. */
export function sleep(ms) {
  let id = null;
  let settle;
  const p = new Promise((resolve) => {
    settle = resolve;
    live++;
    id = setTimeout(() => {
      id = null;
      live--;
      resolve(true);
    }, Math.min(Math.max(0, ms), 2 ** 31 - 1));
  });
  p.cancel = () => {
    if (id !== null) {
      clearTimeout(id);
      id = null;
      live--;
      settle(false);
    }
  };
  return p;
}

/** Resolves when one of `signals` aborts (at once if one has); cancellable. */
export function whenAborted(...signals) {
  let listener;
  const p = new Promise((resolve) => {
    listener = resolve;
    for (const s of signals) s.aborted ? resolve() : s.addEventListener("abort", listener);
  });
  p.cancel = () => signals.forEach((s) => s.removeEventListener("abort", listener));
  return p;
}

/**
 * Waits for the first of `waits` (promises, some with `cancel()`; `null`s are skipped) and
 * cancels the others: `{index, value}` of the one that settled first, or `{index, error}`
 * when it rejected. Cancellable itself: `cancel()` cancels every wait.
 */
export function race(...waits) {
  const entries = waits.map((w, index) => [w, index]).filter(([w]) => w);
  const p = Promise.race(
    entries.map(([w, index]) => w.then((value) => ({ index, value }), (error) => ({ index, error }))),
  ).then((first) => {
    for (const [w, index] of entries) if (index !== first.index) w.cancel?.();
    return first;
  });
  p.cancel = () => {
    for (const [w] of entries) w.cancel?.();
  };
  return p;
}

/**
 * Values for one taker: `put()` from anywhere, `take()` in the task that owns it. What
 * arrives while nobody waits is kept in order; a cancelled `take()` leaves it queued.
 */
export class Mailbox {
  #queue = [];
  #waiter = null;

  put(value) {
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w(value);
    } else {
      this.#queue.push(value);
    }
  }

  get size() {
    return this.#queue.length;
  }

  /** Resolves with the next value; `cancel()` withdraws. */
  take() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    let resolve;
    const p = new Promise((r) => (resolve = r));
    this.#waiter = resolve;
    p.cancel = () => {
      if (this.#waiter === resolve) this.#waiter = null;
    };
    return p;
  }
}

/**
 * A wake-up flag with one waiter: `notify()` from anywhere, `notified()` in the task that
 * owns it. A notification while nobody waits is remembered (once).
 */
export class Signal {
  #box = new Mailbox();

  notify() {
    if (!this.#box.size) this.#box.put();
  }

  /** Resolves at the next (or a pending) notification; `cancel()` withdraws. */
  notified() {
    return this.#box.take();
  }
}

/** Signals for several tasks, one each: `watch()` gives one, `notifyAll()` wakes them all. */
export class Watchers {
  #signals = [];

  watch() {
    const s = new Signal();
    this.#signals.push(s);
    return s;
  }

  notifyAll() {
    for (const s of this.#signals) s.notify();
  }
}

/** The bridge's lifetime: its tasks end when it stops (each waits on `stopped()` too). */
export class Lifetime {
  #stopped = false;
  #waiters = new Set();

  stop() {
    this.#stopped = true;
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  get isStopped() {
    return this.#stopped;
  }

  /** Resolves when the lifetime ends; `cancel()` withdraws. */
  stopped() {
    if (this.#stopped) return Promise.resolve();
    let resolve;
    const p = new Promise((r) => (resolve = r));
    this.#waiters.add(resolve);
    p.cancel = () => this.#waiters.delete(resolve);
    return p;
  }

  /** Waits for `wait` unless the lifetime ends first: `{value}`, or `undefined` once stopped. */
  async run(wait) {
    const r = await race(wait, this.stopped());
    if (r.index === 1 || this.#stopped) return undefined;
    if ("error" in r) throw r.error;
    return { value: r.value };
  }

  /** Sleeps `ms` unless the lifetime ends first; false when it ended. */
  async sleep(ms) {
    return (await this.run(sleep(ms))) !== undefined;
  }

  /** Runs `task()` (an async function) in the background; what it throws is logged. */
  spawn(task) {
    task().catch((e) => warn("a task failed", e));
  }
}
