// WebMCP: the bridge's tools for AI agents on the page's model context.
//
// A tool that runs one of the page's operations runs it under the operation's
// name (`send_a2a_message` as `sendA2AMessage`, see `ops.js`): one policy, one
// breaker and one metrics entry whether the page or an agent calls it. A page
// tool (`registerTool`) runs under its own name.
// Results are `{content: [{type: "text", text}]}`; failures are results with
// `isError: true` and the error code in the text. Every tool is registered
// with one `AbortSignal`, so `stop()` unregisters them all at once.

import { Code, codedError, messageOf, warn } from "./errors.js";

/**
 * The page's model context and where it comes from: `document.modelContext` (the
 * browser's, or a polyfill's), else `navigator.modelContext` (Chromium builds from before
 * the getter moved to `Document`). Looked up at each use, so a polyfill loaded after the
 * bridge is found too. `[modelContext, provider]` or null.
 */
export function modelContext() {
  const withRegister = (owner) => {
    const mc = owner?.modelContext;
    return typeof mc?.registerTool === "function" ? mc : null;
  };
  const mc = withRegister(globalThis.document);
  if (mc) {
    // A browser's own methods print as `[native code]`; a script's print their source.
    return [mc, String(mc.registerTool).includes("[native code]") ? "native" : "polyfill"];
  }
  const old = withRegister(globalThis.navigator);
  return old ? [old, "navigator"] : null;
}

/** The built-in tools: name, description, input schema. */
const BUILTIN = [
  [
    "get_os_state",
    "The bridge's whole state: health of every component, every circuit breaker, retry metrics per tool, sockets and WebMCP.",
    { type: "object", properties: { sections: { type: "array", items: { type: "string", enum: ["health", "breakers", "retry", "sockets", "webmcp"] }, description: "Only these sections (default: all)." } } },
  ],
  [
    "reliability_get_status",
    "Circuit breaker and health status, for one backend or tool (by breaker name) or for all.",
    { type: "object", properties: { backend: { type: "string", description: "A breaker name, e.g. connectEvolutionSocket or fetch:http://127.0.0.1:8765" } } },
  ],
  [
    "send_a2a_message",
    "Send a message to another agent through the backend; it is delivered once, even across reconnects.",
    { type: "object", required: ["to", "message_type", "content"], properties: { to: { type: "string" }, message_type: { type: "string" }, content: {}, priority: { type: "string", enum: ["low", "normal", "high"] }, expires_in_ms: { type: "integer", minimum: 1 } } },
  ],
  [
    "discover_a2a_agents",
    "List the agents known to the backend, optionally only those with a capability.",
    { type: "object", properties: { capability: { type: "string" } } },
  ],
  [
    "a2a_broadcast",
    "Send a message to every other online agent.",
    { type: "object", required: ["message_type", "content"], properties: { message_type: { type: "string" }, content: {} } },
  ],
  [
    "trigger_evolution",
    'Ask the evolution handler to run (an evolution request with action "evolve"); returns its response.',
    { type: "object", properties: { params: { description: "Passed to the handler." }, timeout_ms: { type: "integer", minimum: 1 } } },
  ],
  [
    "send_llm_prompt",
    "Send a prompt to the LLM endpoint (OpenAI-compatible) and return the answer's text.",
    { type: "object", required: ["prompt"], properties: { prompt: { type: "string" }, model: { type: "string" }, temperature: { type: "number" }, max_tokens: { type: "integer" }, system_prompt: { type: "string" } } },
  ],
];

const textResult = (text, isError) => {
  const r = { content: [{ type: "text", text }] };
  if (isError) r.isError = true;
  return r;
};

/** A tool's outcome as a WebMCP result (never a rejection: failures are `isError` results). */
async function asResult(outcome) {
  try {
    const v = await outcome;
    if (Array.isArray(v?.content)) return v;
    return textResult(v === undefined ? "null" : JSON.stringify(v), false);
  } catch (e) {
    return textResult(`${typeof e?.code === "string" ? e.code : "error"}: ${messageOf(e)}`, true);
  }
}

/** Registered tools and what unregisters them. */
export class WebMcp {
  /** The page asked for WebMCP (its health is checked from then on). */
  requested = false;
  #controller = null;
  #names = [];

  names() {
    return [...this.#names];
  }

  /** Unregisters every tool (aborting their signal). */
  unregisterAll() {
    this.#controller?.abort();
    this.#controller = null;
    this.#names = [];
  }

  /** Registers `name` with `execute(input, options)` on model context `mc`; `webmcp_failed` if it throws. */
  register(mc, name, description, inputSchema, execute) {
    this.#controller ??= new AbortController();
    let returned;
    try {
      returned = mc.registerTool({ name, description, inputSchema, execute }, { signal: this.#controller.signal });
    } catch (e) {
      throw codedError(Code.WebMcpFailed, `registering the WebMCP tool ${name} failed: ${messageOf(e)}`, e);
    }
    if (typeof returned?.then === "function") returned.then(undefined, (e) => warn("registering a WebMCP tool failed", e));
    this.#names.push(name);
  }
}

/**
 * Registers the built-in tools, each running `run(name, input)`; returns their names
 * (empty when WebMCP is absent) with `provider` saying where they went.
 */
export function registerBuiltin(webmcp, run) {
  webmcp.requested = true;
  const found = modelContext();
  const names = [];
  if (found) {
    const already = webmcp.names();
    for (const [name, description, schema] of BUILTIN) {
      if (already.includes(name)) continue;
      webmcp.register(found[0], name, description, schema, (input) => asResult(run(name, input ?? {})));
      names.push(name);
    }
  }
  return Object.assign(names, { provider: found ? found[1] : null });
}

/**
 * Registers a page tool `descriptor` (`{name, description, inputSchema, execute}`), each
 * call running `guarded(name, () => execute(input, options))`; false without WebMCP.
 */
export function registerPageTool(webmcp, descriptor, guarded) {
  webmcp.requested = true;
  const found = modelContext();
  if (!found) return false;
  const { name, execute } = descriptor;
  webmcp.register(found[0], name, typeof descriptor.description === "string" ? descriptor.description : "", descriptor.inputSchema ?? {}, (input, options) =>
    asResult(guarded(name, () => execute(input, options))),
  );
  return true;
}

/** A page tool's descriptor, checked. */
export function checkDescriptor(descriptor) {
  const invalid = (m) => codedError(Code.InvalidArgument, `registerTool: ${m}`);
  if (typeof descriptor?.name !== "string") throw invalid("descriptor.name is required");
  if (typeof descriptor.execute !== "function") throw invalid("descriptor.execute must be a function");
}
