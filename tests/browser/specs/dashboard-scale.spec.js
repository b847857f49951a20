// The dashboard as an operator meets it with 1,000 bridges reporting (reports.max_bridges, the
// default): problems first, counts per state, the filter box, names in natural order, a bounded
// DOM and details on demand; and the cluster card. The thousand bridges report to a backend of
// this spec's own, so the shared one (and the other specs) never see them.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test, expect } from "@playwright/test";
import { backendBin, listeningAt } from "../backend.js";
import { backendUrl, watchErrors } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const WWW = process.env.BRIDGE_WWW || path.join(root, "www");
/** Short, so one bridge goes stale within the test; the others report every REPORT_EVERY_MS, well inside it. */
const STALE_AFTER_MS = 8_000;
/** How often each bridge reports, as the demo page's bridge does. */
const REPORT_EVERY_MS = 2_000;
const PAGE_ROWS = 200; // bridge-list.js
const CONCURRENCY = 16;

/** Starts a backend on 127.0.0.1:0 with `env`; resolves to {url, stop}. */
async function startBackend(env) {
  const child = spawn(backendBin, ["--port", "0", "--www", WWW], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn", ...env },
  });
  const url = await listeningAt(child);
  // Should the test never reach stop() (a timeout), the backend still ends with this worker.
  const onExit = () => child.kill("SIGTERM");
  process.once("exit", onExit);
  const stop = async () => {
    process.off("exit", onExit);
    if (child.exitCode != null) return;
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  };
  return { url, stop };
}

/** One health component as a bridge reports it. */
function component(status, critical, detail) {
  const failing = status !== "healthy";
  const now = Date.now();
  return { status, critical, lastCheck: now, lastSuccess: failing ? null : now, consecutiveFailures: failing ? 3 : 0, ...(detail ? { detail } : {}) };
}

/** A bridge's report (bridge_core::report::BridgeReport): unhealthy = its backend is down, degraded = its optional LLM is. */
function report(id, seq, health) {
  return {
    bridgeId: id,
    instance: "scale",
    seq,
    ts: Date.now(),
    version: "test",
    uptimeMs: seq * REPORT_EVERY_MS,
    health: {
      status: health,
      components: {
        backend: component(health === "unhealthy" ? "unhealthy" : "healthy", true, health === "unhealthy" ? "connection refused" : null),
        llm: component(health === "degraded" ? "degraded" : "healthy", false, health === "degraded" ? "slow answers" : null),
      },
    },
    breakers: [],
    retry: { totalRetries: 0, successfulRetries: 0, failedRetries: 0, successRate: 1, latency: { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, meanMs: 0, maxMs: 0 }, operations: {} },
    sockets: {},
  };
}

/** Bridges that report, each with the health set for it (healthy unless told). */
class Fleet {
  constructor(url) {
    this.url = url;
    this.health = new Map();
    this.seq = new Map();
    this.sent = 0;
    this.stopped = false;
  }

