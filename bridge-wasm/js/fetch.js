// `bridge.fetch(url, init, options)`: any request under a tool's policy and a
// breaker per origin.
//
// Each attempt gets its own AbortController, aborted when the attempt is
// abandoned (its timeout, the overall deadline, or the caller's own signal,
// `init.signal` or `options.signal`),
// so no request is left running behind the caller's back. HTTP 408, 425, 429
// and 5xx are retried (honouring `Retry-After`); other statuses resolve with
// the `Response` as plain `fetch` does. Request bodies must be re-sendable
// (strings, `Blob`, `FormData`, `URLSearchParams`): a stream can be sent once.

import { failedAttempt, httpFailure, messageOf } from "./errors.js";
import { now, race, sleep, whenAborted } from "./platform.js";
import { run } from "./retry.js";

/**
 * A plain GET of `url` whose whole answer, headers and body, comes within `ms`: `{status,
 * body, ms, response}` (`body` the JSON, or null), `{timedOut}`, `{cancelled}` (`signal`
 * aborted), or `{error}`. No breaker and no retry: probes measure, they do not protect.
 */
export async function quickGet(url, ms, signal) {
  const controller = new AbortController();
  const started = now();
  const answer = (async () => {
    const response = await fetch(url, { cache: "no-store", signal: controller.signal });
    let body = null;
    try {
      body = await response.json();
    } catch {}
    return { status: response.status, body, ms: now() - started, response };
  })();
  const r = await race(answer, sleep(ms), signal && whenAborted(signal));
  if (r.index !== 0) controller.abort();
  return r.index === 1 ? { timedOut: true } : r.index === 2 ? { cancelled: true } : "error" in r ? { error: r.error } : r.value;
}

/** The origin of `url` resolved against the page (for the per-origin breaker). */
function originOf(url) {
  try {
    return new URL(url, globalThis.location?.href).origin;
  } catch {
    return url;
  }
}


/** Runs `url` with `init` under the tool's policy (`options.tool`, default `fetch`) and the origin's breaker. */
export async function resilientFetch(bridge, url, init, options) {
  const tool = typeof options?.tool === "string" ? options.tool : "fetch";
  // The caller's signals, as plain fetch takes one in `init` (each attempt has its own).
  const callers = [init?.signal, options?.signal].filter((s) => s instanceof AbortSignal);
  const cancel = () => (callers.length ? whenAborted(...callers) : null);
  const breaker = `fetch:${originOf(bridge.backends.follow(url))}`;
  const result = await run(bridge.core, { tool, breaker, cancel, lifetime: bridge.lifetime }, async ({ signal }) => {
    // A URL on a backend node goes to the node current at each attempt.
    let response;
    try {
      response = await fetch(bridge.backends.follow(url), { ...(init && typeof init === "object" ? init : {}), signal });
    } catch (e) {
      // A TypeError from fetch is a network failure (refused, reset, DNS, CORS).
      throw failedAttempt({ kind: "network", message: messageOf(e) }, e);
    }
    if (bridge.core.isTransientStatus(response.status)) throw failedAttempt(httpFailure(response), response);
    return response;
  });
  return bridge.settle(result);
}
