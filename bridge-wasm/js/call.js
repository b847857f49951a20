// The success path of `bridge.call(tool, fn)`, in plain JS.
//
// `bridge.call` is a getter that returns `call` below, so `bridge.call(tool, fn)`
// runs it with `this` = the bridge. A call to a tool whose breaker is closed costs
// a Map lookup, two numeric calls into wasm and one await: no timer, no clock read
// (latency is measured on 1 call in 16), no allocation of ours. Anything else —
// a breaker that is not closed, a failed attempt, the retries — is decided in Rust.

const SAMPLE_MASK = 15;
const FIRST_ATTEMPT = Object.freeze({ attempt: 1 });
let counter = 0;

function now() {
  return performance.timeOrigin + performance.now();
}

async function firstAttempt(bridge, id, permit, fn) {
  const started = (++counter & SAMPLE_MASK) === 0 ? now() : -1;
  let value;
  try {
    value = await fn(FIRST_ATTEMPT);
  } catch (error) {
    return bridge.__failed(id, permit, error, fn, started);
  }
  bridge.__done(id, permit, started < 0 ? -1 : now() - started);
  return value;
}

function call(tool, fn) {
  const ids = this.__callIds ?? (this.__callIds = new Map());
  let id = ids.get(tool);
  if (id === undefined) {
    id = this.__toolId(tool);
    ids.set(tool, id);
  }
  const permit = id < 0 ? -1 : this.__admit(id);
  if (permit < 0) return this.__slow(tool, fn);
  return firstAttempt(this, id, permit, fn);
}

export function callFastPath() {
  return call;
}
