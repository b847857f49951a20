// `new Bridge(config)`: what a page may set, with defaults, checked with
// errors that name the field (`config.policies.fetch.maxRetries: ...`). The
// shape of each setting is checked here; the rules of policies, breakers and
// the budget are bridge-core's, applied in the wasm module, whose errors come
// back prefixed with the field. A misspelt field is an error too.

import { PERSIST_DEFAULTS } from "./outbox.js";

/** Default health poll and report interval. */
const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
/** Default outbox capacity per socket (requests not yet acknowledged). */
const DEFAULT_OUTBOX_LIMIT = 256;
/** Most nodes a page may list. */
const MAX_NODES = 16;
/** localStorage key holding the generated bridge id. */
export const BRIDGE_ID_KEY = "bridge.id";

function kindOf(v) {
  if (v === null) return "null";
  if (typeof v === "boolean") return "a boolean";
  if (typeof v === "number") return "a number";
  if (typeof v === "string") return "a string";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "function") return "a function";
  return "an object";
}

/** An invalid setting: its message starts with the field's path. */
class Invalid extends Error {}

const fail = (message) => {
  throw new Invalid(message);
};

/** An object being read field by field; `finish()` refuses fields nobody asked for (typos). */
export class Obj {
  #value;
  #read = [];

  constructor(value, path) {
    this.#value = value;
    this.path = path;
  }

  /** `value` at `path`, or null when it is `undefined` or `null`. */
  static at(value, path) {
    if (value === undefined || value === null) return null;
    if (typeof value !== "object" || Array.isArray(value)) fail(`${path}: must be an object, got ${kindOf(value)}`);
    return new Obj(value, path);
  }

