// `bridge.fetch(url, init, options)`: any request under a tool's policy and a
// breaker per origin.
//
// Each attempt gets its own AbortController, aborted when the attempt is
// abandoned (its timeout, the overall deadline, or the caller's own signal),
// so no request is left running behind the caller's back. HTTP 408, 425, 429
// and 5xx are retried (honouring `Retry-After`); other statuses resolve with
// the `Response` as plain `fetch` does. Request bodies must be re-sendable
// (strings, `Blob`, `FormData`, `URLSearchParams`): a stream can be sent once.

import { failedAttempt, httpFailure, messageOf } from "./errors.js";
import { whenAborted } from "./platform.js";
import { run } from "./retry.js";

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
  const caller = options?.signal instanceof AbortSignal ? options.signal : null;
  const breaker = `fetch:${originOf(bridge.backends.follow(url))}`;
  const result = await run(bridge.core, { tool, breaker, cancel: () => caller && whenAborted(caller) }, async ({ signal }) => {
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
