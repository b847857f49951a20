// The demo page: one bridge, its live state, its WebMCP tools, a traffic
// generator and (with `--demo`) the backend's fault switch.
import init, { Bridge, version } from "/pkg/bridge_wasm.js";
import { COMPONENT_ORDER, STATE_WORDS, badge, duration, setText } from "/ui.js";

/** What this page gives `new Bridge(...)`: quick health checks and reports, quick breaker recovery. */
const CONFIG = { healthIntervalMs: 2000, reportIntervalMs: 2000, breaker: { resetTimeoutMs: 5000 } };
const TRAFFIC_EVERY_MS = 300;
const TRAFFIC_MAX_IN_FLIGHT = 8;
const SOCKET_TARGETS = new Set(["evolution", "agents"]);
const SOCKET_MODES = new Set(["drop", "cut_after_accept"]);
/** Example inputs for the built-in tools (any other tool starts from `{}`). */
const EXAMPLES = {
  get_os_state: {},
  reliability_get_status: {},
  send_a2a_message: { to: "demo-page", message_type: "demo.hello", content: { text: "hello" } },
  discover_a2a_agents: {},
  a2a_broadcast: { message_type: "demo.hello", content: { text: "hello, everyone" } },
  trigger_evolution: { params: { generation: 1 }, timeout_ms: 3000 },
  send_llm_prompt: { prompt: "Say hello in five words." },
};

const $ = (sel) => document.querySelector(sel);
/** How registering this page's agent went (shown under the live state). */
let agentNote = "";
/** The bridge's clock (`performance.timeOrigin + performance.now()`), which stamps its breakers and checks. */
const pageNow = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ago = (at) => (at == null ? "never" : `${duration(pageNow() - at)} ago`);
const num = (v) => (v == null ? "–" : v < 10 ? v.toFixed(1) : String(Math.round(v)));
const ms = (v) => (v == null ? "–" : `${num(v)} ms`);

/**
 * Keeps `tbody`'s rows in step with `entries` ([key, value] pairs) without rebuilding
 * rows that stay (buttons keep working while the table refreshes every second).
 */
function syncRows(tbody, entries, columns, update) {
  const old = new Map([...tbody.rows].filter((tr) => !tr.classList.contains("empty")).map((tr) => [tr.dataset.key, tr]));
  let prev = null;
  for (const [key, value] of entries) {
    let tr = old.get(key);
    if (tr) old.delete(key);
    else {
      tr = document.createElement("tr");
      tr.dataset.key = key;
      for (let i = 0; i < columns; i++) tr.append(document.createElement("td"));
    }
    update(tr, value, [...tr.cells]);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (tr !== want) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of old.values()) tr.remove();
  if (entries.length === 0 && !tbody.querySelector(".empty")) {
    tbody.innerHTML = `<tr class="empty"><td colspan="${columns}">none yet</td></tr>`;
  } else if (entries.length) tbody.querySelector(".empty")?.remove();
}

// ---------------------------------------------------------------- usage snippet

