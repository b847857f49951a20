// The dashboard (/) and the demo page (/demo/), for real: the demo page's bridge reports to the
// backend, the dashboard follows it live through a fault injected from the demo page's own UI.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test, expect } from "@playwright/test";
import { backendUrl, watchErrors, watchErrorsExcept } from "./helpers.js";

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../target/screenshots");
/** The only console errors the fault provokes on purpose: Chromium logs each injected 503. */
const INJECTED_503 = [{ text: /status of 503/, url: /\/api\/demo\/echo$/ }];

/** Takes a screenshot without letting a failure to take it hide the test's own result. */
async function shoot(page, name, options = {}) {
  try {
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, name), ...options });
  } catch (e) {
    console.log(`screenshot ${name} not taken: ${e.message}`);
  }
}

/** Opens the demo page and waits for its bridge to run; returns the bridge's id. */
async function openDemo(page) {
  await page.goto(`${backendUrl()}/demo/`);
  await expect(page.locator("body")).toHaveAttribute("data-started", "true");
  const id = (await page.locator("#bridge-id").textContent()).trim();
  expect(id).toMatch(/^b-/);
  return id;
}

test("the dashboard shows a demo-page bridge through an injected fault and its recovery", async ({ browser }) => {
  test.setTimeout(120_000);
  const url = backendUrl();
  const demoContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const dashContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const demo = await demoContext.newPage();
  const dash = await dashContext.newPage();
  const demoErrors = watchErrorsExcept(demo, INJECTED_503);
  const dashErrors = watchErrors(dash);
  await dashContext.request.delete(`${url}/api/demo/faults`);
  try {
    const id = await openDemo(demo);
    await dash.goto(`${url}/`);
    await expect(dash.locator("#conn")).toHaveAttribute("data-conn", "live");
    // The backend card names the node and its store.
    await expect(dash.locator("#backend-version")).toContainText(/^node node-[0-9a-f]{8} · v/);
    await expect(dash.locator('[data-s="store"]')).toHaveText("memory");

    // The bridge appears, healthy, within a few seconds.
    const card = dash.locator(`article[data-bridge-id="${id}"]`);
    await expect(card).toHaveAttribute("data-health", "healthy", { timeout: 8_000 });
    await expect(card).toHaveAttribute("data-stale", "false");
    await expect(dash.locator("#bridge-list")).toContainText(id);

    // Traffic, so the origin's breaker has calls to count.
    await demo.click("#traffic-toggle");
    await expect(demo.locator("#traffic-toggle")).toHaveAttribute("aria-pressed", "true");
    const tile = card.locator(`.breaker[data-breaker="fetch:${url}"]`);
    await expect(tile).toHaveAttribute("data-state", "closed");
    await expect(tile.locator(".state-word")).toHaveText("closed");
    await expect.poll(async () => Number(await demo.locator('#traffic-stats [data-k="ok"]').textContent())).toBeGreaterThan(3);

    // Echo fails for 6 s, switched on from the demo page's fault panel.
    await expect(demo.locator("#faults")).toBeVisible();
    await demo.selectOption("#fault-target", "echo");
    await demo.selectOption("#fault-mode", "fail");
    await demo.fill("#fault-duration", "6000");
    // Watch the tile from inside the dashboard, so the figure is not rounded up to expect's polling.
    const openedAt = dash.evaluate(
      (sel) =>
        new Promise((resolve) => {
          const isOpen = () => document.querySelector(sel)?.dataset.state === "open";
          if (isOpen()) return resolve(Date.now());
          const mo = new MutationObserver(() => {
            if (isOpen()) {
              mo.disconnect();
              resolve(Date.now());
            }
          });
          mo.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
        }),
      `article[data-bridge-id="${id}"] .breaker[data-breaker="fetch:${url}"]`,
    );
    const appliedAt = Date.now();
    await demo.click("#fault-apply");
    await expect(demo.locator("#fault-result")).toHaveAttribute("data-status", "ok");
    await expect(demo.locator('#fault-list li[data-target="echo"]')).toBeVisible();

    await expect(tile).toHaveAttribute("data-state", "open", { timeout: 15_000 });
    await expect(tile.locator(".state-word")).toHaveText("open");
    const figure = (await openedAt) - appliedAt;
    console.log(`FIGURE fault-to-dashboard-open: ${figure} ms`);
    expect(figure).toBeLessThan(10_000);
    // Of which: the bridge tripping its breaker (its own transition time), then report + stream + render.
    const trippedAt = await demo.evaluate(
      (name) => window.demoBridge.state().breakers.find((b) => b.name === name).transitions.find((t) => t.to === "open").at,
      `fetch:${url}`,
    );
    console.log(`FIGURE fault-to-bridge-breaker-open: ${Math.round(trippedAt - appliedAt)} ms`);
    console.log(`FIGURE bridge-breaker-open-to-dashboard-open: ${Math.round((await openedAt) - trippedAt)} ms`);
    await expect(tile.locator('.transitions li[data-to="open"]').first()).toContainText("closed → open");
    expect(Number(await tile.locator(".trips").textContent())).toBeGreaterThanOrEqual(1);
    await shoot(dash, "dashboard-breaker-open-1280x800.png");
    // The demo page saw it too: refused calls and its own breaker table.
    await expect(demo.locator(`#breaker-table tr[data-breaker="fetch:${url}"]`)).toHaveAttribute("data-state", /open/);

    // The fault ends (6 s); after the 5 s reset timeout, trial calls succeed and it closes.
    await expect(tile).toHaveAttribute("data-state", "closed", { timeout: 30_000 });
    await expect(tile.locator(".state-word")).toHaveText("closed");
    await expect(tile.locator('.transitions li[data-to="closed"]').first()).toContainText("half-open → closed");
    await expect(card).toHaveAttribute("data-health", "healthy");

    // The charts drew the history.
    expect(Number(await card.getAttribute("data-history-points"))).toBeGreaterThan(5);
    const fetchOp = card.locator('.op[data-tool="fetch"]');
    await expect(fetchOp.locator("canvas")).toHaveCount(2);
    await expect.poll(async () => Number(await fetchOp.getAttribute("data-points"))).toBeGreaterThan(3);
    const painted = await fetchOp.locator(".tput canvas").evaluate((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    expect(painted, "painted pixels in the fetch throughput sparkline").toBeGreaterThan(50);
    await expect(dash.locator("#rates-chart canvas")).toHaveCount(1);

    // A WebMCP tool, run by hand from the demo page.
    await expect(demo.locator("#webmcp-note")).toHaveAttribute("data-webmcp", "available");
    await demo.selectOption("#tool-select", "get_os_state");
    await demo.click("#tool-run");
    await expect(demo.locator("#tool-result")).toHaveAttribute("data-status", "ok");
    await expect(demo.locator("#tool-result")).toContainText(`"bridgeId": "${id}"`);

    await demo.click("#traffic-toggle");
    await expect(demo.locator("#traffic-toggle")).toHaveAttribute("aria-pressed", "false");
    console.log(`expected 503 console errors on the demo page (injected fault): ${demoErrors.allowed.length}`);
    dashErrors.expectNone();
    demoErrors.expectNone();
  } finally {
    await shoot(dash, "dashboard-1280x800.png");
    await shoot(dash, "dashboard-1280-full.png", { fullPage: true });
    await shoot(demo, "demo-1280.png", { fullPage: true });
    await dash.setViewportSize({ width: 420, height: 900 }).catch(() => {});
    await dash.waitForTimeout(500);
    await shoot(dash, "dashboard-420x900.png");
    await shoot(dash, "dashboard-420-full.png", { fullPage: true });
    await demoContext.request.delete(`${url}/api/demo/faults`).catch(() => {});
    await demoContext.close();
    await dashContext.close();
  }
});

test("the dashboard reconnects by itself and catches up; a silent bridge turns stale", async ({ browser }) => {
  test.setTimeout(90_000);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const demo = await context.newPage();
  const dash = await context.newPage();
  const demoErrors = watchErrors(demo);
  const dashErrors = watchErrors(dash);
  try {
    const id = await openDemo(demo);
    await dash.goto(`${backendUrl()}/`);
    const card = dash.locator(`article[data-bridge-id="${id}"]`);
    await expect(card).toHaveAttribute("data-health", "healthy", { timeout: 8_000 });
    await expect(dash.locator("body")).toHaveAttribute("data-snapshots", "1");

    // Cut the stream (window.stop() aborts it): it comes back with a fresh snapshot.
    await dash.evaluate(() => window.stop());
    await expect(dash.locator("body")).toHaveAttribute("data-snapshots", "2", { timeout: 10_000 });
    await expect(dash.locator("#conn")).toHaveAttribute("data-conn", "live");
    await expect(card).toHaveAttribute("data-health", "healthy");
    expect(Number(await card.getAttribute("data-history-points"))).toBeGreaterThan(0);

    // The bridge stops reporting: the dashboard marks it stale by its own clock once
    // reports.stale_after_ms (30 s by default) has passed; no event says so.
    await demo.close();
    await expect(card).toHaveAttribute("data-stale", "true", { timeout: 40_000 });
    await expect(card.locator(".stale-badge")).toBeVisible();
    await expect(card.locator(".stale-badge")).toContainText("stale");
    await expect(dash.locator("#overview-summary")).toContainText("stale");
    await shoot(dash, "dashboard-stale-1280x800.png");
    dashErrors.expectNone();
    demoErrors.expectNone();
  } finally {
    await context.close();
  }
});