  #field(key) {
    this.#read.push(key);
    return this.#peek(key);
  }

  #peek(key) {
    const v = this.#value[key];
    return v === undefined || v === null ? undefined : v;
  }

  #name(key) {
    return `${this.path}.${key}`;
  }

  #wrong(key, want, got) {
    fail(`${this.#name(key)}: must be ${want}, got ${kindOf(got)}`);
  }

  string(key) {
    const v = this.#field(key);
    if (v !== undefined && typeof v !== "string") this.#wrong(key, "a string", v);
    return v;
  }

  bool(key) {
    const v = this.#field(key);
    if (v !== undefined && typeof v !== "boolean") this.#wrong(key, "true or false", v);
    return v;
  }

  number(key) {
    const v = this.#field(key);
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v))) this.#wrong(key, "a number", v);
    return v;
  }

  /** A whole number in `0..=2^53`. */
  u64(key) {
    const n = this.number(key);
    if (n !== undefined && !(n >= 0 && Number.isInteger(n) && n <= 2 ** 53)) {
      fail(`${this.#name(key)}: must be a whole number of 0 or more`);
    }
    return n;
  }

  u32(key) {
    const n = this.u64(key);
    if (n !== undefined && n > 0xffff_ffff) fail(`${this.#name(key)}: is too large`);
    return n;
  }

  strings(key) {
    const v = this.#field(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) this.#wrong(key, "an array of strings", v);
    return [...v];
  }

  /** A string or an array of strings, as a list. */
  stringOrStrings(key) {
    const v = this.#peek(key);
    if (typeof v === "string") return [this.string(key)];
    if (v !== undefined && !Array.isArray(v)) {
      this.#read.push(key);
      this.#wrong(key, "a string or an array of strings", v);
    }
    return this.strings(key);
  }

  obj(key) {
    return Obj.at(this.#field(key), this.#name(key));
  }

  /**
   * A feature switch with settings: absent → `undefined`; `false` → `null`; `true` or an
   * object of settings → an `Obj` (`true` reads as `{}`).
   */
  switch(key) {
    const v = this.#peek(key);
    if (v === undefined) return undefined;
    if (typeof v === "boolean") {
      this.#read.push(key);
      return v ? new Obj({}, this.#name(key)) : null;
    }
    try {
      return this.obj(key);
    } catch {
      fail(`${this.#name(key)}: must be true, false or an object`);
    }
  }

  /** Every `[key, Obj]` of a map-like field (`policies`, `breakers`). */
  map(key) {
    const m = this.obj(key);
    if (!m) return [];
    return Object.entries(m.#value).map(([k, v]) => {
      const path = `${m.path}.${k}`;
      return [k, Obj.at(v, path) ?? fail(`${path}: must be an object, got null`)];
    });
  }

  /** Fails on a field that was never read: a misspelt setting must not pass silently. */
  finish() {
    for (const k of Object.keys(this.#value)) {
      if (!this.#read.includes(k)) {
        fail(`${this.path}: unknown field \`${k}\`; known fields: ${[...this.#read].sort().join(", ")}`);
      }
    }
  }
}

function inRange(name, v, low, high) {
  if (v < low || v > high) fail(`${name}: must be between ${low} and ${high}, got ${v}`);
  return v;
}

/** Throws the wasm module's complaint about a setting, prefixed. */
function applied(problem, prefix) {
  if (problem !== undefined) fail(prefix + problem);
}

/** A retry policy override (`{maxRetries, baseDelayMs, maxDelayMs, jitter, deadlineMs, attemptTimeoutMs}`) applied as policy `name`. */
export function readPolicy(core, o, name, prefix) {
  const p = [o.u32("maxRetries"), o.u64("baseDelayMs"), o.u64("maxDelayMs")];
  const j = o.obj("jitter");
  const jitter = j ? readJitter(j) : [undefined, undefined];
  p.push(...jitter, o.u64("deadlineMs"), o.u64("attemptTimeoutMs"));
  o.finish();
  return () => applied(core.setPolicy(name, ...p), prefix);
}

function readJitter(o) {
  const mode = o.string("mode") ?? "proportional";
  const ratio = o.number("ratio");
  o.finish();
  if (mode === "proportional") return [mode, ratio];
  if (["none", "full", "decorrelated"].includes(mode)) {
    if (ratio !== undefined) fail(`${o.path}: mode "${mode}" takes no ratio`);
    return [mode, undefined];
  }
  fail(`${o.path}.mode: "${mode}" is not one of none, proportional, full, decorrelated`);
}

/** Breaker settings (`{failureThreshold, resetTimeoutMs, halfOpenMaxCalls, successThreshold, failureRate}`) for `name` (none: the defaults). */
function readBreaker(core, o, name, prefix) {
  const c = [o.u32("failureThreshold"), o.u64("resetTimeoutMs"), o.u32("halfOpenMaxCalls"), o.u32("successThreshold")];
  const r = o.obj("failureRate");
  const rate = r ? [r.u32("window"), r.u32("minCalls"), r.number("threshold")] : [undefined, undefined, undefined];
  r?.finish();
  o.finish();
  applied(core.setBreaker(name, ...c, ...rate, r !== null), prefix);
}

function readBudget(core, o) {
  const b = [o.u64("windowMs"), o.number("ratio"), o.u32("minRetries")];
  o.finish();
  applied(core.setBudget(...b), "config.retryBudget: ");
}

/** `persistOutbox: {maxEntries, maxBytes, maxAgeMs}` over the defaults. */
function readPersist(o) {
  const d = PERSIST_DEFAULTS;
  const p = "config.persistOutbox.";
  const c = {
    maxEntries: inRange(p + "maxEntries", o.u32("maxEntries") ?? d.maxEntries, 1, 100_000),
    maxBytes: inRange(p + "maxBytes", o.u64("maxBytes") ?? d.maxBytes, 1, 2 ** 30),
    maxAgeMs: inRange(p + "maxAgeMs", o.u64("maxAgeMs") ?? d.maxAgeMs, 1, 30 * 24 * 3_600_000),
  };
  o.finish();
  return c;
}

/** `backendUrl`'s URLs, checked, without trailing slashes or repeats. */
function backendUrls(urls) {
  if (urls.length === 0 || urls.length > MAX_NODES) fail(`config.backendUrl: give 1 to ${MAX_NODES} URLs, got ${urls.length}`);
  const out = [];
  for (const raw of urls) {
    const url = raw.replace(/\/+$/, "");
    if (!url.startsWith("http://") && !url.startsWith("https://")) {
      fail(`config.backendUrl: must start with http:// or https://, got "${url}"`);
    }
    if (!out.includes(url)) out.push(url);
  }
  return out;
}

/**
 * The group of tabs that may share one connection: same bridge id, nodes, agent and token.
 * A hash (FNV-1a, 64 bits), so that lock and channel names stay short and show no token.
 */
function shareGroup(c) {
  const key = `${c.bridgeId}|${c.backendUrls.join(",")}|${c.agent?.name ?? ""}|${c.token ?? ""}`;
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(key)) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return `${c.bridgeId}-${h.toString(16).padStart(16, "0")}`;
}

