// The operator dashboard: every bridge's health, breakers and retry metrics, the
// cluster's nodes, and the backend's own status, live from GET /api/dashboard/stream
// (Server-Sent Events). With few bridges every one gets a card; with more, the list
// (bridge-list.js) leads and a card is made when a row is chosen.
//
// Test hooks: #conn[data-conn], body[data-snapshots] (snapshots received), main[data-layout] (cards | list),
// article[data-bridge-id][data-health][data-stale][data-history-points], .breaker[data-breaker][data-state]
// .state-word, .op[data-tool]; the list's and the cluster card's in their modules.

import { COMPONENT_ORDER, STATE_WORDS, badge, count, duration, el, setData, setText, syncKeyed } from "/ui.js";
import { PAGE_ROWS, filtering, renderBridgeList, setFilter, setupBridgeList } from "./bridge-list.js";
import { renderCluster } from "./cluster.js";
import { compareNames, stateOf } from "./triage.js";

const STREAM_URL = "/api/dashboard/stream";
const HISTORY_POINTS = 600; // what the backend keeps per bridge
const WATCHDOG_MS = 5000; // status arrives every second: silence this long means a dead stream
const TIMELINE_MS = 2 * 60_000; // breaker timelines show the last 2 minutes
const RATE_POINTS = 300; // backend rate history kept on the page (5 min)
const FULL_CARDS = 6; // up to this many bridges, each has its card; past it, cards on demand
const OVERVIEW_MS = 250; // the list is re-sorted at most this often: reports arrive constantly
const REASONS = {
  consecutive_failures: "consecutive failures",
  failure_rate: "failure rate",
  reset_timeout: "reset timeout elapsed",
  trials_succeeded: "trial calls succeeded",
  trial_failed: "a trial call failed",
  manual_reset: "reset by hand",
  manual_isolate: "isolated by hand",
};
const THEME = getComputedStyle(document.documentElement);
const color = (name) => THEME.getPropertyValue(name).trim();

// ---------------------------------------------------------------- small helpers

const $ = (sel, root = document) => root.querySelector(sel);

const latencyNum = (v) => (v == null ? "–" : v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US"));
const latency = (v) => (v == null ? "–" : `${latencyNum(v)} ms`);
const perSecond = (v) => (v == null ? "–" : v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));
const percent = (r) => (r == null ? "–" : r === 1 ? "100 %" : `${(r * 100).toFixed(1)} %`);
const bytes = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : `${(b / (1 << 20)).toFixed(1)} MiB`);
const clock = (unixMs) => new Date(unixMs).toLocaleTimeString([], { hour12: false });

// ---------------------------------------------------------------- state

const model = {
  /** id → {view, history, card, charts, chartsDirty} */
  bridges: new Map(),
  /** Bridges whose card was asked for (a row chosen); with few bridges every one has a card anyway. */
  opened: new Set(),
  /** node id → bridges of it that are not healthy (for the cluster card). */
  attention: new Map(),
  staleAfterMs: 30_000,
  /** serverClock ≈ Date.now() + offset (from the reports' receive times). */
  offset: 0,
  status: null,
  prevStatus: null,
  rates: null,
  rateHistory: { t: [], fin: [], fout: [], ev: [] },
  lastEventAt: 0,
};

const serverNow = () => Date.now() + model.offset;

/** A time on the bridge's page clock (breaker transitions, checks), on the server's clock. */
const onServerClock = (b, pageMs) => pageMs - b.view.report.ts + b.view.lastReportUnixMs;

function isStale(b) {
  return serverNow() - b.view.lastReportUnixMs >= model.staleAfterMs;
}

// ---------------------------------------------------------------- the stream

let source = null;
let retryTimer = null;
let retryDelay = 1000;

function setConn(state, word, detail = "") {
  const c = $("#conn");
  setData(c, "conn", state);
  setText($(".conn-word", c), word);
  setText($(".conn-detail", c), detail);
}

function connect() {
  clearTimeout(retryTimer);
  source?.close();
  setConn("connecting", "connecting…");
  source = new EventSource(STREAM_URL);
  const on = (name, fn) =>
    source.addEventListener(name, (ev) => {
      model.lastEventAt = Date.now();
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      fn(data);
    });
  source.addEventListener("open", () => {
    retryDelay = 1000;
    model.lastEventAt = Date.now();
    setConn("live", "live");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error): retry ourselves, backing off.
      setConn("down", "disconnected", `retrying in ${Math.round(retryDelay / 1000)} s`);
      retryTimer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15_000);
    } else {
      setConn("connecting", "reconnecting…");
    }
  });
  on("snapshot", onSnapshot);
  on("report", onReport);
  on("gone", (d) => removeBridge(d.bridgeId));
  on("status", onStatus);
}

