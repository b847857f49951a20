// Web Locks (`navigator.locks`). A lock is held by this page (tab) until
// released or until the page goes away, which is what makes it a liveness
// signal other tabs can query.

import { warn } from "./errors.js";

const manager = () => {
  const locks = globalThis.navigator?.locks;
  return typeof locks?.request === "function" ? locks : null;
};

/**
 * Waits for the exclusive lock `name` and holds it: resolves with a `release()` function,
 * or `null` without Web Locks. `cancel()` gives up waiting (a lock granted later is let go at once).
 */
export function hold(name) {
  const locks = manager();
  if (!locks) return Object.assign(Promise.resolve(null), { cancel() {} });
  let cancelled = false;
  let release = null;
  let granted;
  const p = new Promise((resolve) => (granted = resolve));
  // The lock is held until the promise the callback returns settles: `release()` settles it.
  locks
    .request(
      name,
      () =>
        new Promise((r) => {
          if (cancelled) return r();
          release = r;
          granted(r);
        }),
    )
    .catch((e) => {
      warn("navigator.locks.request failed", e);
      granted(null);
    });
  p.cancel = () => {
    cancelled = true;
    release?.();
  };
  return p;
}

/** The names of the locks held now by any page of this origin; `null` without Web Locks. */
export async function heldNames() {
  const locks = manager();
  if (!locks || typeof locks.query !== "function") return null;
  try {
    const snapshot = await locks.query();
    return (snapshot.held ?? []).map((l) => l.name).filter((n) => typeof n === "string");
  } catch {
    return null;
  }
}
