// `bridge.call(tool, fn)`: any page function under a tool's policy and breaker.
//
// The success path is short. While the tool's breaker is closed, its lane
// admits first tries with no call into the wasm module (a closed breaker
// admits everything), the first attempt is awaited with no timer, only 1 call
// in 16 is timed, and successes are counted here and told to the module in
// batches: every 64, and before it hears of anything else about breakers (a
// failure, a breaker reset by hand, a report or `state()`), so it sees every
// outcome in order. Everything else goes through the retry driver: the full
// path when the breaker is not closed, and the retries after a failed first
// attempt (which continue the same run from attempt 2). The first attempt is
// not timed out (there is no timer on the success path); retries are, by the
// policy.
//
// `fn` is called with `{attempt, timeoutMs}` and may return a value or a
// promise. A thrown or rejected error is classified: an object with a boolean
// `retryable` decides for itself; one with a numeric `status` is treated as
// that HTTP status; `TimeoutError`s are timeouts; anything else is retried as a
// transient failure.

import { beforeFailure, failedAttempt, messageOf } from "./errors.js";
import { coarseNow, now } from "./platform.js";
import { run } from "./retry.js";

const SAMPLE_MASK = 15;
/** Successes a lane counts before telling the module. */
const BATCH = 64;
const FIRST_ATTEMPT = Object.freeze({ attempt: 1 });
let counter = 0;

/** The tools `call()` has seen, each with its lane. */
export class Lanes {
  #core;
  #tools = new Map();
  /** Bumped whenever a breaker may have changed: each lane asks the module again. */
  #epoch = 0;

  constructor(core) {
    this.#core = core;
    beforeFailure.set(core, () => this.changed());
  }

  /** Tool `name`'s lane, or null when it takes the full path (its breaker is not closed). */
  lane(name) {
    let lane = this.#tools.get(name);
    if (lane !== undefined && lane.epoch === this.#epoch) return lane.permit < 0 ? null : lane;
    if (lane === undefined) {
      const id = this.#core.toolId(name);
      // A full table (-1) is not kept: the map stays as small as the module's.
      if (id < 0) return null;
      lane = { id, permit: -1, epoch: -1, done: 0, timed: [] };
      this.#tools.set(name, lane);
    }
    if (lane.epoch !== this.#epoch) {
      this.#tell(lane);
      lane.permit = this.#core.lane(lane.id, coarseNow());
      lane.epoch = this.#epoch;
    }
    return lane.permit < 0 ? null : lane;
  }

  /** A first try on `lane` succeeded (`ms`: how long it took, if timed). */
  landed(lane, ms) {
    if (ms >= 0) lane.timed.push(ms);
    if (++lane.done >= BATCH) this.#tell(lane);
  }

  #tell(lane) {
    if (lane.done) {
      this.#core.landed(lane.id, lane.permit, lane.done, lane.timed, coarseNow());
      lane.done = 0;
      lane.timed = [];
    }
  }

  /** Tells the module every success counted so far. */
  flush() {
    for (const lane of this.#tools.values()) this.#tell(lane);
  }

  /** A breaker may change (a failure, a reset by hand, a run's end): flushed, and lanes ask again. */
  changed() {
    this.flush();
    this.#epoch++;
  }
}

/** What a value thrown by page code means to the retry rules. */
function classify(e) {
  const message = messageOf(e);
  if (typeof e?.retryable === "boolean") return { kind: "other", message, retryable: e.retryable };
  if (typeof e?.status === "number") return { kind: "http", status: e.status };
  if (e?.name === "TimeoutError") return { kind: "timeout", after_ms: 0 };
  return { kind: "other", message, retryable: true };
}

/** One attempt of `fn`, its errors classified. */
async function attempt(fn, { number, timeout }) {
  const ctx = timeout === undefined ? { attempt: number } : { attempt: number, timeoutMs: timeout };
  try {
    return await fn(ctx);
  } catch (e) {
    throw failedAttempt(classify(e), e);
  }
}

/** Runs `fn` as `tool` through the retry driver. */
export async function guarded(bridge, tool, fn, resume) {
  const result = await run(bridge.core, { tool, resume, lifetime: bridge.lifetime }, (info) => attempt(fn, info));
  return bridge.settle(result);
}

/** The first try failed with `error`: its breaker hears of it, then the run goes on from attempt 2. */
function failed(bridge, tool, lane, error, fn, started) {
  const runId = bridge.core.resume(lane.id, lane.permit, started, now());
  return guarded(bridge, tool, fn, { id: runId, first: failedAttempt(classify(error), error) });
}

async function firstTry(bridge, tool, lane, fn) {
  if ((++counter & SAMPLE_MASK) === 0) return timedTry(bridge, tool, lane, fn);
  let value;
  try {
    value = await fn(FIRST_ATTEMPT);
  } catch (error) {
    return failed(bridge, tool, lane, error, fn, -1);
  }
  bridge.lanes.landed(lane, -1);
  return value;
}

/** A first try that is timed (1 in 16): its latency goes to the metrics. */
async function timedTry(bridge, tool, lane, fn) {
  const started = now();
  let value;
  try {
    value = await fn(FIRST_ATTEMPT);
  } catch (error) {
    return failed(bridge, tool, lane, error, fn, started);
  }
  bridge.lanes.landed(lane, now() - started);
  return value;
}

/** `bridge.call(tool, fn)`. */
export function call(bridge, tool, fn) {
  const lane = bridge.lanes.lane(tool);
  return lane ? firstTry(bridge, tool, lane, fn) : guarded(bridge, tool, fn);
}