function onSnapshot(d) {
  model.staleAfterMs = d.staleAfterMs ?? model.staleAfterMs;
  const now = Date.now();
  const seen = new Set();
  // Each bridge gives a lower bound of the server's clock now; the largest is the best.
  const offsets = (d.bridges ?? []).map((v) => v.lastReportUnixMs + v.lastSeenMsAgo - now);
  if (offsets.length) model.offset = Math.max(...offsets);
  for (const view of d.bridges ?? []) {
    seen.add(view.bridgeId);
    const b = upsertBridge(view);
    b.history = (d.history?.[view.bridgeId] ?? []).slice(-HISTORY_POINTS);
    b.chartsDirty = true;
  }
  for (const id of [...model.bridges.keys()]) if (!seen.has(id)) removeBridge(id);
  if (d.status) onStatus(d.status);
  document.body.dataset.snapshots = Number(document.body.dataset.snapshots ?? 0) + 1;
  setConn("live", "live", "caught up");
  renderOverview();
}

function onReport(d) {
  const view = d.bridge;
  model.offset = view.lastReportUnixMs - Date.now();
  const b = upsertBridge(view);
  if (d.point) {
    b.history.push(d.point);
    if (b.history.length > HISTORY_POINTS) b.history.splice(0, b.history.length - HISTORY_POINTS);
    b.chartsDirty = true;
  }
  scheduleOverview();
}

function upsertBridge(view) {
  let b = model.bridges.get(view.bridgeId);
  if (!b) {
    b = { view, history: [], card: null, charts: new Map() };
    model.bridges.set(view.bridgeId, b);
  }
  b.view = view;
  if (b.card || wantsCard(b)) scheduleRender(b);
  return b;
}

function removeBridge(id) {
  const b = model.bridges.get(id);
  if (!b) return;
  dropCard(b);
  model.bridges.delete(id);
  model.opened.delete(id);
  scheduleOverview();
}

// ---------------------------------------------------------------- backend status

function onStatus(s) {
  const prev = model.status;
  model.status = s;
  const c = s.counters ?? {};
  if (prev && s.uptimeMs > prev.uptimeMs) {
    const dt = (s.uptimeMs - prev.uptimeMs) / 1000;
    const p = prev.counters ?? {};
    const rate = (k) => ((c[k] ?? 0) >= (p[k] ?? 0) ? ((c[k] ?? 0) - (p[k] ?? 0)) / dt : null);
    model.rates = { fin: rate("framesReceived"), fout: rate("framesSent"), ev: rate("eventsPublished"), err: rate("errors") };
    const h = model.rateHistory;
    h.t.push(Date.now() / 1000);
    h.fin.push(model.rates.fin);
    h.fout.push(model.rates.fout);
    h.ev.push(model.rates.ev);
    if (h.t.length > RATE_POINTS) for (const k of Object.keys(h)) h[k].shift();
  } else if (prev && s.uptimeMs < prev.uptimeMs) {
    model.rates = null; // the backend restarted: start over
  }
  renderStatus();
}

function renderStatus() {
  const s = model.status;
  if (!s) return;
  const r = model.rates;
  const set = (k, v) => setText($(`[data-s="${k}"]`), v);
  const node = s.node?.id ? `node ${s.node.id} · ` : "";
  setText($("#backend-version"), `${node}v${s.version} · up ${duration(s.uptimeMs)}${s.demo ? " · demo mode" : ""}`);
  const conns = s.connections ?? {};
  set("connections", `${count(conns.total)} / ${count(conns.max)}`);
  set("connections-detail", `evolution ${count(conns.evolution)} · agents ${count(conns.agents)}`);
  set("frames", r ? `${perSecond(r.fin)} / ${perSecond(r.fout)}` : "…");
  set("events", r ? perSecond(r.ev) : "…");
  set("events-detail", `per second · ${count(s.counters?.eventsPublished)} total`);
  set("errors", r ? perSecond(r.err) : "…");
  set("errors-detail", `per second · ${count(s.counters?.errors)} total`);
  const errStat = $(`[data-s="errors"]`).parentElement;
  errStat.classList.toggle("bad", !!r && r.err > 0);
  set("rss", s.rssBytes ? bytes(s.rssBytes) : "–");
  set("uptime", `up ${duration(s.uptimeMs)}`);
  set("cpu", s.cpuPercent == null ? "–" : `${s.cpuPercent.toFixed(1)} %`);
  set("cpu-detail", s.cpuSeconds == null ? "" : `${s.cpuSeconds.toFixed(1)} s used`);
  const a = s.agents ?? {};
  set("agents", `${count(a.online)} online`);
  set("agents-detail", `${count(a.known)} known · ${count(a.queuedMessages)} queued`);
  const e = s.evolution ?? {};
  const handlers = Object.entries(e.handlers ?? {}).map(([k, n]) => `${k}×${n}`);
  set("evolution", `head ${count(e.head)}`);
  set(
    "evolution-detail",
    `${count(e.historyEvents)} kept (${bytes(e.historyBytes ?? 0)}) · ${count(e.pendingRequests)} pending · ${
      handlers.length ? `handlers ${handlers.join(", ")}` : "no handler"
    }`,
  );
  const llm = s.llm ?? {};
  const llmState = $(`[data-s="llm"]`);
  if (llm.breaker) badge(llmState, "state", llm.breaker, STATE_WORDS[llm.breaker] ?? llm.breaker);
  let upstream = llm.upstream ?? "";
  try {
    upstream = new URL(upstream).host;
  } catch {
    /* not a URL: shown as is */
  }
  set("llm-detail", upstream ? `upstream ${upstream}` : "");
  $(`[data-s="llm-detail"]`).title = llm.upstream ?? "";
  renderStore(s.store);
  renderClusterCard();
  updateRatesChart();
}

