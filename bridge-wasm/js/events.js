// Events the bridge tells the page about: `addEventListener(type, cb)`.
//
// | type | detail |
// |---|---|
// | `health` | a health change: `{component, from, to, aggregateFrom, aggregateTo, at, detail?}` |
// | `reset` | the server could not replay what this page missed: `{epoch, seq, reason}` |
// | `message` | an agent message (also `onMessage`) |
// | `presence` | an agent came or went |
// | `node` | the bridge moved to another backend node: `{from, to}` |
// | `recovered` | a request an earlier page load left waiting was re-sent (or dropped for age) |

import { Code, codedError, warn } from "./errors.js";

export const KINDS = ["health", "reset", "message", "presence", "node", "recovered"];

/** Most listeners per type: a page adding listeners in a loop must not grow memory without bound. */
const MAX_LISTENERS = 256;

/** Listeners per event type (the same function twice is kept once). */
export class Events {
  #listeners = new Map();

  add(kind, f) {
    const list = this.#listeners.get(kind) ?? [];
    this.#listeners.set(kind, list);
    if (list.includes(f)) return;
    if (list.length >= MAX_LISTENERS) {
      throw codedError(Code.LimitExceeded, `at most ${MAX_LISTENERS} "${kind}" listeners`);
    }
    list.push(f);
  }

  remove(kind, f) {
    const list = this.#listeners.get(kind);
    if (list?.includes(f)) list.splice(list.indexOf(f), 1);
  }

  /**
   * Calls every `kind` listener with `detail`; returns what each returned (a listener
   * that throws is logged and skipped: page code cannot stop the bridge).
   */
  emit(kind, detail) {
    const out = [];
    // A copy: a listener may add or remove listeners.
    for (const f of [...(this.#listeners.get(kind) ?? [])]) {
      try {
        out.push(f.call(null, detail));
      } catch (e) {
        warn(`a "${kind}" listener threw`, e);
      }
    }
    return out;
  }
}
