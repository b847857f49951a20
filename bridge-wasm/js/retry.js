// Running an operation under its tool: the one retry driver. The wasm module
// decides (admission by the breaker, each attempt's timeout, whether and how
// long to wait after a failure, what the breaker and the budget hear, how it
// ended: see src/state/operations.rs); this does the waiting. Each attempt
// gets an AbortSignal, aborted when the attempt is abandoned (its timeout, or
// the caller's cancel), so no request is left running behind the caller.

import { Code, atHand, codedError } from "./errors.js";
import { online } from "./lifecycle.js";
import { now, race, sleep } from "./platform.js";

/** What the wasm module answers instead of a number of ms: no timeout / the run ended. */
const NO_TIMEOUT = -1;
const ENDED = -2;

/**
 * Runs `attempt({number, timeout, signal})` (resolving with a value, or rejecting with a
 * failed attempt: `{failure, cause, refusal}`) as `tool` under breaker `breaker` and the
 * policy named `policy`, until it succeeds, fails for good, or the wait `cancel()` makes
 * (e.g. `() => lifetime.stopped()`) settles. Resolves `{value}` or `{error}` (the page's
 * Error), with `moved` (a breaker changed state meanwhile) and `ended` (how it ended, as the
 * wasm module told: `{code, message, attempts, ...}`). `lifetime` (the bridge's, when it
 * has not ended yet) ends the run too when it ends, as `stopped`.
 *
 * `resume` continues `call()`'s fast path: a run id whose first try already failed with
 * `resume.first`.
 */
export async function run(core, { tool, breaker = tool, policy = tool, cancel = () => null, lifetime, resume = null }, attempt) {
  const id = resume ? resume.id : core.begin(tool, breaker, policy, now());
  if (id < 0) {
    const ended = { code: Code.LimitExceeded, message: "too many operations in flight", attempts: 0, moved: false };
    return { error: codedError(ended.code, `${tool}: ${ended.message}`, undefined, { tool }), moved: false, ended };
  }
  let last = resume?.first;
  let value;
  let ok = false;
  let ended;
  // A run begun after a stop is not the stop's to end.
  const bound = lifetime?.isStopped ? null : lifetime;
  const halt = () => race(cancel(), bound?.stopped());
  try {
    let wait = last ? atHand(core, last.failure).failed(id, now(), online()) : 0;
    for (let number = resume ? 2 : 1; wait !== ENDED; number++) {
      if (wait > 0 && (await race(sleep(wait), halt())).index === 1) {
        core.cancelled(id, now());
        break;
      }
      const timeout = core.attempt(id, now());
      if (timeout === ENDED) break;
      const abort = new AbortController();
      const timer = timeout === NO_TIMEOUT ? null : sleep(timeout);
      let made;
      try {
        made = attempt({ number, timeout: timeout === NO_TIMEOUT ? undefined : timeout, signal: abort.signal });
      } catch (e) {
        made = Promise.reject(e);
      }
      // A finished attempt wins over cancellation, which wins over the timeout.
      const r = await race(Promise.resolve(made), halt(), timer);
      if (r.index !== 0) abort.abort();
      if (r.index === 0 && !("error" in r)) {
        core.succeeded(id, now());
        value = r.value;
        ok = true;
        break;
      }
      if (r.index === 1) {
        core.cancelled(id, now());
        break;
      }
      last = r.index === 0 ? asAttempt(r.error) : { failure: { kind: "timeout", after_ms: timeout } };
      wait = atHand(core, last.failure).failed(id, now(), online());
    }
  } finally {
    // (A run that ended already keeps its outcome; this only covers a throw above.)
    if (!ok) core.cancelled(id, now());
    ended = JSON.parse(core.end(id, now()));
  }
  if (ok) return { value, moved: ended.moved, ended };
  // Cancelled by the stop: the page is told `stopped`, as for what waited on a socket.
  if (ended.code === "cancelled" && bound?.isStopped) Object.assign(ended, { code: Code.Stopped, message: "the bridge stopped" });
  return { error: toError(tool, ended, ended.last ? last : undefined), moved: ended.moved, ended };
}

/** A thrown value as a failed attempt (attempts reject with one; anything else is an unexpected error). */
function asAttempt(e) {
  return e && typeof e === "object" && e.failure ? e : { failure: { kind: "other", message: String(e), retryable: false }, cause: e };
}

/**
 * The page's Error for a failed operation: `code` is the outcome's (or the bridge's own
 * refusal, such as `outbox_full`), `cause` the last attempt's error.
 */
function toError(tool, ended, last) {
  // The bridge's own final refusals keep their code; everything else is the outcome's.
  const code = last?.refusal && !ended.last?.transient ? last.refusal : ended.code;
  let cause = last?.cause;
  if (cause === undefined && ended.last) {
    cause = codedError(ended.last.code, ended.last.message);
    if (ended.last.status !== undefined) cause.status = ended.last.status;
  }
  const extra = { tool, attempts: ended.attempts };
  if (ended.retryInMs !== undefined) extra.retryInMs = ended.retryInMs;
  if (ended.last?.serverCode !== undefined) extra.serverCode = ended.last.serverCode;
  return codedError(code, `${tool}: ${ended.message}`, cause, extra);
}