function renderClusterCard() {
  if (model.status) renderCluster(model.status, model.attention, (node) => setFilter(`node:${node}`));
}

/** The store tile: memory, or NATS with its connection state and the stream's epoch; red with the reason when down. */
function renderStore(store) {
  if (!store) return;
  const value = $(`[data-s="store"]`);
  const detail = $(`[data-s="store-detail"]`);
  const d = store.details ?? {};
  setText(value, store.kind === "nats" ? `nats · ${d.state ?? "?"}` : store.kind);
  value.parentElement.classList.toggle("bad", !store.ready);
  if (store.problem) {
    setText(detail, store.problem);
  } else if (store.kind === "nats") {
    setText(detail, `stream ${d.stream} · epoch ${d.epoch ?? "?"} · seq ${count(d.tailedSeq)}`);
  } else {
    setText(detail, "in this process; a restart starts a new epoch");
  }
  detail.title = d.url ?? "";
}

// ---------------------------------------------------------------- charts (uPlot)

/** A sparkline in `box`: no axes, no legend; series `[{stroke, fill?}]`. */
function sparkline(box, series, opts = {}) {
  if (!window.uPlot) return null;
  const width = Math.max(80, Math.floor(box.clientWidth || 200));
  const plot = new window.uPlot(
    {
      width,
      height: opts.height ?? 44,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, opts.minMax ?? 1) * 1.1] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, ...series.map((s) => ({ stroke: s.stroke, fill: s.fill, width: 1.5, points: { show: false }, spanGaps: false }))],
    },
    [[], ...series.map(() => [])],
    box,
  );
  return plot;
}

/** Every sparkline follows its box's width (the window, or a card, resized). */
const resizer = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const plot = entry.target.plot;
    const w = Math.floor(entry.contentRect.width);
    if (plot && w > 0 && Math.abs(plot.width - w) > 1) plot.setSize({ width: w, height: plot.height });
  }
});

function attachChart(box, plot) {
  if (!plot) return;
  box.plot = plot;
  resizer.observe(box);
}

let ratesPlot = null;
function updateRatesChart() {
  const box = $("#rates-chart");
  if (!ratesPlot) {
    ratesPlot = sparkline(box, [
      { stroke: color("--c1"), fill: color("--c1-fill") },
      { stroke: color("--c2") },
      { stroke: color("--c3") },
    ], { height: 36 });
    attachChart(box, ratesPlot);
  }
  const h = model.rateHistory;
  ratesPlot?.setData([h.t.slice(), h.fin.slice(), h.fout.slice(), h.ev.slice()]);
  const peak = Math.max(0, ...h.fin, ...h.fout, ...h.ev);
  setText($("#rates-peak"), h.t.length > 1 ? `peak ${perSecond(peak)}/s over the last ${duration((h.t.at(-1) - h.t[0]) * 1000)}` : "");
}

/**
 * Rates from a bridge's cumulative counters: x, ok/s, failed/s, p50, p99. Reports come as
 * often as things change, so points closer than `step` (about 1/120 of the span, at least
 * 1 s) are merged: rates over a few hundred ms would only be noise.
 */
