// The operations a page script and an AI agent both run: register the page's
// agent, send an agent message, discover agents, broadcast, make an evolution
// request, prompt the LLM. The `Bridge` class and the WebMCP tools both call
// these, and each operation runs under one name whoever calls it:
// `bridge.sendA2A` and the `send_a2a_message` tool share the tool name
// `sendA2AMessage`, hence its policy, its breaker and its metrics.

import { Code, codedError, failedAttempt, httpFailure, messageOf } from "./errors.js";
import { run } from "./retry.js";

export const REGISTER = "registerAgent";
export const SEND = "sendA2AMessage";
export const DISCOVER = "discoverAgents";
export const BROADCAST = "broadcast";
export const REQUEST = "evolutionRequest";
const PROMPT = "sendLLMPrompt";

/**
 * The policy an operation runs under: its own when one is configured under its name, else
 * the built-in one of what it does (the agents socket's requests share `sendA2AMessage`'s).
 */
export function policyFor(core, tool) {
  if (core.hasPolicy(tool)) return tool;
  return tool === REGISTER || tool === DISCOVER || tool === BROADCAST ? SEND : tool;
}

const invalid = (m) => codedError(Code.InvalidArgument, m);

/** Throws `invalid_argument` with the rule's message when bridge-core's rule `check` refuses `value`. */
function check(bridge, rule, value, prefix = "") {
  const problem = bridge.core.check(rule, value);
  if (problem !== undefined) throw invalid(prefix + problem);
}

/** JSON text of `value` (`undefined` becomes `null`); `invalid_argument` naming `what` when it has none. */
function json(value, what) {
  if (value === undefined) return "null";
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    // A BigInt, a cycle, or a toJSON that throws.
    throw invalid(`${what}: cannot be sent as JSON: ${e?.message ?? e}`);
  }
  if (text === undefined) throw invalid(`${what}: cannot be sent as JSON (a ${typeof value})`);
  return text;
}

/** A number of ms as the protocol takes it (a whole number of 0 or more); undefined when not a number. */
export function wholeMs(x) {
  if (typeof x !== "number") return undefined;
  return Number.isNaN(x) ? 0 : Math.min(Math.max(0, Math.floor(x)), Number.MAX_SAFE_INTEGER);
}

/** `s` as a JSON string literal. */
const quote = JSON.stringify;

/** Registers the page's agent as `name` (again after every reconnect). */
export async function registerAgent(bridge, name, capabilities) {
  const socket = bridge.socket("agents");
  check(bridge, "agent", name);
  socket.setAgent({ name, capabilities });
  const reply = await bridge.socketRequest(socket, REGISTER, policyFor(bridge.core, REGISTER), false, (id) =>
    JSON.stringify({ type: "register", id, agent: name, capabilities, presence: true, takeover: true }),
  );
  // The start claimed what was kept for the configured agent; what was kept for this one goes now.
  bridge.claim();
  return reply;
}

/** What `sendA2A` takes: `{to, messageType, content, priority?, expiresInMs?}` (or the snake_case names). */
export function readMessage(bridge, v) {
  const text = (camel, snake) => {
    const x = v?.[camel] ?? v?.[snake];
    return typeof x === "string" ? x : undefined;
  };
  const to = text("to", "to");
  if (to === undefined) throw invalid("sendA2A: `to` (an agent name) is required");
  check(bridge, "agent", to, "sendA2A: to: ");
  const messageType = text("messageType", "message_type");
  if (messageType === undefined) throw invalid("sendA2A: `messageType` is required");
  check(bridge, "label:messageType", messageType, "sendA2A: ");
  const content = json(v.content ?? null, "sendA2A: content");
  const priority = text("priority", "priority");
  if (priority !== undefined && !["low", "normal", "high"].includes(priority)) {
    throw invalid(`sendA2A: priority must be low, normal or high, got "${priority}"`);
  }
  const expires = wholeMs(v.expiresInMs ?? v.expires_in_ms);
  return {
    to,
    messageType,
    content,
    priority: priority === "normal" ? undefined : priority,
    expiresInMs: expires,
  };
}

/** Sends an agent message; resolves with the server's ack. */
export async function send(bridge, m) {
  const socket = bridge.socket("agents");
  return bridge.socketRequest(socket, SEND, policyFor(bridge.core, SEND), true, (id) => {
    let f = `{"type":"send","id":${quote(id)},"to":${quote(m.to)},"message_type":${quote(m.messageType)},"content":${m.content}`;
    if (m.priority) f += `,"priority":${quote(m.priority)}`;
    if (m.expiresInMs !== undefined) f += `,"expires_in_ms":${m.expiresInMs}`;
    return f + "}";
  });
}

