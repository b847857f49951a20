// Errors as the page sees them: an `Error` with a stable `code` a script can
// switch on, the underlying `cause`, and more properties. The outcomes of
// retried operations (`circuit_open`, `retries_exhausted`, ...) are
// bridge-core's; these are the bridge's own, the one list of them.

export const Code = Object.freeze({
  /** A method was called with a wrong argument. */
  InvalidArgument: "invalid_argument",
  /** `new Bridge(config)` with a wrong config. */
  InvalidConfig: "invalid_config",
  /** The bridge has no such socket (`config.sockets`). */
  NotConfigured: "not_configured",
  NotFound: "not_found",
  /** Too many listeners, tools, operations in flight... */
  LimitExceeded: "limit_exceeded",
  ReportFailed: "report_failed",
  /** The evolution handler answered with its own error. */
  HandlerError: "handler_error",
  /** The socket's outbox is full. */
  OutboxFull: "outbox_full",
  /** The bridge stopped, or another connection took its agent's name. */
  Stopped: "stopped",
  /** The tab that led the shared connection stepped down (retried through the new one). */
  LeaderChanged: "leader_changed",
  /** The page's WebMCP provider refused to register a tool. */
  WebMcpFailed: "webmcp_failed",
});

const OWN = new Set(Object.values(Code));

/** Whether `code` is one of the bridge's own (a code another tab sent). */
export const isOwnCode = (code) => OWN.has(code);

/** An `Error` with `code`, and optionally `cause` and more properties. */
export function codedError(code, message, cause, extra) {
  const e = new Error(message);
  e.code = code;
  if (cause !== undefined) e.cause = cause;
  return Object.assign(e, extra);
}

/** The message of a thrown value. */
export function messageOf(value) {
  if (value instanceof Error) return value.message;
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value ?? null) ?? "an error";
  } catch {
    return "an error";
  }
}

/** Logs to the console (for failures in page callbacks, which must not stop the bridge). */
export const warn = (message, detail) => console.warn(`bridge: ${message}`, detail);

/**
 * A failed attempt: the failure the retry rules classify (bridge-core's `Failure` as JSON:
 * `{kind: "http", status: 503}`), the JS value behind it, and the bridge's own code when it
 * refused by itself.
 */
export const failedAttempt = (failure, cause, refusal) => ({ failure, cause, refusal });

/** The bridge's own refusal with `code` (retryable only for `leader_changed`: it goes again through the new leading tab). */
export const localRefusal = (code, message) =>
  failedAttempt({ kind: "other", message: `${code}: ${message}`, retryable: code === Code.LeaderChanged }, undefined, code);

/**
 * What runs before the wasm module of this key hears of a failure: `call()`'s lanes tell it
 * the successes counted so far, which all came first.
 */
export const beforeFailure = new WeakMap();

/**
 * Hands failure `f` to the wasm module as the failure at hand (its kind, one number, the
 * server's code, one text, retryable, retry-after) for the call that follows; returns `core`.
 */
export function atHand(core, f) {
  beforeFailure.get(core)?.();
  const n = f.after_ms ?? f.status ?? (typeof f.code === "number" ? f.code : 0);
  core.failure(f.kind, n, typeof f.code === "string" ? f.code : "", f.message ?? f.reason ?? "", !!f.retryable, f.retry_after_ms);
  return core;
}

/**
 * The failure of an HTTP response, with its `Retry-After` as a delay: seconds, or an HTTP date
 * (the engine's date parser reads every form the header may take).
 */
export function httpFailure(response) {
  const f = { kind: "http", status: response.status };
  const h = response.headers.get("retry-after")?.trim() ?? "";
  const at = /^\d+$/.test(h) ? Date.now() + Number(h) * 1000 : Date.parse(h);
  if (!Number.isNaN(at)) f.retry_after_ms = Math.max(0, at - Date.now());
  return f;
}