function opSeries(history, tool) {
  const out = { x: [], ok: [], failed: [], p50: [], p99: [] };
  const first = history.find((pt) => pt.ops?.[tool]);
  if (!first) return out;
  const step = Math.max(1, (history.at(-1).ts - first.ts) / 1000 / 120);
  let prev = null;
  for (const pt of history) {
    const v = pt.ops?.[tool];
    if (!v) continue;
    const t = pt.ts / 1000;
    if (!prev) {
      prev = { t, v };
      continue;
    }
    if (t - prev.t < step) continue;
    const dt = t - prev.t;
    // Counters start over when the page reloads (same bridge id, new instance): count from zero then.
    const dCalls = v[0] >= prev.v[0] ? v[0] - prev.v[0] : v[0];
    const dOk = v[1] >= prev.v[1] ? v[1] - prev.v[1] : v[1];
    out.x.push(t);
    out.ok.push(dOk / dt);
    out.failed.push(Math.max(0, dCalls - dOk) / dt);
    out.p50.push(v[4]);
    out.p99.push(v[5]);
    prev = { t, v };
  }
  return out;
}

// ---------------------------------------------------------------- rendering

const pending = new Set();
let frame = 0;
function scheduleRender(b) {
  pending.add(b);
  if (!frame) frame = requestAnimationFrame(flush);
}
function flush() {
  frame = 0;
  for (const b of pending) if (model.bridges.get(b.view.bridgeId) === b) renderBridge(b);
  pending.clear();
}

// The list is sorted over every bridge: at most every OVERVIEW_MS, however fast reports come.
let overviewTimer = 0;
let overviewAt = 0;
function scheduleOverview() {
  if (overviewTimer) return;
  overviewTimer = setTimeout(renderOverview, Math.max(0, overviewAt + OVERVIEW_MS - performance.now()));
}

/** Few bridges: a card each. More: the list leads and cards are made on demand. */
const layout = () => (model.bridges.size <= FULL_CARDS ? "cards" : "list");
const wantsCard = (b) => layout() === "cards" || model.opened.has(b.view.bridgeId);

function renderOverview() {
  clearTimeout(overviewTimer);
  overviewTimer = 0;
  overviewAt = performance.now();
  const mode = layout();
  syncCards();
  const rows = bridgeRows(mode);
  setData($("main"), "layout", mode);
  $("#bridge-tools").hidden = mode === "cards" && !filtering();
  const nodes = new Map((model.status?.cluster?.nodes ?? []).map((n) => [n.id, n]));
  const matched = renderBridgeList(rows, nodes);
  renderSummary(rows, mode, matched);
  renderClusterCard();
  $("#no-bridges").hidden = rows.length > 0;
}

/** Cards follow the layout: made when wanted (next frame), dropped when not. */
function syncCards() {
  for (const b of model.bridges.values()) {
    if (wantsCard(b) && !b.card) scheduleRender(b);
    else if (!wantsCard(b) && b.card) dropCard(b);
  }
}

/** One row per bridge for the list; counts each node's bridges that are not healthy on the way. */
function bridgeRows(mode) {
  const now = serverNow();
  model.attention.clear();
  return [...model.bridges.values()].map((b) => {
    const v = b.view;
    const health = v.report?.health?.status ?? "unknown";
    const state = stateOf(health, isStale(b));
    if (state !== "healthy") model.attention.set(v.node, (model.attention.get(v.node) ?? 0) + 1);
    return { id: v.bridgeId, node: v.node, state, health, report: v.report, silentMs: now - v.lastReportUnixMs, open: mode === "list" && !!b.card };
  });
}

/** The panel head: counts per state with few bridges; with many (the counts are buttons then), what the list shows. */
function renderSummary(rows, mode, matched) {
  const known = `${count(rows.length)} known`;
  if (!rows.length) return setText($("#overview-summary"), "");
  if (mode === "list") {
    const shown = Math.min(matched, PAGE_ROWS);
    return setText($("#overview-summary"), `${known} · problems first · showing ${count(shown)}${matched > shown || matched < rows.length ? ` of ${count(matched)} matching` : ""}`);
  }
  const n = {};
  for (const r of rows) n[r.state] = (n[r.state] ?? 0) + 1;
  const parts = ["unhealthy", "degraded", "stale", "unknown", "healthy"].filter((st) => n[st]).map((st) => `${n[st]} ${st}`);
  setText($("#overview-summary"), `${known}: ${parts.join(" · ")}`);
}

/** Shows bridge `id`'s card (making it if needed) and moves there. */
function openBridge(id) {
  const b = model.bridges.get(id);
  if (!b) return;
  if (layout() === "list") model.opened.add(id);
  renderBridge(b);
  const fold = $(".fold", b.card);
  if (!fold.open) fold.open = true;
  b.card.scrollIntoView({ block: "start" });
  $(".bridge-head", b.card).focus({ preventScroll: true });
  renderOverview();
}