/** `discover`: the agents (optionally only those with `capability`). */
export async function discover(bridge, capability) {
  const socket = bridge.socket("agents");
  const reply = await bridge.socketRequest(socket, DISCOVER, policyFor(bridge.core, DISCOVER), false, (id) =>
    JSON.stringify(capability === undefined ? { type: "discover", id } : { type: "discover", id, capability }),
  );
  return reply?.agents ?? reply;
}

/** `broadcast`. */
export async function broadcast(bridge, messageType, content) {
  const socket = bridge.socket("agents");
  check(bridge, "label:message_type", messageType);
  const body = json(content, "broadcast: content");
  return bridge.socketRequest(
    socket,
    BROADCAST,
    policyFor(bridge.core, BROADCAST),
    false,
    (id) => `{"type":"broadcast","id":${quote(id)},"message_type":${quote(messageType)},"content":${body}}`,
  );
}

/** An evolution `request` under `tool`; resolves with the handler's result. */
export async function request(bridge, tool, action, params, timeoutMs) {
  const socket = bridge.socket("evolution");
  check(bridge, "topic", action);
  const p = params === undefined || params === null ? undefined : json(params, "request: params");
  const reply = await bridge.socketRequest(socket, tool, policyFor(bridge.core, tool), true, (id) => {
    let f = `{"type":"request","id":${quote(id)},"action":${quote(action)}`;
    if (p !== undefined) f += `,"params":${p}`;
    if (timeoutMs !== undefined) f += `,"timeout_ms":${timeoutMs}`;
    return f + "}";
  });
  // A `response`: ok with a result, or the handler's own error.
  if (reply?.ok === true) return reply.result ?? null;
  const code = typeof reply?.error?.code === "string" ? reply.error.code : "error";
  const message = typeof reply?.error?.message === "string" ? reply.error.message : "";
  throw codedError(Code.HandlerError, `the handler failed: ${code}: ${message}`, undefined, { response: reply });
}

/** What a prompt takes: `{prompt, model?, temperature?, max_tokens?, system_prompt?}` (camelCase too). */
export function readPrompt(reader, v) {
  const o = reader(v, "prompt");
  if (!o) throw invalid('prompt: give {prompt: "..."}');
  const p = {
    prompt: o.string("prompt") ?? "",
    model: o.string("model"),
    temperature: o.number("temperature"),
    maxTokens: o.u32("max_tokens") ?? o.u32("maxTokens"),
    systemPrompt: o.string("system_prompt") ?? o.string("systemPrompt"),
  };
  o.finish();
  if (!p.prompt) throw invalid("prompt.prompt: must be a non-empty string");
  return p;
}

/** Sends prompt `p` under `sendLLMPrompt`; resolves with `{text, model, usage}`. */
export async function prompt(bridge, p) {
  const messages = [];
  if (p.systemPrompt !== undefined) messages.push({ role: "system", content: p.systemPrompt });
  messages.push({ role: "user", content: p.prompt });
  const chat = { model: p.model ?? bridge.config.llmModel ?? "default", messages };
  if (p.temperature !== undefined) chat.temperature = p.temperature;
  if (p.maxTokens !== undefined) chat.max_tokens = p.maxTokens;
  const body = JSON.stringify(chat);
  const token = bridge.config.token;
  const result = await run(
    bridge.core,
    { tool: PROMPT, policy: policyFor(bridge.core, PROMPT), lifetime: bridge.lifetime },
    async ({ signal }) => {
      // The page's endpoint, or the current node's proxy; on a node, it follows a failover.
      const url =
        bridge.config.llmEndpoint !== undefined
          ? bridge.backends.follow(bridge.config.llmEndpoint)
          : `${bridge.backends.url()}/api/llm/chat/completions`;
      const headers = { "content-type": "application/json" };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      let r;
      let text;
      try {
        r = await fetch(url, { method: "POST", body, headers, signal });
        text = await r.text().catch(() => "");
      } catch (e) {
        throw failedAttempt({ kind: "network", message: messageOf(e) }, e);
      }
      if (!r.ok) throw failedAttempt(httpFailure(r), text);
      try {
        return JSON.parse(text);
      } catch (e) {
        throw failedAttempt({ kind: "protocol", message: "the LLM answer is not JSON" }, e);
      }
    },
  );
  const answer = bridge.settle(result);
  // choices[0].message.content
  const text = answer?.choices?.[0]?.message?.content;
  return { text: typeof text === "string" ? text : "", model: answer?.model ?? null, usage: answer?.usage ?? null };
}
