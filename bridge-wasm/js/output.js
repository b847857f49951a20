// One output of a socket's session, as the wasm module hands it to the driver
// (see `Core.output` in src/state/sessions.rs). `subs` is a view into the
// module's memory, valid only during this call: it is copied.
export function output(type, key, payload, text, subs) {
  return { type, key, payload, text, subs: Array.from(subs) };
}