/** Drops a card asked for with many bridges, and goes back to its row. */
function closeBridge(id) {
  const b = model.bridges.get(id);
  model.opened.delete(id);
  if (b && !wantsCard(b)) dropCard(b);
  renderOverview();
  $(`#bridge-list li[data-row-id="${CSS.escape(id)}"] button`)?.focus();
}

/** Removes a bridge's card and its charts; the bridge stays in the model (and the list). */
function dropCard(b) {
  if (!b.card) return;
  for (const c of b.charts.values()) c.destroy();
  b.charts.clear();
  b.card.querySelectorAll(".spark").forEach((box) => resizer.unobserve(box));
  b.card.remove();
  b.card = null;
  b.chartsDirty = true;
}

function createCard(id) {
  const close = el("button.close-card", { type: "button", title: "Close these details", textContent: "close ✕" });
  close.addEventListener("click", (e) => {
    e.preventDefault(); // inside the summary: close, do not fold
    closeBridge(id);
  });
  const fold = el(
    "details.fold",
    { open: true },
    el(
      "summary.bridge-head",
      { title: "Fold or unfold this bridge" },
      el("h2", null, el("code", { textContent: id })),
      el("span.health"),
      el("span.stale-badge.badge", { dataset: { health: "stale" }, hidden: true, textContent: "stale" }),
      el("span.node.muted"),
      el("span.meta.muted"),
      close,
    ),
    el(
      "div.bridge-body",
      null,
      el("p.page.muted"),
      el("h3", null, "Health ", el("span.muted.small.health-span")),
      el("div.timeline.health-strip"),
      el("div.timeline-axis.muted", null, el("span.health-from"), el("span", { textContent: "now" })),
      el("h3", { textContent: "Components" }),
      el("div.components"),
      el("h3", { textContent: "Circuit breakers" }),
      el("div.tiles.breakers"),
      el(
        "h3",
        null,
        "Retry metrics per tool ",
        el("span.muted.small", { textContent: "sparklines over the last reports: ok/s and failed/s · latency p50 and p99" }),
      ),
      el("div.tiles.ops"),
    ),
  );
  fold.addEventListener("toggle", () => {
    const b = model.bridges.get(id);
    if (!b) return;
    b.chartsDirty = true;
    scheduleRender(b);
  });
  const card = el("article.bridge", { id: `bridge-${id}`, dataset: { bridgeId: id } }, fold);
  $("#bridges").append(card);
  return card;
}

function renderBridge(b) {
  if (!wantsCard(b)) return dropCard(b);
  const id = b.view.bridgeId;
  const stale = isStale(b);
  if (!b.card) b.card = createCard(id);
  const card = b.card;
  if (card.dataset.stale !== String(stale)) placeCard(card, id, stale);
  const r = b.view.report ?? {};
  const health = r.health?.status ?? "unknown";
  setData(card, "health", health);
  setData(card, "stale", stale);
  setData(card, "historyPoints", b.history.length);
  badge($(".bridge-head .health", card), "health", health, stale ? `${health} (last known)` : health);
  const staleBadge = $(".stale-badge", card);
  staleBadge.hidden = !stale;
  setText(staleBadge, `stale · no report for ${duration(serverNow() - b.view.lastReportUnixMs)}`);
  setText($(".bridge-head .node", card), b.view.node ? `node ${b.view.node}` : "");
  setText(
    $(".bridge-head .meta", card),
    `last report ${duration(serverNow() - b.view.lastReportUnixMs)} ago · ${count(b.view.reports)} reports · v${r.version ?? "?"} · up ${duration(
      r.uptimeMs + (stale ? 0 : serverNow() - b.view.lastReportUnixMs),
    )}`,
  );
  setData(card, "open", $(".fold", card).open);
  if (!$(".fold", card).open) return; // folded: only the head is kept current
  // Tabs sharing one connection: the leading tab reports for all of them.
  const tabs = r.tabs && r.tabs.role !== "alone" ? ` · ${count(r.tabs.count)} tab${r.tabs.count === 1 ? "" : "s"} (this one ${r.tabs.role})` : "";
  setText($(".page", card), `${r.page ? `page ${r.page} · ` : ""}instance ${r.instance ?? "?"}${tabs}`);
  renderHealthStrip(b);
  renderComponents(b, stale);
  renderBreakers(b, stale);
  renderOps(b);
}

/** Cards in natural id order, live bridges first, stale ones after. */
function placeCard(card, id, stale) {
  const comesAfter = (c) => (c.dataset.stale === "true") - stale || compareNames(c.dataset.bridgeId, id);
  const next = [...$("#bridges").children].find((c) => c !== card && comesAfter(c) > 0);
  $("#bridges").insertBefore(card, next ?? null);
}

