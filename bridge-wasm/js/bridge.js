// The JS class a page uses: `new Bridge(config)` and its methods (the whole
// API: docs/bridge.md; types: bridge_wasm.d.ts). Each method checks what the
// page passed and hands it to the operations (`ops.js`), the bridge's state
// (`inner.js`) or the WebMCP tools, which the agents' tools share.

import { call, guarded } from "./call.js";
import { Obj, readPolicy } from "./config.js";
import { Code, codedError } from "./errors.js";
import { KINDS } from "./events.js";
import { resilientFetch } from "./fetch.js";
import { checkAll, sendReport } from "./health.js";
import { Inner } from "./inner.js";
import * as ops from "./ops.js";
import { now } from "./platform.js";
import { checkDescriptor, registerBuiltin, registerPageTool } from "./webmcp.js";

/** A subscription to evolution events; `unsubscribe()` ends it. */
export class Subscription {
  #socket;
  #id;

  constructor(socket, id) {
    this.#socket = socket;
    this.#id = id;
  }

  /** Stops delivering events to this subscription's callback; false if it had already ended. */
  unsubscribe() {
    return this.#socket.unsubscribe(this.#id);
  }
}

/** The bridge. See `docs/bridge.md`. */
export class Bridge {
  #b;

  /** Creates a bridge; throws an `Error` with `code: "invalid_config"` naming the field when `config` is wrong. */
  constructor(config) {
    this.#b = new Inner(config);
  }

  /** This bridge's id. */
  get id() {
    return this.#b.config.bridgeId;
  }

  /** Connects the sockets and starts health polling and reporting. Resolves at once; watch `health` events or `state()`. */
  async start() {
    await this.#b.start();
  }

  /** Releases every socket, timer, listener and registered tool. Waiting requests fail with `stopped`. */
  async stop() {
    this.#b.stop();
  }

  /**
   * Subscribes `callback` to evolution events on `topics` (a name, `*`, `prefix.*`, or an
   * array); returns a `Subscription`. Events resume after reconnects without loss or
   * duplicates; a `reset` event says when the server could not replay what was missed.
   */
  subscribe(topics, callback) {
    const b = this.#b;
    const socket = b.socket("evolution");
    const list = typeof topics === "string" ? [topics] : Array.from(topics ?? []).filter((t) => typeof t === "string");
    if (!list.length) throw codedError(Code.InvalidArgument, "subscribe: give a topic or an array of topics");
    for (const t of list) {
      const problem = b.core.check("pattern", t);
      if (problem !== undefined) throw codedError(Code.InvalidArgument, `subscribe: ${problem}`);
    }
    if (typeof callback !== "function") throw codedError(Code.InvalidArgument, "subscribe: give a callback function");
    return new Subscription(socket, socket.subscribe(list, callback));
  }

