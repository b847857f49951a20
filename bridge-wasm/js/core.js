// The wasm module's glue, written for it (the ABI is in src/exports.rs): `init`,
// `initSync`, the `Core` class whose methods are the module's exports, and its free
// functions. Strings go in through the module's input buffer and come back through its
// result slot; the JS values a session keeps stay here, in `values`, by handle.

let w; // the instance's exports
let u8, dv; // views of its memory, made again when it grows
let at; // where the next string argument goes
let slot; // where a string result's pointer and length are
let last; // the output the module handed over during the call under way
const NONE = 0xffffffff;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { ignoreBOM: true });

/** The values the module holds, by handle; 0 is none. */
const values = [null];
const freed = [];
const hold = (v) => {
  const h = freed.length ? freed.pop() : values.length;
  values[h] = v;
  return h;
};
/** How many values the module holds now (`state().heldValues`): a count that only grows is a leak. */
export const heldValues = () => values.length - 1 - freed.length;

const views = () => {
  if (!u8?.byteLength) (u8 = new Uint8Array(w.memory.buffer)), (dv = new DataView(w.memory.buffer));
};
const text = (p, n) => (n === NONE ? undefined : (views(), dec.decode(u8.subarray(p, p + n))));

/** An output's `type` by its kind number (`OutKind`); from 8 on, a refusal with its code. */
const TYPES = "answer failed event reset presence message error changed".split(" ");
const REFUSALS = ["outbox_full", "leader_changed", "stopped"];

const imports = {
  b: {
    number(x, to) {
      views();
      const s = String(x);
      for (let i = 0; i < s.length; i++) u8[to + i] = s.charCodeAt(i);
      return s.length;
    },
    release(h) {
      values[h] = undefined;
      freed.push(h);
    },
    hand(kind, key, h, p, n, subs, subCount) {
      views();
      last = {
        type: TYPES[kind] ?? "refused",
        key,
        payload: kind > 7 ? REFUSALS[kind - 8] : values[h],
        text: text(p, n),
        subs: Array.from(new Uint32Array(w.memory.buffer, subs, subCount)),
      };
    },
  },
};

// Argument kinds: n a number (a flag too), m a number or undefined, v any JS value,
// s a string, o a string or undefined, l an array of strings.
// Result kinds: n a number, b a flag, s a string, o a string or undefined, x an output
// or undefined, k a request's key or its refusal (an output).
const stringSize = (t, v) => (t === "l" ? v.reduce((n, s) => n + 4 + 3 * s.length, 4) : 4 + 3 * (v?.length ?? 0));

/** A little-endian u32 in the input: a length, a list's count, or NONE. */
const count = (n) => (dv.setUint32(at, n, true), (at += 4));

function put(s) {
  if (s === undefined) return count(NONE);
  const n = enc.encodeInto(s, u8.subarray(at + 4)).written;
  dv.setUint32(at, n, true);
  at += 4 + n;
}

function write(t, v) {
  if (t === "l") count(v.length), v.forEach(put);
  else put(v);
}

/** What an export's result `r` is to the caller, by result kind `ret`. */
function result(ret, r) {
  if (ret === "n") return r;
  if (ret === "b") return r !== 0;
  if (ret === "x") return r ? last : undefined;
  if (ret === "k") return r < 0 ? last : r;
  if (ret) return views(), text(dv.getUint32(slot, true), dv.getUint32(slot + 4, true));
}

/** The export `name` with arguments `args` and result `ret` as a function (a method with `own`). */
function bind(name, args, ret, own) {
  // Up to five numbers (the hot paths: a run's steps, the lanes, the socket's loop): passed
  // as they are, an undefined one becoming NaN as wasm reads it. No arrays, no input buffer.
  if (/^[nm]{0,5}$/.test(args)) {
    return own
      ? function (a, b, c, d, e) {
          return result(ret, w[name](this.p, a, b, c, d, e));
        }
      : (a, b, c, d, e) => result(ret, w[name](a, b, c, d, e));
  }
  const kinds = [...args];
  return function (...a) {
    const nums = own ? [this.p] : [];
    let need = 0;
    kinds.forEach((t, i) => {
      const v = a[i];
      if (t === "n") nums.push(v);
      else if (t === "m") nums.push(v ?? NaN);
      else if (t === "v") nums.push(hold(v));
      else {
        const x = (a[i] = t === "l" ? Array.from(v, String) : v == null ? undefined : String(v));
        need += stringSize(t, x);
      }
    });
    if (need) {
      at = w.input(need);
      views();
      kinds.forEach((t, i) => "sol".includes(t) && write(t, a[i]));
    }
    return result(ret, w[name](...nums));
  };
}