function showSnippet() {
  const origin = location.origin;
  $("#snippet").textContent = `<script type="module">
  import init, { Bridge } from "${origin}/pkg/bridge_wasm.js";
  await init();
  const bridge = new Bridge({ backendUrl: "${origin}" });
  bridge.addEventListener("health", (change) => console.log(change));
  await bridge.start();
  bridge.registerWebMcpTools(); // tools for AI agents
  const response = await bridge.fetch("/api/data");
</script>`;
  $("#copy-snippet").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    try {
      await navigator.clipboard.writeText($("#snippet").textContent);
      button.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren($("#snippet"));
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
}

// ---------------------------------------------------------------- live state

function renderState(bridge) {
  let s;
  try {
    s = bridge.state();
  } catch (e) {
    setText($("#state-updated"), `state() failed: ${e.message}`);
    return;
  }
  const components = Object.entries(s.health.components).sort(
    ([a], [b]) => (COMPONENT_ORDER.indexOf(a) + 1 || 99) - (COMPONENT_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  badge($("#health-aggregate"), "health", s.health.status);
  syncRows($("#health-table tbody"), components, 5, (tr, c, td) => {
    tr.dataset.component = tr.dataset.key;
    setText(td[0], tr.dataset.key + (c.critical ? "" : " (optional)"));
    if (!td[1].firstChild) td[1].append(document.createElement("span"));
    badge(td[1].firstChild, "health", c.status);
    setText(td[2], c.lastCheck == null ? "not yet" : ago(c.lastCheck));
    setText(td[3], c.consecutiveFailures);
    setText(td[4], [c.detail, c.latencyMs != null ? ms(c.latencyMs) : null].filter(Boolean).join(" · ") || "–");
  });

  syncRows(
    $("#breaker-table tbody"),
    s.breakers.map((b) => [b.name, b]),
    7,
    (tr, b, td) => {
      tr.dataset.breaker = b.name;
      tr.dataset.state = b.state;
      setText(td[0], b.name);
      if (!td[1].firstChild) td[1].append(document.createElement("span"));
      let word = STATE_WORDS[b.state] ?? b.state;
      if (b.state === "open" && b.retryAt != null) word += ` · trial in ${duration(b.retryAt - pageNow())}`;
      badge(td[1].firstChild, "state", b.state, word);
      setText(td[2], `${b.consecutiveFailures} / ${b.config.failureThreshold}`);
      setText(td[3], b.trips);
      setText(td[4], b.rejections);
      setText(td[5], duration(pageNow() - b.since));
      if (!td[6].firstChild) {
        const reset = Object.assign(document.createElement("button"), { type: "button", textContent: "Reset" });
        const isolate = Object.assign(document.createElement("button"), { type: "button", textContent: "Isolate" });
        reset.className = isolate.className = "small";
        reset.title = "Close this breaker by hand";
        isolate.title = "Open this breaker by hand until reset";
        reset.addEventListener("click", () => {
          bridge.resetBreaker(tr.dataset.key);
          renderState(bridge);
        });
        isolate.addEventListener("click", () => {
          bridge.isolateBreaker(tr.dataset.key);
          renderState(bridge);
        });
        td[6].className = "actions";
        td[6].append(reset, isolate);
      }
      td[6].children[0].disabled = b.state === "closed";
      td[6].children[1].disabled = b.state === "forced_open";
    },
  );

  syncRows($("#socket-table tbody"), Object.entries(s.sockets), 6, (tr, k, td) => {
    setText(td[0], tr.dataset.key);
    if (!td[1].firstChild) td[1].append(document.createElement("span"));
    badge(td[1].firstChild, "socket", k.state);
    setText(td[2], k.reconnects + (k.resets ? ` (${k.resets} resets)` : ""));
    setText(td[3], `${k.outbox} / ${k.outboxLimit}`);
    setText(td[4], k.position ?? "–");
    setText(td[5], k.lastError ?? "–");
  });

  syncRows($("#retry-table tbody"), Object.entries(s.retry.operations), 7, (tr, o, td) => {
    setText(td[0], tr.dataset.key);
    setText(td[1], o.calls);
    setText(td[2], o.attempts);
    setText(td[3], `${(o.successRate * 100).toFixed(o.successRate === 1 ? 0 : 1)} %`);
    setText(td[4], o.retries);
    setText(td[5], duration(o.totalDelayMs));
    setText(td[6], `${num(o.latency.p50Ms)} / ${num(o.latency.p99Ms)} ms`);
    tr.title = o.lastError ? `last error: ${o.lastError}` : "";
  });

  const status = $("#bridge-status");
  badge(status, "health", s.started ? s.health.status : "stopped", s.started ? `running · ${s.health.status}` : "stopped");
  setText($("#state-updated"), `as of ${new Date(s.ts).toLocaleTimeString()}`);
  setText(
    $("#state-footer"),
    `Uptime ${duration(s.uptimeMs)} · ${s.reportsSent} reports sent · ${s.liveTimers} live timers · WebMCP ${
      s.webmcp?.available ? `available (${s.webmcp.tools.length} tools)` : "absent"
    }${agentNote ? ` · ${agentNote}` : ""}`,
  );
}

// ---------------------------------------------------------------- traffic generator

function setupTraffic(bridge) {
  let queued = false;
  const soon = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      renderState(bridge);
    });
  };
  const stats = { calls: 0, ok: 0, failed: 0, refused: 0, inflight: 0 };
  const strip = $("#traffic-strip");
  const button = $("#traffic-toggle");
  let timer = null;

  const show = () => {
    for (const dd of $("#traffic-stats").querySelectorAll("dd")) setText(dd, stats[dd.dataset.k]);
  };
  const record = (kind, text) => {
    stats[kind] += 1;
    const mark = document.createElement("span");
    mark.className = `mark ${kind}`;
    mark.textContent = { ok: "✓", failed: "✕", refused: "⊘" }[kind];
    mark.title = text;
    strip.append(mark);
    while (strip.childElementCount > 60) strip.firstElementChild.remove();
    setText($("#traffic-last"), `Last: ${text}`);
    show();
  };
  const tick = () => {
    if (stats.inflight >= TRAFFIC_MAX_IN_FLIGHT) return; // a hang fault: do not pile up requests
    stats.calls += 1;
    stats.inflight += 1;
    show();
    bridge
      .fetch("/api/demo/echo", undefined, { tool: "fetch" })
      .then(async (r) => {
        if (!r.ok) return record("failed", `HTTP ${r.status}`);
        const body = await r.json();
        record("ok", `echo #${body.n} answered`);
      })
      .catch((e) => record(e.code === "circuit_open" ? "refused" : "failed", `${e.code ?? "error"}: ${e.message}`))
      .finally(() => {
        stats.inflight -= 1;
        show();
        soon(); // the breaker may have changed: show it now rather than at the next tick
      });
  };
  button.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
    } else {
      tick();
      timer = setInterval(tick, TRAFFIC_EVERY_MS);
    }
    button.setAttribute("aria-pressed", String(timer !== null));
    button.textContent = timer ? "Stop traffic" : "Start traffic";
  });
}

