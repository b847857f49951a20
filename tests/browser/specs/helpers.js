// Shared helpers for the browser specs.
import { expect } from "@playwright/test";
import { spawn } from "node:child_process";
import net from "node:net";
import WebSocket from "ws";
import { backendBin, listeningAt } from "../backend.js";

/** A free loopback port (for a backend a test starts, stops and starts again on the same port). */
export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Starts a backend of its own on `port` with `args`; resolves once it listens, with its child and base URL. */
export async function startBackend(port, args = []) {
  const child = spawn(backendBin, ["--port", String(port), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  return { child, base: await listeningAt(child) };
}

/** Stops a backend gracefully (SIGTERM: it closes its sockets with 1001); resolves when it has exited. */
export const stopBackend = (child) =>
  new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });

/** The bridge's built-in WebMCP tools, in registration order. */
export const BUILTIN_TOOLS = [
  "get_os_state",
  "reliability_get_status",
  "send_a2a_message",
  "discover_a2a_agents",
  "a2a_broadcast",
  "trigger_evolution",
  "send_llm_prompt",
];

export const backendUrl = () => process.env.BRIDGE_URL;

/** Collects console errors and page errors; call `expectNone()` at the end. */
export function watchErrors(page) {
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  return { errors, expectNone: () => expect(errors, "no console errors").toEqual([]) };
}

/** A native agent on the agents socket (Node's ws: a client outside the browser). */
export async function nativeAgent(name, base = backendUrl()) {
  const ws = new WebSocket(`${base.replace("http", "ws")}/agents`);
  const frames = [];
  const waiters = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(String(data));
    frames.push(frame);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const send = (f) => ws.send(JSON.stringify(f));
  const waitFor = async (pred, what, ms = 10_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = frames.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames)}`);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  send({ type: "hello", protocol: 1, client: `native-${name}` });
  await waitFor((f) => f.type === "welcome", "welcome");
  send({ type: "register", id: "reg", agent: name, capabilities: ["native"] });
  await waitFor((f) => f.type === "ack" && f.id === "reg", "register ack");
  return { agentName: name, frames, send, waitFor, close: () => ws.close() };
}

/**
 * Like `watchErrors`, but console errors matching one of `expected` ({text, url} regexps, the
 * url being where the browser logged it) are kept apart in `expected` instead of failing:
 * Chromium logs every HTTP error status as "Failed to load resource", even the ones a test
 * provokes on purpose (an injected 503).
 */
export function watchErrorsExcept(page, expected) {
  const errors = [];
  const allowed = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const url = m.location()?.url ?? "";
    const hit = expected.some((e) => e.text.test(m.text()) && (!e.url || e.url.test(url)));
    (hit ? allowed : errors).push(hit ? `${m.text()} (${url})` : m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { errors, allowed, expectNone: () => expect(errors, "no console errors").toEqual([]) };
}