/** `name:args>result` for each export, as `bind` reads them. */
const specs = (list, own, target) => {
  for (const s of list.split(" ")) {
    const [name, sig] = s.split(":");
    const [args, ret] = sig.split(">");
    target[name] = bind(name, args, ret, own);
  }
  return target;
};

const gone = typeof FinalizationRegistry === "function" ? new FinalizationRegistry((p) => w.coreFree(p)) : null;

/** The module's state for one bridge (src/state/). */
export class Core {
  constructor(seed) {
    this.p = w.coreNew(seed);
    gone?.register(this, this.p);
  }
}

specs(
  "health:sssmn>o healthJson:>s node:>s nodeSucceeded:sn nodeFailed:sn>o " +
    "failure:snssnm describe:>s isTransientStatus:n>b shared:o>s " +
    "begin:sssn>n attempt:nn>n succeeded:nn failed:nnn>n cancelled:nn end:nn>s recordLocal:s toolId:s>n " +
    "lane:nn>n resume:nnnn>n resetBreaker:sn>b isolateBreaker:sn>b " +
    "report:ssnnonnn>s policiesJson:>s policyJson:s>s " +
    "socketTool:n>s newId:n>s request:nss>k cancel:nn push:ns subscribe:nl>n unsubscribe:nn>n " +
    "ownPatterns:n>s allPatterns:n>s setRemotePatterns:nl adoptPosition:nsn setAgent:nsl agentName:n>o " +
    "noteError:ns life:ns opened:n>s handshakeFailed:n>s frame:nnsomoomnv>n isOpen:n>b isReplaced:n>b " +
    "heartbeatMs:n>n tick:nn>o dropped:nnn>n transmit:n>o output:n>x socketJson:n>s " +
    "setPolicy:smmmommm>o hasPolicy:s>b setBreaker:ommmmmmmn>o setBudget:mmm>o setNodes:ln addSocket:nsosn check:ss>o",
  true,
  Core.prototype,
);

// call()'s lanes tell their successes with this every 64 calls: written out, as the
// generic wrapper would cost each call() some 5 ns.
Core.prototype.landed = function (id, permit, successes, timed, now) {
  at = w.input(4 + 8 * timed.length);
  views();
  count(timed.length);
  for (const ms of timed) dv.setFloat64(at, ms, true), (at += 8);
  w.landed(this.p, id, permit, successes, now);
};

export const { version, defaultPoliciesJson, policyForJson, backoffDelays } = specs(
  "version:>s defaultPoliciesJson:>s policyForJson:s>s backoffDelays:sn>s",
  false,
  {},
);

function start(instance) {
  w = instance.exports;
  u8 = null;
  slot = w.slot();
  return w;
}

const plain = (x) => x !== undefined && Object.getPrototypeOf(x) === Object.prototype;

/** Loads the module: from `bridge_wasm_bg.wasm` beside this file, or `{module_or_path}`. */
export default async function init(arg) {
  if (w) return w;
  let src = (plain(arg) ? arg.module_or_path : arg) ?? new URL("bridge_wasm_bg.wasm", import.meta.url);
  if (typeof src === "string" || src instanceof URL || (typeof Request === "function" && src instanceof Request))
    src = fetch(src);
  src = await src;
  let r;
  if (typeof Response === "function" && src instanceof Response) {
    if (!src.ok) throw new Error(`cannot load the bridge's wasm: ${src.status} ${src.statusText} (${src.url})`);
    try {
      r = await WebAssembly.instantiateStreaming(src.clone(), imports);
    } catch (e) {
      // A server that does not say `application/wasm` defeats streaming only.
      if (src.headers.get("content-type") === "application/wasm") throw e;
      r = await WebAssembly.instantiate(await src.arrayBuffer(), imports);
    }
  } else r = await WebAssembly.instantiate(src, imports);
  return start(r.instance ?? r);
}

/** Loads the module from its bytes or a compiled `WebAssembly.Module` (`{module}`). */
export function initSync(arg) {
  if (w) return w;
  const m = plain(arg) ? arg.module : arg;
  return start(new WebAssembly.Instance(m instanceof WebAssembly.Module ? m : new WebAssembly.Module(m), imports));
}