// ---------------------------------------------------------------- fault switch

async function setupFaults() {
  let status;
  try {
    const r = await fetch("/status", { cache: "no-store" });
    status = await r.json();
  } catch {
    return;
  }
  if (!status.demo) {
    // Its endpoint exists only in demo mode: say so rather than show a wall of 404s.
    $("#traffic-toggle").disabled = true;
    setText(
      $("#traffic-last"),
      "The traffic generator calls /api/demo/echo, which the backend serves only with --demo (cargo xtask run starts it so).",
    );
    return;
  }
  $("#faults").hidden = false;
  const target = $("#fault-target");
  const mode = $("#fault-mode");
  const result = $("#fault-result");
  const list = $("#fault-list");
  let polling = null;

  const syncModes = () => {
    const socket = SOCKET_TARGETS.has(target.value);
    for (const opt of mode.options) opt.disabled = SOCKET_MODES.has(opt.value) && !socket;
    if (mode.selectedOptions[0]?.disabled) mode.value = "fail";
    $("#fault-status-label").hidden = mode.value !== "status";
    $("#fault-duration").disabled = mode.value === "drop";
  };
  target.addEventListener("change", syncModes);
  mode.addEventListener("change", syncModes);
  syncModes();

  const showList = (active) => {
    list.replaceChildren(
      ...(active.length
        ? active.map((f) => {
            const li = document.createElement("li");
            li.dataset.target = f.target;
            li.textContent = `${f.target}: ${f.mode}${f.mode === "status" ? ` ${f.status}` : ""}, ends in ${duration(f.endsInMs)}${
              f.remaining != null ? ` or after ${f.remaining} requests` : ""
            }`;
            return li;
          })
        : [Object.assign(document.createElement("li"), { className: "none", textContent: "none" })]),
    );
    // Poll while something is active; otherwise now and then (another tab may set faults).
    clearTimeout(polling);
    polling = setTimeout(refresh, active.length ? 1000 : 5000);
  };
  const call = async (method, body) => {
    const r = await fetch("/api/demo/faults", {
      method,
      headers: body ? { "content-type": "application/json" } : undefined,
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(json.message ?? `HTTP ${r.status}`);
    return json;
  };
  async function refresh() {
    try {
      showList((await call("GET")).active ?? []);
    } catch (e) {
      setText(result, `Could not list faults: ${e.message}`);
      clearTimeout(polling);
      polling = setTimeout(refresh, 5000);
    }
  }

  $("#fault-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { target: target.value, mode: mode.value };
    if (mode.value === "status") body.status = Number($("#fault-status").value);
    if (mode.value !== "drop") body.duration_ms = Number($("#fault-duration").value) || 6000;
    result.dataset.status = "pending";
    try {
      const r = await call("POST", body);
      result.dataset.status = "ok";
      setText(
        result,
        mode.value === "drop"
          ? `Dropped ${r.dropped} ${target.value} connection(s) at ${new Date().toLocaleTimeString()}.`
          : `Applied at ${new Date().toLocaleTimeString()}: ${body.target} ${body.mode} for ${duration(body.duration_ms)}.`,
      );
      showList(r.active ?? []);
    } catch (e) {
      result.dataset.status = "error";
      setText(result, `Not applied: ${e.message}`);
    }
  });
  $("#fault-clear").addEventListener("click", async () => {
    try {
      showList((await call("DELETE")).active ?? []);
      result.dataset.status = "ok";
      setText(result, `Cleared at ${new Date().toLocaleTimeString()}.`);
    } catch (e) {
      result.dataset.status = "error";
      setText(result, `Not cleared: ${e.message}`);
    }
  });
  refresh();
}

// ---------------------------------------------------------------- WebMCP tools

async function setupTools(names) {
  const note = $("#webmcp-note");
  const mc = document.modelContext;
  if (!mc || typeof mc.executeTool !== "function" || names.length === 0) {
    note.dataset.webmcp = "absent";
    note.innerHTML =
      "WebMCP is not available in this browser: <code>document.modelContext</code> is undefined, so this page " +
      "registered no tools (everything else works). Chromium offers it with " +
      "<code>--enable-features=WebMCP</code> on a secure origin (https, or http://127.0.0.1).";
    return;
  }
  note.dataset.webmcp = "available";
  // registerTool resolves asynchronously: wait until every tool is listed.
  let descriptors = [];
  for (let i = 0; i < 30; i++) {
    descriptors = await mc.getTools();
    if (names.every((n) => descriptors.some((d) => d.name === n))) break;
    await sleep(100);
  }
  const byName = new Map(descriptors.filter((d) => names.includes(d.name)).map((d) => [d.name, d]));
  note.innerHTML = `The bridge registered ${byName.size} tools on <code>document.modelContext</code>. Pick one, edit its
    input and run it as an agent would (<code>executeTool</code>):`;
  const chips = document.createElement("p");
  chips.className = "tool-chips";
  for (const name of byName.keys()) {
    const chip = Object.assign(document.createElement("button"), { type: "button", className: "chip", textContent: name });
    chip.addEventListener("click", () => {
      $("#tool-select").value = name;
      $("#tool-select").dispatchEvent(new Event("change"));
      $("#tool-input").focus();
    });
    chips.append(chip);
  }
  note.after(chips);
  const box = $("#tools");
  box.innerHTML = `
    <div class="tool-form">
      <label>Tool <select id="tool-select"></select></label>
      <p id="tool-description" class="hint"></p>
      <label>Input (JSON) <textarea id="tool-input" rows="4" spellcheck="false"></textarea></label>
      <details><summary>Input schema</summary><pre id="tool-schema" class="code small"></pre></details>
      <div class="buttons"><button type="button" id="tool-run">Run</button><span id="tool-timing" class="hint"></span></div>
      <pre id="tool-result" class="code result" data-status="idle" aria-live="polite">No result yet.</pre>
    </div>`;
  const select = $("#tool-select");
  for (const name of byName.keys()) select.append(new Option(name, name));
  const pick = () => {
    const d = byName.get(select.value);
    $("#tool-description").textContent = d?.description ?? "";
    $("#tool-input").value = JSON.stringify(EXAMPLES[select.value] ?? {}, null, 2);
    let schema = d?.inputSchema ?? {};
    if (typeof schema === "string") {
      try {
        schema = JSON.parse(schema);
      } catch {
        /* shown as is */
      }
    }
    $("#tool-schema").textContent = typeof schema === "string" ? schema : JSON.stringify(schema, null, 2);
  };
  select.addEventListener("change", pick);
  pick();
  $("#tool-run").addEventListener("click", async () => {
    const out = $("#tool-result");
    const name = select.value;
    let input;
    try {
      input = JSON.parse($("#tool-input").value || "{}");
    } catch (e) {
      out.dataset.status = "error";
      out.textContent = `The input is not JSON: ${e.message}`;
      return;
    }
    out.dataset.status = "running";
    out.dataset.tool = name;
    out.textContent = `Running ${name}…`;
    const started = performance.now();
    try {
      const raw = await mc.executeTool(byName.get(name), input);
      const result = typeof raw === "string" ? JSON.parse(raw) : raw;
      const texts = (result?.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
      const pretty = texts.map((t) => {
        try {
          return JSON.stringify(JSON.parse(t), null, 2);
        } catch {
          return t;
        }
      });
      out.dataset.status = result?.isError ? "error" : "ok";
      out.textContent = (result?.isError ? "Tool error: " : "") + (pretty.join("\n") || JSON.stringify(result, null, 2));
    } catch (e) {
      out.dataset.status = "error";
      out.textContent = `executeTool failed: ${e.message ?? e}`;
    }
    $("#tool-timing").textContent = `${name} took ${ms(performance.now() - started)}`;
  });
}

// ---------------------------------------------------------------- start

async function main() {
  showSnippet();
  setupFaults();
  try {
    await init();
  } catch (e) {
    badge($("#bridge-status"), "health", "unhealthy", "the bridge module could not be loaded");
    setText($("#bridge-version"), "unavailable");
    throw e;
  }
  setText($("#bridge-version"), version());
  const bridge = new Bridge(CONFIG);
  window.demoBridge = bridge; // for the console: try demoBridge.state()
  setText($("#bridge-id"), bridge.id);
  document.body.dataset.bridgeId = bridge.id;
  bridge.addEventListener("health", () => renderState(bridge));
  await bridge.start();
  // A per-page agent name: two demo tabs must not take each other's name over.
  const agent = `demo-page-${bridge.id.replace(/[^A-Za-z0-9_-]/g, "").slice(-6)}`;
  EXAMPLES.send_a2a_message.to = agent;
  agentNote = `agent ${agent}: registering…`;
  bridge.registerAgent(agent, ["demo"]).then(
    () => (agentNote = `agent ${agent} registered`),
    (e) => (agentNote = `agent ${agent} not registered: ${e.code ?? "error"}: ${e.message}`),
  );
  // Only where WebMCP exists: elsewhere the bridge would (rightly) report its optional
  // webmcp component as degraded, which is noise on a demo opened in an ordinary browser.
  const tools = document.modelContext ? bridge.registerWebMcpTools() : [];
  document.body.dataset.started = "true";
  renderState(bridge);
  setInterval(() => renderState(bridge), 1000);
  setupTraffic(bridge);
  await setupTools(tools);
}

main();
