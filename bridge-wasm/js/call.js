// `bridge.call(tool, fn)`: any page function under a tool's policy and breaker.
//
// The success path is short: a closed breaker admits without a clock read (the
// wasm module takes the last time read), the first attempt is awaited with no
// timer, and only 1 call in 16 is timed. Everything else goes through the
// retry driver: the full path when the breaker is not closed, and the retries
// after a failed first attempt (which continue the same run from attempt 2).
// The first attempt is not timed out (there is no timer on the success path);
// retries are, by the policy.
//
// `fn` is called with `{attempt, timeoutMs}` and may return a value or a
// promise. A thrown or rejected error is classified: an object with a boolean
// `retryable` decides for itself; one with a numeric `status` is treated as
// that HTTP status; `TimeoutError`s are timeouts; anything else is retried as a
// transient failure.

import { atHand, failedAttempt, messageOf } from "./errors.js";
import { online } from "./lifecycle.js";
import { coarseNow, now } from "./platform.js";
import { run } from "./retry.js";

const SAMPLE_MASK = 15;
const FIRST_ATTEMPT = Object.freeze({ attempt: 1 });
let counter = 0;

/** What a value thrown by page code means to the retry rules. */
export function classify(e) {
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
  const result = await run(bridge.core, { tool, resume }, (info) => attempt(fn, info));
  bridge.changed.notify();
  if ("error" in result) throw result.error;
  return result.value;
}

/** The first try failed with `error`: its breaker hears of it, then the run goes on from attempt 2. */
function failed(bridge, tool, id, permit, error, fn, started) {
  const failure = classify(error);
  const t = now();
  const runId = atHand(bridge.core, failure).resume(id, permit, started, t, online());
  return guarded(bridge, tool, fn, { id: runId, first: failedAttempt(failure, error) });
}

async function firstTry(bridge, tool, id, permit, fn) {
  const started = (++counter & SAMPLE_MASK) === 0 ? now() : -1;
  let value;
  try {
    value = await fn(FIRST_ATTEMPT);
  } catch (error) {
    return failed(bridge, tool, id, permit, error, fn, started);
  }
  if (started < 0) bridge.core.done(id, permit, -1, coarseNow());
  else bridge.core.done(id, permit, now() - started, coarseNow());
  return value;
}

/** `bridge.call(tool, fn)`. */
export function call(bridge, tool, fn) {
  const ids = bridge.callIds;
  let id = ids.get(tool);
  if (id === undefined) {
    id = bridge.core.toolId(tool);
    // A full table (-1) is not cached: the map stays as small as the module's.
    if (id >= 0) ids.set(tool, id);
  }
  const permit = id < 0 ? -1 : bridge.core.admit(id, coarseNow());
  if (permit < 0) return guarded(bridge, tool, fn);
  return firstTry(bridge, tool, id, permit, fn);
}
