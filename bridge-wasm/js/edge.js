// What the wasm module calls in JS (see src/state/edge.rs): the engine's JSON
// parser and number text, reading a field, and handing a session's output to
// the driver.

/** `JSON.parse(text)`, or `undefined` when it is not JSON. */
export function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The engine's shortest text for a number. */
export const number = String;

/** `obj[key]`, `undefined` for `null`. */
export const field = (obj, key) => obj?.[key] ?? undefined;

/**
 * One output of a socket's session for the driver (see `Core.output`). `subs` is a view
 * into the module's memory, valid only during this call: it is copied.
 */
export function output(type, key, payload, text, subs) {
  return { type, key, payload, text, subs: Array.from(subs) };
}