  async put(id) {
    const seq = (this.seq.get(id) ?? 0) + 1;
    this.seq.set(id, seq);
    const res = await fetch(`${this.url}/api/bridges/${encodeURIComponent(id)}/report`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(report(id, seq, this.health.get(id) ?? "healthy")),
    });
    if (!res.ok) throw new Error(`report of ${id}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    this.sent++;
  }

  /** Every one of `ids` reports once, CONCURRENCY at a time. */
  async round(ids) {
    let next = 0;
    const worker = async () => {
      while (next < ids.length && !this.stopped) await this.put(ids[next++]);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  /** Rounds every REPORT_EVERY_MS (back to back if one takes longer) until `stop()`; rejects on a failed report. */
  keepReporting(ids) {
    this.done = (async () => {
      while (!this.stopped) {
        const started = Date.now();
        await this.round(ids);
        // The bridges' own report interval (load pacing, not a wait for a result); stop() ends it early.
        await new Promise((r) => {
          this.wake = r;
          setTimeout(r, Math.max(0, started + REPORT_EVERY_MS - Date.now()));
        });
      }
    })();
    return this.done;
  }

  async stop() {
    this.stopped = true;
    this.wake?.();
    await this.done?.catch(() => {});
  }
}

const rows = (page) => page.locator("#bridge-list > li");
const row = (page, id) => page.locator(`#bridge-list > li[data-row-id="${id}"]`);
const rowIds = (page, n) => rows(page).evaluateAll((lis, n) => lis.slice(0, n).map((li) => li.dataset.rowId), n);
const countOf = (page, state) => page.locator(`#state-counts [data-state-count="${state}"]`);

test("1,000 bridges: problems first, counts, filter, natural order, a bounded DOM, details on demand", async ({ browser }) => {
  test.setTimeout(60_000);
  const backend = await startBackend({ BRIDGE_REPORTS__STALE_AFTER_MS: String(STALE_AFTER_MS) });
  const fleet = new Fleet(backend.url);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    // 999 load bridges and one that reports once, then falls silent (it goes stale).
    const load = Array.from({ length: 999 }, (_, i) => `load-${i}`);
    fleet.health.set("load-737", "unhealthy").set("load-998", "unhealthy").set("load-500", "degraded");
    await fleet.put("quiet-1");
    await fleet.round(load);
    const reporting = fleet.keepReporting(load);
    reporting.catch(() => {}); // a failed report is raised at the end
    const startedAt = Date.now();
    const status = await (await fetch(`${backend.url}/status`)).json();
    const nodeId = status.node.id;

    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${backend.url}/`);
    await expect(page.locator("#conn")).toHaveAttribute("data-conn", "live");
    await expect(page.locator("main")).toHaveAttribute("data-layout", "list");
    await expect(countOf(page, "all")).toHaveAttribute("data-n", "1000");
    await expect(countOf(page, "unhealthy")).toHaveAttribute("data-n", "2");
    await expect(countOf(page, "degraded")).toHaveAttribute("data-n", "1");
    await expect(countOf(page, "unknown")).toHaveAttribute("data-n", "0");

    // Problems first: the unhealthy bridges, then the degraded one, at the top, seen without scrolling.
    await expect(row(page, "load-998")).toHaveAttribute("data-state", "unhealthy");
    await expect(row(page, "load-998")).toBeInViewport();
    await expect(row(page, "load-737")).toBeInViewport();
    expect(await page.evaluate(() => [window.scrollY, document.querySelector("#bridge-list").scrollTop])).toEqual([0, 0]);
    await expect(row(page, "load-998")).toContainText("backend unhealthy");
    await expect(row(page, "load-998")).toContainText(nodeId);
    await expect.poll(() => rowIds(page, 3)).toEqual(["load-737", "load-998", "load-500"]);

    // Then the healthy ones in natural order: load-2 before load-10, load-10 before load-100.
    const healthyOrder = await page.locator('#bridge-list > li[data-state="healthy"]').evaluateAll((lis) => lis.map((li) => li.dataset.rowId));
    expect(healthyOrder.slice(0, 12)).toEqual(["load-0", "load-1", "load-2", "load-3", "load-4", "load-5", "load-6", "load-7", "load-8", "load-9", "load-10", "load-11"]);
    expect(healthyOrder.indexOf("load-100")).toBeGreaterThan(healthyOrder.indexOf("load-99"));

    // The DOM stays bounded: one page of rows, and a word about the rest.
    await expect(rows(page)).toHaveCount(PAGE_ROWS);
    await expect(page.locator("#bridge-more")).toHaveText("800 more — refine the filter to see them");
    await expect(page.locator("article[data-bridge-id]")).toHaveCount(0);
    const domNodes = await page.evaluate(() => document.querySelectorAll("*").length);
    console.log(`FIGURE dashboard-dom-nodes-1000-bridges: ${domNodes}`);
    expect(domNodes).toBeLessThan(3_000);

    // The filter box: part of a name (measured from the keystroke to the rows, with reports streaming in) ...
    const filter = page.getByLabel("Filter");
    await page.evaluate(() => {
      window.filterTiming = new Promise((resolve) => {
        const list = document.querySelector("#bridge-list");
        let typedAt = 0;
        // Capturing, so the time is taken before the dashboard's own listener renders.
        window.addEventListener("input", () => (typedAt ||= performance.now()), true);
        const mo = new MutationObserver(() => {
          if (typedAt && list.children.length === 10) {
            mo.disconnect();
            resolve(performance.now() - typedAt);
          }
        });
        mo.observe(list, { childList: true });
        setTimeout(() => resolve(Infinity), 10_000); // never drawn: fail below rather than hang
      });
    });
    await filter.fill("load-99");
    const filterMs = await page.evaluate(() => window.filterTiming);
    console.log(`FIGURE dashboard-filter-keystroke-to-rows-1000-bridges: ${Math.round(filterMs)} ms`);
    expect(filterMs).toBeLessThan(1_000);
    expect(await rowIds(page, 10)).toEqual(["load-998", "load-99", "load-990", "load-991", "load-992", "load-993", "load-994", "load-995", "load-996", "load-997"]);
    await expect(page.locator("#bridge-more")).toBeHidden();
    // ... a state ...
    await filter.fill("state:degraded");
    await expect(rows(page)).toHaveCount(1);
    await expect(rows(page)).toHaveAttribute("data-row-id", "load-500");
    await expect(countOf(page, "degraded")).toHaveAttribute("aria-pressed", "true");
    // ... a node (all of them here: one node) ...
    await filter.fill(`node:${nodeId}`);
    await expect(rows(page)).toHaveCount(PAGE_ROWS);
    await filter.fill("node:elsewhere");
    await expect(rows(page)).toHaveCount(0);
    await expect(page.locator("#no-match")).toBeVisible();
    // ... and the count buttons, which set the filter's state word.
    await filter.fill("");
    await countOf(page, "unhealthy").click();
    await expect(filter).toHaveValue("state:unhealthy");
    await expect(rows(page)).toHaveCount(2);
    await countOf(page, "unhealthy").click();
    await expect(filter).toHaveValue("");
    await expect(rows(page)).toHaveCount(PAGE_ROWS);

    // Details on demand: choosing a row makes that bridge's card (only that one) and brings it into view.
    await row(page, "load-998").getByRole("button").click();
    const card = page.locator('article[data-bridge-id="load-998"]');
    await expect(card).toBeInViewport();
    await expect(card).toHaveAttribute("data-health", "unhealthy");
    await expect(card.locator('.comp[data-component="backend"] .status')).toHaveText("unhealthy");
    await expect(card.locator(".comp-detail").first()).toContainText("connection refused");
    await expect(page.locator("article[data-bridge-id]")).toHaveCount(1);
    await expect(row(page, "load-998")).toHaveAttribute("data-open", "true");
    await card.getByRole("button", { name: /close/ }).click();
    await expect(page.locator("article[data-bridge-id]")).toHaveCount(0);
    await expect(row(page, "load-998").getByRole("button")).toBeFocused();
    // By keyboard too: the rows are buttons.
    await page.keyboard.press("Enter");
    await expect(card).toBeVisible();
    await card.getByRole("button", { name: /close/ }).click();

    // The cluster card: this node, up and ready, its store, the bridges reporting to it.
    const self = page.locator(`#cluster-nodes tr[data-node-id="${nodeId}"]`);
    await expect(self).toHaveAttribute("data-self", "true");
    await expect(self).toHaveAttribute("data-up", "true");
    await expect(self.locator(".node-state")).toHaveText("up · ready");
    await expect(self.locator(".store")).toHaveText("memory");
    await expect(self.locator(".self-mark")).toBeVisible();
    await expect(self.locator(".bridges button")).toHaveText("1,000", { timeout: 10_000 });
    await expect(self.locator(".attention")).toHaveText(/^[34] need attention$/);
    await expect(page.locator("#cluster-summary")).toHaveText("1 node · 1 up · store memory");

    // Reports keep coming; a new round changes states and the list follows: load-3 fails, load-998 recovers.
    fleet.health.set("load-3", "unhealthy").set("load-998", "healthy");
    await expect(row(page, "load-3")).toHaveAttribute("data-state", "unhealthy", { timeout: 10_000 });
    await filter.fill("load-998"); // healthy now, so far down the list
    await expect(row(page, "load-998")).toHaveAttribute("data-state", "healthy", { timeout: 10_000 });
    await filter.fill("");
    // The silent one turns stale by the dashboard's own clock and sorts after the degraded one.
    await expect(countOf(page, "stale")).toHaveAttribute("data-n", "1", { timeout: STALE_AFTER_MS + 5_000 });
    await expect.poll(() => rowIds(page, 4)).toEqual(["load-3", "load-737", "load-500", "quiet-1"]);
    await expect(row(page, "quiet-1")).toContainText("was healthy");
    for (const [state, n] of Object.entries({ all: 1000, unhealthy: 2, degraded: 1, stale: 1, unknown: 0, healthy: 996 })) {
      await expect(countOf(page, state)).toHaveAttribute("data-n", String(n));
    }
    await page.evaluate(() => window.scrollTo(0, 0)); // back from the details
    await expect(row(page, "load-3")).toBeInViewport();
    await fleet.stop();
    await reporting; // no report failed
    const seconds = (Date.now() - startedAt) / 1000;
    console.log(`FIGURE dashboard-reports-per-second-while-watched: ${Math.round(fleet.sent / seconds)} over ${seconds.toFixed(1)} s`);
    console.log(`FIGURE dashboard-snapshots-received: ${await page.locator("body").getAttribute("data-snapshots")} (more than 1: it fell 256 changes behind)`);
    errors.expectNone();
  } finally {
    await fleet.stop();
    await context.close();
    await backend.stop();
  }
});

/** A bridge view as the stream sends it. */
function view(id, node, health, now) {
  return { bridgeId: id, node, lastReportUnixMs: now, lastSeenMsAgo: 0, stale: false, reports: 1, report: report(id, 1, health) };
}

/** A node of `/status` cluster.nodes. */
function member(id, { up = true, ready = true, problem, version = "0.1.0", bridges = 0, heard = 0 }, now) {
  return {
    id, incarnation: `${id}-1`, version, store: "nats", addr: `10.0.0.${id.at(-1)}:8765`, startedUnixMs: now - 60_000, unixMs: now - heard,
    ready, ...(problem ? { problem } : {}), evolutionConnections: 12, agentsConnections: 3, bridges, up, lastHeardMsAgo: heard,
  };
}

test("the cluster card marks this node, a node that is not ready and one that is down", async ({ page }) => {
  // A three-node cluster needs NATS; the card only reads the stream, so the stream is played from here.
  const now = Date.now();
  const bridges = Array.from({ length: 8 }, (_, i) => view(`b-${i}`, ["n1", "n2", "n3"][i % 3], i === 2 ? "unhealthy" : "healthy", now));
  const status = {
    version: "0.1.0", uptimeMs: 60_000, node: { id: "n1", store: "nats" },
    store: { kind: "nats", ready: true, problem: null, details: { state: "connected", stream: "BRIDGE_EVOLUTION", epoch: "e1", tailedSeq: 5 } },
    cluster: {
      nodes: [
        member("n3", { up: false, ready: true, bridges: 2, heard: 9_000 }, now),
        member("n2", { ready: false, problem: "store: nats unreachable", version: "0.2.0", bridges: 3 }, now),
        member("n1", { bridges: 3 }, now),
      ],
    },
  };
  const snapshot = { bridges, history: {}, staleAfterMs: 30_000, status };
  await page.route("**/api/dashboard/stream", (route) =>
    route.fulfill({ status: 200, contentType: "text/event-stream", body: `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n` }),
  );
  await page.goto(`${backendUrl()}/`);
  const nodes = page.locator("#cluster-nodes tbody tr");
  await expect(nodes).toHaveCount(3);
  expect(await nodes.evaluateAll((trs) => trs.map((tr) => tr.dataset.nodeId))).toEqual(["n1", "n2", "n3"]);
  await expect(nodes.nth(0)).toHaveAttribute("data-self", "true");
  await expect(nodes.nth(0).locator(".self-mark")).toBeVisible();
  await expect(nodes.nth(1).locator(".self-mark")).toBeHidden();
  await expect(nodes.nth(1).locator(".node-state")).toHaveText("up · not ready");
  await expect(nodes.nth(1).locator(".problem")).toHaveText("store: nats unreachable");
  await expect(nodes.nth(1).locator(".version")).toHaveClass(/differs/);
  await expect(nodes.nth(2)).toHaveAttribute("data-up", "false");
  await expect(nodes.nth(2).locator(".node-state")).toHaveText("down");
  await expect(nodes.nth(2).locator(".heard")).toHaveText("9.0 s ago");
  await expect(page.locator("#cluster-summary")).toHaveText("3 nodes · 2 up · 1 down · store nats");
  await expect(page.locator("#cluster")).toHaveClass(/bad/);
  // Bridges show their node, and say when it is down; a node's count lists its bridges.
  await expect(page.locator('#bridge-list > li[data-row-id="b-2"] .node')).toHaveText("n3 (down)");
  await expect(nodes.nth(2).locator(".attention")).toHaveText("1 need attention");
  await nodes.nth(2).locator(".bridges button").click();
  await expect(page.getByLabel("Filter")).toHaveValue("node:n3");
  await expect.poll(() => rowIds(page, 10)).toEqual(["b-2", "b-5"]);
});
