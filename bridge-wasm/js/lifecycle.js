// The page's life: the browser offline or online, the page frozen and
// resumed, or restored from the back/forward cache.
//
// While the browser says it is offline the bridge attempts nothing it knows
// would fail: the sockets wait instead of reconnecting, the reporter holds its
// reports, health says "offline" without probing, and a failure seen while
// offline charges no breaker (the backend did nothing wrong). When the browser
// is back online, or the page is resumed or restored, every waiting task is
// woken at once instead of sleeping out its backoff.

import { Watchers, race, sleep } from "./platform.js";

/** What an offline browser's failures and waits say. */
export const OFFLINE = "the browser is offline; waiting for it to come back online";

/** `navigator.onLine` (true where the browser does not say). */
export const online = () => globalThis.navigator?.onLine ?? true;

/** A moment in the page's life the bridge acts on (besides waking its waiting tasks). */
export const Moment = Object.freeze({ Leaving: "leaving", Returning: "returning" });

/** The page's events the bridge follows, and the tasks that wait on them. */
export class PageLife {
  #watchers = new Watchers();
  #listeners = [];
  /** Times the page came back from the back/forward cache. */
  restored = 0;
  /** What the bridge does at a moment: `(Moment) => void`. */
  onMoment = null;

  /** A signal notified at every change of the page's life, for one task. */
  watch() {
    return this.#watchers.watch();
  }

  #changed() {
    this.#watchers.notifyAll();
  }

  /**
   * Follows `online`, `offline`, `pageshow` (restored from the back/forward cache),
   * `pagehide` into it, `freeze`, `resume` and `visibilitychange`, until `unlisten()`.
   */
  listen() {
    if (this.#listeners.length || typeof window === "undefined") return;
    const targets = [
      [window, "online"],
      [window, "offline"],
      [window, "pageshow"],
      [window, "pagehide"],
      [document, "freeze"],
      [document, "resume"],
      [document, "visibilitychange"],
    ];
    for (const [target, kind] of targets) {
      const listener = (e) => this.#event(kind, e);
      target.addEventListener(kind, listener);
      this.#listeners.push([target, kind, listener]);
    }
  }

  #event(kind, e) {
    // `pageshow` also fires at the first load; only a restored page (`persisted`) is news.
    // `pagehide` with `persisted`: into the back/forward cache (without: the page is going).
    const persisted = e.persisted === true;
    switch (kind) {
      case "freeze":
        return this.onMoment?.(Moment.Leaving);
      case "pagehide":
        if (persisted) this.onMoment?.(Moment.Leaving);
        return;
      case "resume":
        this.onMoment?.(Moment.Returning);
        break;
      case "pageshow":
        if (!persisted) return;
        this.onMoment?.(Moment.Returning);
        this.restored++;
        break;
      case "visibilitychange":
        // Becoming hidden is no reason to hurry; becoming visible is.
        if (document.hidden) return;
    }
    this.#changed();
  }

  /** Stops following the page (the bridge stopped). */
  unlisten() {
    for (const [target, kind, listener] of this.#listeners.splice(0)) target.removeEventListener(kind, listener);
  }
}

/** Resolves once `cond()` holds, checking again at each notification of `signal`; cancellable. */
function until(signal, cond) {
  let current = null;
  let cancelled = false;
  const p = (async () => {
    while (!cond()) {
      current = signal.notified();
      await current;
      if (cancelled) return;
    }
  })();
  p.cancel = () => {
    cancelled = true;
    current?.cancel();
  };
  return p;
}

/** Resolves when the browser is online (at once if it is). */
export const untilOnline = (signal) => until(signal, online);

/** Resolves when the browser goes offline. */
export const untilOffline = (signal) => until(signal, () => !online());

/** Resolves at the next change after which trying again makes sense: back online, resumed, restored, shown. */
function revived(signal) {
  let first = true;
  return until(signal, () => {
    if (first) {
      first = false;
      return false;
    }
    return online();
  });
}

/** Sleeps `ms`, or less if the page revives first; cancellable. */
export const pause = (ms, signal) => race(sleep(ms), revived(signal));
