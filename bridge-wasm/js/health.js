// Health polling and reporting.
//
// Every `healthIntervalMs` (10 s) the bridge checks the backend's `/readyz`,
// both sockets, WebMCP (when tools were registered) and the LLM endpoint
// (when one was configured); changes, and only changes, become `health`
// events. The reporter sends the whole state to `PUT /api/bridges/{id}/report`
// at least every `reportIntervalMs`, and soon after anything changes, under
// its own policy and breaker (`reportState`); reports are idempotent by
// (instance, seq).

import { failedAttempt, httpFailure, messageOf, warn } from "./errors.js";
import { quickGet } from "./fetch.js";
import { OFFLINE, online, pause, untilOffline, untilOnline } from "./lifecycle.js";
import { modelContext } from "./webmcp.js";
import { now, race, sleep } from "./platform.js";
import { run } from "./retry.js";

/** The name of the reporter's policy, breaker and metrics. */
const REPORT_TOOL = "reportState";
/** A probe that takes longer than this fails. */
const PROBE_TIMEOUT_MS = 5000;
/** Changes arriving together are reported together. */
const REPORT_COALESCE_MS = 100;

/** A GET answered whole within the probe timeout, or thrown with why not. */
async function probe(url) {
  const a = await quickGet(url, PROBE_TIMEOUT_MS);
  if (a.timedOut) throw new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`);
  if (a.error) throw new Error(messageOf(a.error));
  return a;
}

async function checkBackend(bridge) {
  try {
    const { status, body, ms } = await probe(`${bridge.backends.url()}/readyz`);
    if (status === 200 && body?.status === "pass") return ["pass", "", ms];
    if (status === 200) return ["warn", `readyz: ${body === null ? "" : JSON.stringify(body)}`, ms];
    return ["fail", `readyz answered HTTP ${status}`, ms];
  } catch (e) {
    return ["fail", `backend unreachable: ${e.message}`, undefined];
  }
}

/**
 * A socket's check; none while it makes its first connection without a failure yet (it is
 * not known to be anything yet: no spurious "degraded" at every page load).
 */
function checkSocket(socket) {
  const s = socket.snapshot();
  if (s.state === "open") return ["pass", ""];
  if (s.state === "connecting" && s.lastError === undefined) return null;
  if (s.state === "stopped") return ["fail", "stopped"];
  return ["fail", `${s.state === "connecting" ? "connecting" : "reconnecting"}: ${s.lastError ?? "not connected yet"}`];
}

async function checkLlm(bridge) {
  // The backend proxy reports its upstream; a direct endpoint is probed as is.
  const endpoint = bridge.backends.follow(bridge.config.llmEndpoint ?? "");
  const node = bridge.backends.url();
  const url = endpoint === `${node}/api/llm/chat/completions` ? `${node}/api/llm/health` : endpoint;
  try {
    const { status, ms } = await probe(url);
    if (status < 500) return ["pass", "", ms];
    return ["fail", `LLM endpoint answered HTTP ${status}`, ms];
  } catch (e) {
    return ["fail", `LLM endpoint unreachable: ${e.message}`, undefined];
  }
}

/** Records one check; emits `health` when something changed. */
function record(bridge, component, [result, detail, latency]) {
  const change = bridge.core.health(component, result, detail, latency, now());
  if (change !== undefined) {
    bridge.changed.notify();
    bridge.events.emit("health", JSON.parse(change));
  }
}

/** Checks everything once. */
export async function checkAll(bridge) {
  // Offline, the probes would only fail: say why instead. Degraded, not unhealthy: the
  // backend is not known to be down, and the sockets say for themselves whether they work.
  const on = online();
  record(bridge, "backend", on ? await checkBackend(bridge) : ["warn", OFFLINE]);
  for (const [component, socket] of [["evolutionSocket", bridge.evolution], ["agentSocket", bridge.agents]]) {
    const result = socket && checkSocket(socket);
    if (result) record(bridge, component, result);
  }
  if (bridge.webmcp.requested) {
    record(
      bridge,
      "webmcp",
      modelContext()
        ? ["pass", ""]
        : [
            "warn",
            "no model context: neither document.modelContext nor navigator.modelContext exists " +
              "(load a WebMCP polyfill such as @mcp-b/webmcp-polyfill before registering tools)",
          ],
    );
  }
  if (bridge.config.llmEndpoint !== undefined && on) record(bridge, "llm", await checkLlm(bridge));
}

/** Polls health every interval until the bridge stops. */
export async function poll(bridge, lifetime) {
  const signal = bridge.wakes.health;
  while (!lifetime.isStopped) {
    await checkAll(bridge);
    // Back online, resumed or restored: check now.
    if ((await lifetime.run(pause(bridge.config.healthIntervalMs, signal))) === undefined) return;
  }
}

/**
 * Sends a report now; the reporter's (with its `lifetime` and page `signal`) gives up when
 * the bridge stops or the browser goes offline.
 */
export async function sendReport(bridge, lifetime, signal) {
  const seq = bridge.nextReportSeq();
  const body = JSON.stringify(bridge.report());
  const token = bridge.config.token;
  const cancel = lifetime ? () => race(lifetime.stopped(), untilOffline(signal)) : () => null;
  const result = await run(bridge.core, { tool: REPORT_TOOL, cancel }, async ({ signal: abort }) => {
    // To the node current at each attempt: the report follows a failover.
    const url = `${bridge.backends.url()}/api/bridges/${bridge.config.bridgeId}/report`;
    const headers = { "content-type": "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let r;
    try {
      r = await fetch(url, { method: "PUT", body, headers, signal: abort });
    } catch (e) {
      throw failedAttempt({ kind: "network", message: messageOf(e) }, e);
    }
    if (!r.ok) throw failedAttempt(httpFailure(r));
  });
  if ("error" in result) throw new Error(result.ended.message);
  bridge.reportsSent++;
  return seq;
}

/**
 * Reports at every interval and soon after every change, until the bridge stops (a leading
 * tab also tells the others its state then, even with `report: false`).
 */
export async function report(bridge, lifetime) {
  const signal = bridge.wakes.reports;
  while (!lifetime.isStopped) {
    // Offline, reports wait (the dashboard sees this bridge go stale, which is the truth).
    if ((await lifetime.run(untilOnline(signal))) === undefined) return;
    // Tabs sharing a connection: the leader reports for them all, and tells them how it is.
    if (bridge.share.isLeader) await bridge.announce();
    if (bridge.config.report && !bridge.share.isFollower) {
      try {
        await sendReport(bridge, lifetime, signal);
      } catch (e) {
        warn("sending the state report failed", e.message);
      }
    }
    if (lifetime.isStopped) return;
    const r = await lifetime.run(race(bridge.changed.notified(), sleep(bridge.config.reportIntervalMs)));
    if (r === undefined) return;
    if (r.value.index === 0 && !(await lifetime.sleep(REPORT_COALESCE_MS))) return;
  }
}