  /** Sends an evolution request for `action` with `params`; resolves with the handler's result. `options`: `{timeoutMs, tool}`. */
  async request(action, params, options) {
    const tool = typeof options?.tool === "string" ? options.tool : ops.REQUEST;
    return ops.request(this.#b, tool, String(action), params, ops.wholeMs(options?.timeoutMs));
  }

  /** Registers this page's agent (re-registered automatically after every reconnect). */
  async registerAgent(name, capabilities) {
    if (typeof name !== "string") throw codedError(Code.InvalidArgument, "registerAgent: give the agent's name");
    const caps = Array.isArray(capabilities) ? capabilities.filter((c) => typeof c === "string") : [];
    return ops.registerAgent(this.#b, name, caps);
  }

  /**
   * Sends `{to, messageType, content, priority?, expiresInMs?}` to an agent; resolves once the
   * backend acked it (`{status: "delivered" | "queued"}`). Takes effect exactly once, even
   * across reconnects.
   */
  async sendA2A(message) {
    return ops.send(this.#b, ops.readMessage(this.#b, message));
  }

  /** Lists agents (optionally only those with `capability`). */
  async discover(capability) {
    return ops.discover(this.#b, typeof capability === "string" ? capability : undefined);
  }

  /** Sends a message to every other online agent; resolves with `{recipients}`. */
  async broadcast(messageType, content) {
    return ops.broadcast(this.#b, String(messageType), content);
  }

  /**
   * Calls `callback(message)` for each agent message; the message is acknowledged after the
   * callback returns (or its promise resolves). Same as `addEventListener("message", cb)`.
   */
  onMessage(callback) {
    this.#b.events.add("message", callback);
  }

  /**
   * `fetch(url, init)` under the `fetch` policy (or `options.tool`'s) and the origin's breaker.
   * `options.signal` cancels every attempt. Resolves with the `Response`.
   */
  async fetch(url, init, options) {
    return resilientFetch(this.#b, String(url), init, options);
  }

  /** `call(tool, fn)`: runs `fn` (sync or async; it gets `{attempt}`) under tool `tool`'s policy and breaker. */
  call(tool, fn) {
    if (typeof tool !== "string") return Promise.reject(codedError(Code.InvalidArgument, "call: tool must be a string"));
    if (typeof fn !== "function") return Promise.reject(codedError(Code.InvalidArgument, `call(${tool}): fn must be a function`));
    return call(this.#b, tool, fn);
  }

  /** Sends a prompt (`{prompt, model?, temperature?, max_tokens?, system_prompt?}`) to the LLM endpoint; resolves with `{text, model, usage}`. */
  async prompt(input) {
    return ops.prompt(this.#b, readPrompt(input));
  }

  /**
   * Everything the bridge knows: health, breakers, retry metrics, sockets, WebMCP. The same
   * JSON as the `get_os_state` tool and the report sent to the backend.
   */
  state() {
    return this.#b.state();
  }

  /** Closes breaker `name` by hand; false if there is no such breaker. */
  resetBreaker(name) {
    this.#b.lanes.changed();
    const done = this.#b.core.resetBreaker(String(name), now());
    this.#b.changed.notify();
    return done;
  }

  /** Opens breaker `name` by hand until `resetBreaker`; false if there is no such breaker. */
  isolateBreaker(name) {
    this.#b.lanes.changed();
    const done = this.#b.core.isolateBreaker(String(name), now());
    this.#b.changed.notify();
    return done;
  }

  /** Listens for `health`, `reset`, `message`, `presence`, `node` (a move to another backend node) and `recovered` events. */
  addEventListener(kind, callback) {
    if (!KINDS.includes(kind)) throw codedError(Code.InvalidArgument, `unknown event "${kind}"; use one of ${KINDS.join(", ")}`);
    this.#b.events.add(kind, callback);
  }

  /** Removes a listener added with `addEventListener`. */
  removeEventListener(kind, callback) {
    this.#b.events.remove(kind, callback);
  }

  /** Same as `addEventListener("health", callback)`. */
  onHealthChange(callback) {
    this.addEventListener("health", callback);
  }

  /** Runs the health checks now (and reports if anything changed); resolves with the health. */
  async checkHealth() {
    await checkAll(this.#b);
    return JSON.parse(this.#b.core.healthJson());
  }

  /** Sends a state report now; resolves with its seq once the backend accepted it. */
  async sendReport() {
    try {
      return await sendReport(this.#b, null, null);
    } catch (e) {
      throw codedError(Code.ReportFailed, e.message);
    }
  }

  /**
   * Registers the bridge's tools on the page's model context (`document.modelContext`, the
   * browser's or a polyfill's, else `navigator.modelContext`); returns their names (empty
   * without one), with `provider` saying which it was. `stop()` unregisters them.
   */
  registerWebMcpTools() {
    const b = this.#b;
    const names = registerBuiltin(b.webmcp, (name, input) => runTool(b, name, input));
    b.changed.notify();
    return names;
  }

  /** Registers a page tool on WebMCP, wrapped in its own breaker and `options.policy`. Returns false without WebMCP. */
  registerTool(descriptor, options) {
    const b = this.#b;
    checkDescriptor(descriptor);
    // Applying the policy is what checks it (bridge-core's rules), so a wrong one registers nothing.
    try {
      const o = Obj.at(options?.policy, "options.policy");
      if (o) readPolicy(b.core, o, descriptor.name, "options.policy: ")();
    } catch (e) {
      throw codedError(Code.InvalidArgument, `registerTool: ${e.message}`);
    }
    const registered = registerPageTool(b.webmcp, descriptor, (tool, fn) => guarded(b, tool, fn));
    if (registered) b.changed.notify();
    return registered;
  }
}

/** A prompt's input, checked (`invalid_argument` naming the field). */
function readPrompt(input) {
  try {
    return ops.readPrompt((v, path) => Obj.at(v, path), input);
  } catch (e) {
    throw e.code ? e : codedError(Code.InvalidArgument, e.message);
  }
}

/** Runs built-in WebMCP tool `name` with `input`. */
async function runTool(b, name, input) {
  switch (name) {
    case "get_os_state": {
      const state = b.state();
      const sections = Array.isArray(input.sections) ? input.sections.filter((s) => typeof s === "string") : [];
      b.core.recordLocal(name);
      if (!sections.length) return state;
      const out = {};
      for (const k of ["bridgeId", "instance", "version", "ts", "uptimeMs", ...sections]) {
        if (state[k] !== undefined && state[k] !== null) out[k] = state[k];
      }
      return out;
    }
    case "reliability_get_status": {
      const report = b.report(true);
      const backend = typeof input.backend === "string" ? input.backend : undefined;
      const breakers = report.breakers.filter((x) => backend === undefined || x.name === backend);
      if (backend !== undefined && !breakers.length) {
        const known = report.breakers.map((x) => x.name).join(", ");
        throw codedError(Code.NotFound, `no breaker named "${backend}"; known: ${known}`);
      }
      b.core.recordLocal(name);
      return { health: report.health, breakers };
    }
    // The agent's tools run the page's operations, under the same names (see `ops.js`).
    case "send_a2a_message":
      return ops.send(b, ops.readMessage(b, input));
    case "discover_a2a_agents":
      return ops.discover(b, typeof input.capability === "string" ? input.capability : undefined);
    case "a2a_broadcast": {
      const type = typeof input.message_type === "string" ? input.message_type : "";
      return ops.broadcast(b, type, input.content ?? null);
    }
    case "trigger_evolution":
      return ops.request(b, ops.REQUEST, "evolve", input.params ?? null, ops.wholeMs(input.timeout_ms));
    case "send_llm_prompt":
      return ops.prompt(b, readPrompt(input));
    default:
      throw codedError(Code.NotFound, `no built-in tool ${name}`);
  }
}