/** The bridge's aggregate health across its history points (one run of equal health per segment). */
function renderHealthStrip(b) {
  const pts = b.history;
  const box = $(".health-strip", b.card);
  const end = Math.max(serverNow(), pts.at(-1)?.ts ?? 0);
  const start = pts[0]?.ts ?? end;
  const runs = [];
  for (let i = 0; i < pts.length; i++) {
    const until = i + 1 < pts.length ? pts[i + 1].ts : isStale(b) ? pts[i].ts : end;
    const last = runs.at(-1);
    if (last && last[0] === pts[i].health) last[2] = until;
    else runs.push([pts[i].health, pts[i].ts, until]);
  }
  setText($(".health-from", b.card), pts.length ? `−${duration(end - start)}` : "");
  setText($(".health-span", b.card), pts.length ? `over the last ${pts.length} reports` : "");
  const span = Math.max(1, end - start);
  const key = runs.map((r) => `${r[0]}:${Math.round(((r[2] - r[1]) / span) * 400)}`).join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (runs.length && runs.at(-1)[2] < end) runs.push(["none", runs.at(-1)[2], end]); // silent since
  box.replaceChildren(
    ...runs
      .filter((r) => r[2] > r[1])
      .map(([h, f, t]) => el("span.seg", { dataset: { health: h }, title: h === "none" ? `no report for ${duration(t - f)}` : `${h} for ${duration(t - f)} (from ${clock(f)})`, style: `flex-grow:${t - f}` })),
  );
}

function renderComponents(b, stale) {
  const r = b.view.report;
  const comps = Object.entries(r.health?.components ?? {}).sort(
    ([x], [y]) => (COMPONENT_ORDER.indexOf(x) + 1 || 99) - (COMPONENT_ORDER.indexOf(y) + 1 || 99) || x.localeCompare(y),
  );
  const sockets = r.sockets ?? {};
  const socketOf = { evolutionSocket: sockets.evolution, agentSocket: sockets.agents };
  syncKeyed(
    $(".components", b.card),
    comps,
    "component",
    (name) =>
      el(
        "div.comp",
        null,
        el("div.comp-head", null, el("code", { textContent: name }), el("span.status")),
        el("div.comp-meta.muted"),
        el("div.comp-detail.muted"),
      ),
    (node, c) => {
      const name = node.dataset.component;
      badge($(".status", node), "health", c.status);
      const checked = c.lastCheck == null ? "not checked yet" : `checked ${duration(serverNow() - onServerClock(b, c.lastCheck))} ago`;
      const fails = `${c.consecutiveFailures} failure${c.consecutiveFailures === 1 ? "" : "s"} in a row`;
      setText($(".comp-meta", node), `${checked} · ${fails}${c.critical ? "" : " · optional"}${stale ? " (as of last report)" : ""}`);
      const sock = socketOf[name];
      const detail = [
        c.detail,
        c.latencyMs != null ? `latency ${latency(c.latencyMs)}` : null,
        sock ? `socket ${sock.state}, ${sock.reconnects} reconnects, outbox ${sock.outbox}/${sock.outboxLimit}${sock.position ? `, at ${sock.position}` : ""}` : null,
        sock?.lastError && sock.state !== "open" ? `last error: ${sock.lastError}` : null,
      ].filter(Boolean);
      setText($(".comp-detail", node), detail.join(" · "));
      node.classList.toggle("failing", c.consecutiveFailures > 0);
    },
  );
}

function breakerTile() {
  return el(
    "div.tile.breaker",
    null,
    el("div.tile-head", null, el("code.name"), el("span.state", null, el("span.state-word"))),
    el(
      "dl.nums",
      null,
      el("div", null, el("dt", { textContent: "failures", title: "consecutive failures / failures that open it" }), el("dd.fails")),
      el("div", null, el("dt", { textContent: "trips" }), el("dd.trips")),
      el("div", null, el("dt", { textContent: "in state" }), el("dd.in-state")),
      el("div", null, el("dt", { textContent: "last open", title: "how long the last open period lasted" }), el("dd.last-open")),
      el("div", null, el("dt", { textContent: "next trial" }), el("dd.next")),
      el("div", null, el("dt", { textContent: "ok / fail / refused", title: "calls that succeeded / failed / were refused while open" }), el("dd.totals")),
    ),
    el("div.timeline", { title: "State over the last 2 minutes" }),
    el("div.timeline-axis.muted", null, el("span", { textContent: "−2 min" }), el("span", { textContent: "now" })),
    el("ol.transitions"),
  );
}

