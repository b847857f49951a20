// What the wasm module calls in JS (see src/state/edge.rs): the engine's
// number text, and handing a session's output to the driver.

/** The engine's shortest text for a number. */
export const number = String;

/**
 * One output of a socket's session for the driver (see `Core.output`). `subs` is a view
 * into the module's memory, valid only during this call: it is copied.
 */
export function output(type, key, payload, text, subs) {
  return { type, key, payload, text, subs: Array.from(subs) };
}
