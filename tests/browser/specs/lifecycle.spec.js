// The page's life, for real: the browser going offline and back (Playwright's
// context.setOffline, which sets navigator.onLine and fires the events), and a
// back/forward navigation round trip through Chromium's back/forward cache,
// which closes the page's WebSockets when it enters the cache.
import { test, expect } from "@playwright/test";
import { WITH_WEBMCP } from "../chromium.js";
import { backendUrl, watchErrorsExcept } from "./helpers.js";

// Playwright turns the back/forward cache off by default; a page that uses the bridge has it.
test.use({ launchOptions: { ...WITH_WEBMCP, ignoreDefaultArgs: ["--disable-back-forward-cache"] } });

const rand = () => Math.random().toString(36).slice(2, 8);
const SOCKETS = ["evolution", "agents"];
const CLOSED_BY_CACHE = [{ text: /Page entered Back-Forward Cache/ }];

async function openPage(page) {
  await page.goto(`${process.env.PAGES_URL}/user.html?agent=life-${rand()}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
  await bothOpen(page, "the first connections");
}

async function bothOpen(page, why, timeout = 10_000) {
  await page.waitForFunction(
    (names) => names.every((k) => window.bridge.state().sockets[k].state === "open"),
    SOCKETS,
    { timeout },
  ).catch((e) => {
    throw new Error(`both sockets open (${why}): ${e.message}`);
  });
}

async function post(path, body) {
  const r = await fetch(`${backendUrl()}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(r.status, `POST ${path}`).toBeLessThan(300);
  return r.json().catch(() => null);
}

const connectAttempts = (page) =>
  page.evaluate(() => {
    const ops = window.bridge.state().retry.operations;
    return (ops.connectEvolutionSocket?.attempts ?? 0) + (ops.connectAgentSocket?.attempts ?? 0);
  });

test("offline: no connect attempt and no breaker moves; back online, both sockets reopen at once", async ({ page, context }) => {
  test.setTimeout(60_000);
  const errors = watchErrorsExcept(page, []);
  await openPage(page);
  const attemptsBefore = await connectAttempts(page);

  await context.setOffline(true);
  await page.waitForFunction(() => window.bridge.state().online === false, null, { timeout: 5_000 });
  // The connections die while the browser is offline (cut by the backend, as a lost network would).
  for (const target of SOCKETS) await post("/api/demo/faults", { target, mode: "drop" });
  await page.waitForFunction(
    (names) =>
      names.every((k) => {
        const s = window.bridge.state().sockets[k];
        return s.state === "reconnecting" && /offline/.test(s.lastError ?? "");
      }),
    SOCKETS,
    { timeout: 40_000 }, // without a close from the network, the heartbeat finds it (two 15 s intervals)
  );
  // Four more health checks (500 ms apart) while offline: time enough to burn retries if it would.
  const checked = await page.evaluate(() => window.bridge.state().health.components.backend.lastCheck);
  await page.waitForFunction(
    (t) => window.bridge.state().health.components.backend.lastCheck >= t + 4 * 500,
    checked,
    { timeout: 10_000 },
  );
  const offline = await page.evaluate(() => window.bridge.state());
  expect(offline.health.components.backend.detail).toMatch(/offline/);
  expect(offline.health.components.backend.status, "offline is degraded, not a dead backend").toBe("degraded");
  for (const b of offline.breakers) expect(b.state, `breaker ${b.name} while offline`).toBe("closed");
  for (const n of offline.nodes) expect(n.breaker.state, `node ${n.url} while offline`).toBe("closed");
  expect(await connectAttempts(page), "no connect attempt while offline").toBe(attemptsBefore);

  const back = Date.now();
  await context.setOffline(false);
  await bothOpen(page, "back online");
  const ms = Date.now() - back;
  console.log(`FIGURE back online → both sockets open again: ${ms} ms`);
  expect(ms, "reconnected within 1 s of online").toBeLessThan(1_000);
  const after = await page.evaluate(() => window.bridge.state());
  for (const b of after.breakers) expect(b.state, `breaker ${b.name} after`).toBe("closed");
  await page.waitForFunction(() => window.bridge.state().health.components.backend.status === "healthy", null, {
    timeout: 5_000,
  });
  await page.evaluate(() => window.bridge.stop());
  errors.expectNone();
});

test("a back/forward navigation round trip: restored from the cache, resumed, no event lost", async ({ page }) => {
  const errors = watchErrorsExcept(page, CLOSED_BY_CACHE);
  await openPage(page);
  const topic = `life.${rand()}`;
  await page.evaluate((topic) => {
    window.seqs = [];
    window.bridge.subscribe(topic, (e) => window.seqs.push(e.data.n));
    window.shown = [];
    addEventListener("pageshow", (e) => window.shown.push(e.persisted));
  }, topic);
  // The subscription is active once the server answered it with the head position.
  await page.waitForFunction(() => window.bridge.state().sockets.evolution.position, null, { timeout: 5_000 });
  for (let n = 1; n <= 3; n++) await post("/api/evolution/publish", { topic, data: { n } });
  await page.waitForFunction(() => window.seqs.length === 3, null, { timeout: 5_000 });

  await page.goto(`${process.env.PAGES_URL}/overhead.html`);
  // Published while the page sits in the back/forward cache with its sockets closed.
  for (let n = 4; n <= 8; n++) await post("/api/evolution/publish", { topic, data: { n } });
  const back = Date.now();
  await page.goBack({ waitUntil: "commit" }); // a restored page fires no load event
  await page.waitForFunction(() => window.seqs?.length === 8, null, { timeout: 10_000 });
  console.log(`FIGURE back/forward cache restore → every missed event delivered: ${Date.now() - back} ms`);

  const s = await page.evaluate(() => ({ shown: window.shown, seqs: window.seqs, state: window.bridge.state() }));
  expect(s.shown, "the page came from the back/forward cache").toEqual([true]);
  expect(s.state.restored).toBe(1);
  expect(s.seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(s.state.sockets.evolution.resets).toBe(0);
  expect(s.state.sockets.evolution.reconnects).toBeGreaterThanOrEqual(1);
  await bothOpen(page, "after the restore");
  await page.evaluate(() => window.bridge.stop());
  errors.expectNone();
});