function renderBreakers(b, stale) {
  const r = b.view.report;
  const age = stale ? 0 : serverNow() - b.view.lastReportUnixMs; // time since the report, while it is current
  syncKeyed(
    $(".breakers", b.card),
    (r.breakers ?? []).map((x) => [x.name, x]),
    "breaker",
    breakerTile,
    (tile, x) => {
      setData(tile, "state", x.state);
      setText($(".name", tile), x.name);
      $(".name", tile).title = x.name;
      const st = $(".state", tile);
      st.classList.add("badge");
      setData(st, "state", x.state);
      setText($(".state-word", tile), STATE_WORDS[x.state] ?? x.state);
      setText($(".fails", tile), `${x.consecutiveFailures} / ${x.config?.failureThreshold ?? "?"}`);
      setText($(".trips", tile), count(x.trips));
      $(".trips", tile).title = `opened ${x.openCount} time(s) in all, trips included`;
      setText($(".in-state", tile), duration(x.timeInStateMs + age) + (stale ? "+" : ""));
      setText($(".last-open", tile), x.lastOpenDurationMs == null ? (x.state === "open" || x.state === "forced_open" ? "open now" : "never") : duration(x.lastOpenDurationMs));
      setText($(".totals", tile), `${count(x.successes)} / ${count(x.failures)} / ${count(x.rejections)}`);
      let next = "–";
      if (x.state === "open" && x.retryAt != null) next = `in ${duration(onServerClock(b, x.retryAt) - serverNow())}`;
      else if (x.state === "half_open") next = `${x.halfOpenInFlight} trial${x.halfOpenInFlight === 1 ? "" : "s"} running`;
      else if (x.state === "forced_open") next = "until reset by hand";
      setText($(".next", tile), next);
      renderTimeline($(".timeline", tile), b, x);
      renderTransitions($(".transitions", tile), b, x);
    },
  );
}

/** Coloured (and patterned) segments: the breaker's state over the last TIMELINE_MS. */
function renderTimeline(box, b, x) {
  const now = serverNow();
  const start = now - TIMELINE_MS;
  const tr = x.transitions ?? [];
  const segs = [];
  let state = tr.length ? tr[0].from : x.state;
  let from = start;
  for (const t of tr) {
    const at = onServerClock(b, t.at);
    if (at > start) segs.push([state, from, Math.min(at, now)]);
    from = Math.max(start, at);
    state = t.to;
  }
  segs.push([state, from, now]);
  const key = segs.map((s) => `${s[0]}:${Math.round(((s[2] - s[1]) / TIMELINE_MS) * 400)}`).join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    ...segs
      .filter((s) => s[2] > s[1])
      .map(([st, f, t]) =>
        el("span.seg", {
          dataset: { state: st },
          title: `${STATE_WORDS[st] ?? st} for ${duration(t - f)}${f <= start ? "+" : ""}`,
          style: `flex-grow:${t - f}`,
        }),
      ),
  );
}

function renderTransitions(list, b, x) {
  const recent = (x.transitions ?? []).slice(-4).reverse();
  const now = serverNow();
  syncKeyed(
    list,
    recent.map((t) => [String(t.seq), t]),
    "seq",
    () => el("li", null, el("span.when"), " ", el("span.what"), el("span.why.muted")),
    (li, t) => {
      const at = onServerClock(b, t.at);
      setText($(".when", li), `${duration(now - at)} ago`);
      $(".when", li).title = clock(at);
      setText($(".what", li), `${STATE_WORDS[t.from] ?? t.from} → ${STATE_WORDS[t.to] ?? t.to}`);
      setData(li, "to", t.to);
      setText($(".why", li), ` · ${REASONS[t.reason] ?? t.reason}`);
      li.title = t.detail ?? "";
    },
  );
  if (!recent.length && !list.dataset.none) {
    list.dataset.none = "1";
  } else if (recent.length) delete list.dataset.none;
}

function opTile() {
  const tile = el(
    "div.tile.op",
    null,
    el("div.tile-head", null, el("code.name"), el("span.rate")),
    el(
      "dl.nums",
      null,
      el("div", null, el("dt", { textContent: "calls" }), el("dd.calls")),
      el("div", null, el("dt", { textContent: "attempts" }), el("dd.attempts")),
      el("div", null, el("dt", { textContent: "failed" }), el("dd.failed")),
      el("div", null, el("dt", { textContent: "retries" }), el("dd.retries")),
      el("div", null, el("dt", { textContent: "total delay", title: "time spent waiting between attempts" }), el("dd.delay")),
      el("div", null, el("dt", { textContent: "latency p50 / p99" }), el("dd.lat")),
    ),
    el("div.spark.tput"),
    el("div.legend", null, el("i.sw.ok"), "ok/s ", el("i.sw.bad"), "failed/s ", el("span.tput-now.muted")),
    el("div.spark.lat-chart"),
    el("div.legend", null, el("i.sw.p50"), "p50 ", el("i.sw.p99"), "p99 (ms) ", el("span.lat-now.muted")),
    el("p.last-error.muted"),
  );
  return tile;
}

