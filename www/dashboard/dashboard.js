// The operator dashboard: every bridge's health, breakers and retry metrics, and
// the backend's own status, live from GET /api/dashboard/stream (Server-Sent Events).
//
// Test hooks: #conn[data-conn], body[data-snapshots] (snapshots received), article[data-bridge-id][data-health][data-stale]
// [data-history-points], .breaker[data-breaker][data-state] .state-word, .op[data-tool].

import { COMPONENT_ORDER, STATE_WORDS, badge, duration, setData, setText } from "/ui.js";

const STREAM_URL = "/api/dashboard/stream";
const HISTORY_POINTS = 600; // what the backend keeps per bridge
const WATCHDOG_MS = 5000; // status arrives every second: silence this long means a dead stream
const TIMELINE_MS = 2 * 60_000; // breaker timelines show the last 2 minutes
const RATE_POINTS = 300; // backend rate history kept on the page (5 min)
const REASONS = {
  consecutive_failures: "consecutive failures",
  failure_rate: "failure rate",
  reset_timeout: "reset timeout elapsed",
  trials_succeeded: "trial calls succeeded",
  trial_failed: "a trial call failed",
  manual_reset: "reset by hand",
  manual_isolate: "isolated by hand",
};
const CSS = getComputedStyle(document.documentElement);
const color = (name) => CSS.getPropertyValue(name).trim();

// ---------------------------------------------------------------- small helpers

const $ = (sel, root = document) => root.querySelector(sel);

/** `el("div.a.b", {title: "x", dataset: {k: "v"}}, child, "text")`. */
function el(spec, props, ...children) {
  const [tag, ...classes] = spec.split(".");
  const e = document.createElement(tag || "div");
  if (classes.length) e.className = classes.join(" ");
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && k !== "role") e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

const latencyNum = (v) => (v == null ? "–" : v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US"));
const latency = (v) => (v == null ? "–" : `${latencyNum(v)} ms`);
const count = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
const perSecond = (v) => (v == null ? "–" : v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));
const percent = (r) => (r == null ? "–" : r === 1 ? "100 %" : `${(r * 100).toFixed(1)} %`);
const bytes = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : `${(b / (1 << 20)).toFixed(1)} MiB`);
const clock = (unixMs) => new Date(unixMs).toLocaleTimeString([], { hour12: false });

/** Keeps `parent`'s keyed children in step with `items` ([key, value]); returns nothing. */
function syncKeyed(parent, items, attr, create, update, destroy) {
  const old = new Map([...parent.children].map((c) => [c.dataset[attr], c]));
  let prev = null;
  for (const [key, value] of items) {
    let node = old.get(key);
    if (node) old.delete(key);
    else {
      node = create(key, value);
      node.dataset[attr] = key;
    }
    update(node, value);
    const want = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (node !== want) parent.insertBefore(node, want);
    prev = node;
  }
  for (const node of old.values()) {
    destroy?.(node);
    node.remove();
  }
}

// ---------------------------------------------------------------- state

const model = {
  /** id → {view, history, card, dirty, chartsDirty} */
  bridges: new Map(),
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
  scheduleRender(b);
  return b;
}

function removeBridge(id) {
  const b = model.bridges.get(id);
  if (!b) return;
  for (const c of b.charts.values()) c.destroy();
  b.card?.querySelectorAll(".spark").forEach((box) => resizer.unobserve(box));
  b.card?.remove();
  model.bridges.delete(id);
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
  updateRatesChart();
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
let overviewDirty = false;
function scheduleOverview() {
  overviewDirty = true;
  if (!frame) frame = requestAnimationFrame(flush);
}
function flush() {
  frame = 0;
  for (const b of pending) if (model.bridges.get(b.view.bridgeId) === b) renderBridge(b);
  pending.clear();
  if (overviewDirty) {
    overviewDirty = false;
    renderOverview();
  }
}

function renderOverview() {
  const list = $("#bridge-list");
  const bridges = [...model.bridges.values()].sort((a, b) => a.view.bridgeId.localeCompare(b.view.bridgeId));
  syncKeyed(
    list,
    bridges.map((b) => [b.view.bridgeId, b]),
    "chipFor",
    (id) =>
      el(
        "li",
        null,
        el("a.chip", { href: `#bridge-${encodeURIComponent(id)}` }, el("code", { textContent: id }), " ", el("span.health"), el("span.stale-word")),
      ),
    (li, b) => {
      const stale = isStale(b);
      const health = b.view.report?.health?.status ?? "unknown";
      setData(li, "stale", stale);
      if (stale) badge($(".health", li), "health", "stale");
      else badge($(".health", li), "health", health);
      setText($(".stale-word", li), stale ? `was ${health} · silent ${duration(serverNow() - b.view.lastReportUnixMs)}` : "");
    },
  );
  const counts = {};
  let stale = 0;
  for (const b of bridges) {
    if (isStale(b)) stale++;
    else {
      const h = b.view.report?.health?.status ?? "unknown";
      counts[h] = (counts[h] ?? 0) + 1;
    }
  }
  const parts = ["healthy", "degraded", "unhealthy", "unknown"].filter((h) => counts[h]).map((h) => `${counts[h]} ${h}`);
  if (stale) parts.push(`${stale} stale`);
  setText($("#overview-summary"), bridges.length ? `${bridges.length} known: ${parts.join(" · ")}` : "");
  $("#no-bridges").hidden = bridges.length > 0;
}

/** Cards start unfolded while there are few bridges; with many, new ones start folded. */
const UNFOLDED_BRIDGES = 6;

function createCard(id) {
  const fold = el(
    "details.fold",
    { open: model.bridges.size <= UNFOLDED_BRIDGES },
    el(
      "summary.bridge-head",
      { title: "Fold or unfold this bridge" },
      el("h2", null, el("code", { textContent: id })),
      el("span.health"),
      el("span.stale-badge.badge", { dataset: { health: "stale" }, hidden: true, textContent: "stale" }),
      el("span.meta.muted"),
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
  setText(
    $(".bridge-head .meta", card),
    `last report ${duration(serverNow() - b.view.lastReportUnixMs)} ago · ${count(b.view.reports)} reports · v${r.version ?? "?"} · up ${duration(
      r.uptimeMs + (stale ? 0 : serverNow() - b.view.lastReportUnixMs),
    )}`,
  );
  setData(card, "open", $(".fold", card).open);
  if (!$(".fold", card).open) return; // folded: only the head is kept current
  setText($(".page", card), r.page ? `page ${r.page} · instance ${r.instance}` : `instance ${r.instance ?? "?"}`);
  renderHealthStrip(b);
  renderComponents(b, stale);
  renderBreakers(b, stale);
  renderOps(b);
}

/** Cards in id order, live bridges first, stale ones after. */
function placeCard(card, id, stale) {
  const rank = (c) => `${c.dataset.stale === "true" ? 1 : 0}${c.dataset.bridgeId}`;
  const mine = `${stale ? 1 : 0}${id}`;
  const after = [...$("#bridges").children].find((c) => c !== card && rank(c) > mine);
  $("#bridges").insertBefore(card, after ?? null);
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
  for (const b of model.bridges.values()) scheduleRender(b);
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

connect();