/**
 * Reads and checks the page's `config`, applying policies, breakers and the budget to
 * `core`. `origin` is the page's origin (the default backend); `storedId` reads and
 * `storeId` writes the kept bridge id; `newId` makes one. Throws an `Error` whose message
 * names the field (`invalid: true`).
 */
export function readConfig(core, config, { origin, storedId, storeId, newId }) {
  try {
    const c = Obj.at(config, "config") ?? new Obj({}, "config");
    const urls = c.stringOrStrings("backendUrl") ?? (origin ? [origin] : null);
    if (!urls) fail("config.backendUrl: is required outside a page with an http(s) origin");
    const backend = backendUrls(urls);
    let bridgeId = c.string("bridgeId");
    if (bridgeId === undefined) {
      bridgeId = storedId();
      // A kept id that is not one (another script's, an edited one) is replaced: it is not the page's config.
      if (typeof bridgeId !== "string" || core.check("agent", bridgeId) !== undefined) {
        bridgeId = newId();
        storeId(bridgeId);
      }
    }
    const idProblem = core.check("agent", bridgeId);
    if (idProblem !== undefined) fail(`config.bridgeId: ${idProblem.replaceAll("agent name", "id")}`);
    const token = c.string("token");
    const healthIntervalMs = inRange("config.healthIntervalMs", c.u64("healthIntervalMs") ?? DEFAULT_HEALTH_INTERVAL_MS, 100, 3_600_000);
    const reportIntervalMs = inRange("config.reportIntervalMs", c.u64("reportIntervalMs") ?? healthIntervalMs, 100, 3_600_000);
    const policies = c.map("policies").map(([name, o]) => readPolicy(core, o, name, "config.policies: "));
    policies.forEach((apply) => apply());
    const breaker = c.obj("breaker");
    if (breaker) readBreaker(core, breaker, undefined, "config.breaker: ");
    for (const [name, o] of c.map("breakers")) readBreaker(core, o, name, `config.breakers.${name}: `);
    const budget = c.obj("retryBudget");
    if (budget) readBudget(core, budget);
    const llmEndpoint = c.string("llmEndpoint");
    const llmModel = c.string("llmModel");
    const outboxLimit = inRange("config.outboxLimit", c.u32("outboxLimit") ?? DEFAULT_OUTBOX_LIMIT, 1, 100_000);
    const sockets = c.strings("sockets") ?? ["evolution", "agents"];
    const bad = sockets.find((s) => s !== "evolution" && s !== "agents");
    if (bad !== undefined) fail(`config.sockets: "${bad}" is not a socket; use "evolution" and/or "agents"`);
    let agent = null;
    const a = c.obj("agent");
    if (a) {
      const name = a.string("name") ?? fail("config.agent.name: is required");
      const problem = core.check("agent", name);
      if (problem !== undefined) fail(`config.agent.name: ${problem}`);
      agent = { name, capabilities: a.strings("capabilities") ?? [] };
      a.finish();
    }
    const report = c.bool("report") ?? true;
    const persist = c.switch("persistOutbox");
    const kept = persist === undefined ? { ...PERSIST_DEFAULTS } : persist === null ? null : readPersist(persist);
    const share = c.bool("shareConnection") ?? true;
    c.finish();
    const out = {
      backendUrls: backend,
      bridgeId,
      token,
      healthIntervalMs,
      reportIntervalMs,
      llmEndpoint,
      llmModel,
      outboxLimit,
      evolution: sockets.includes("evolution"),
      agents: sockets.includes("agents"),
      agent,
      report,
      persist: kept,
    };
    out.group = share ? shareGroup(out) : null;
    return out;
  } catch (e) {
    if (e instanceof Invalid) e.invalid = true;
    throw e;
  }
}