function renderOps(b) {
  const ops = Object.entries(b.view.report.retry?.operations ?? {});
  const box = $(".ops", b.card);
  syncKeyed(
    box,
    ops,
    "tool",
    (tool) => {
      const tile = opTile();
      // Charts are made once the tile is in the document (they need its width).
      tile.dataset.new = "1";
      return tile;
    },
    (tile, o) => {
      const tool = tile.dataset.tool;
      setText($(".name", tile), tool);
      const rate = $(".rate", tile);
      setText(rate, `${percent(o.successRate)} ok`);
      rate.classList.toggle("bad", o.successRate < 0.99 && o.calls > 0);
      setText($(".calls", tile), count(o.calls));
      setText($(".attempts", tile), count(o.attempts));
      setText($(".retries", tile), count(o.retries));
      setText($(".delay", tile), duration(o.totalDelayMs));
      setText($(".lat", tile), `${latencyNum(o.latency?.p50Ms)} / ${latencyNum(o.latency?.p99Ms)} ms`);
      setText($(".failed", tile), count(o.failures));
      setText($(".last-error", tile), o.lastError ? `last error: ${o.lastError}` : "");
    },
    (tile) => {
      tile.querySelectorAll(".spark").forEach((box) => resizer.unobserve(box));
      for (const k of ["tput", "lat"]) {
        b.charts.get(`${tile.dataset.tool}/${k}`)?.destroy();
        b.charts.delete(`${tile.dataset.tool}/${k}`);
      }
    },
  );
  for (const tile of box.querySelectorAll(".op[data-new]")) {
    delete tile.dataset.new;
    const tool = tile.dataset.tool;
    const tput = $(".tput", tile);
    const lat = $(".lat-chart", tile);
    const p1 = sparkline(tput, [{ stroke: color("--ok"), fill: color("--ok-fill") }, { stroke: color("--bad"), fill: color("--bad-fill") }]);
    const p2 = sparkline(lat, [{ stroke: color("--c1") }, { stroke: color("--forced") }], { minMax: 5 });
    attachChart(tput, p1);
    attachChart(lat, p2);
    if (p1) b.charts.set(`${tool}/tput`, p1);
    if (p2) b.charts.set(`${tool}/lat`, p2);
    b.chartsDirty = true;
  }
}

function updateCharts(b) {
  if (!b.card || !$(".fold", b.card).open) return; // stays dirty until unfolded
  b.chartsDirty = false;
  for (const tile of b.card.querySelectorAll(".op")) {
    const tool = tile.dataset.tool;
    const s = opSeries(b.history, tool);
    b.charts.get(`${tool}/tput`)?.setData([s.x, s.ok, s.failed]);
    b.charts.get(`${tool}/lat`)?.setData([s.x, s.p50, s.p99]);
    const n = s.x.length;
    setText($(".tput-now", tile), n ? `now ${perSecond(s.ok[n - 1])} / ${perSecond(s.failed[n - 1])}` : "waiting for reports");
    setText($(".lat-now", tile), n ? `over ${duration((s.x[n - 1] - s.x[0]) * 1000)}` : "");
    tile.dataset.points = n;
  }
}

// ---------------------------------------------------------------- clocks

// Once a second: ages, staleness (a silent bridge turns stale without any event), the stream's watchdog.
setInterval(() => {
  for (const b of model.bridges.values()) if (b.card) scheduleRender(b);
  scheduleOverview();
  if (source && model.lastEventAt) {
    const silent = Date.now() - model.lastEventAt;
    if (silent > WATCHDOG_MS && source.readyState === EventSource.OPEN) {
      setConn("connecting", "stalled", `no data for ${duration(silent)}: reconnecting`);
      connect();
    } else if (source.readyState === EventSource.OPEN && $("#conn").dataset.conn === "live") {
      setText($(".conn-detail"), `last update ${duration(silent)} ago`);
    }
  }
}, 1000);

// Charts follow new reports at most twice a second.
setInterval(() => {
  for (const b of model.bridges.values()) if (b.chartsDirty) updateCharts(b);
}, 500);

setupBridgeList({ onOpen: openBridge, onChange: renderOverview });
connect();
