// The outbox survives a reload: agent messages waiting for their ack while the
// backend is down are kept in IndexedDB, claimed by the reloaded page, and
// re-sent with the same ids when the backend is back: each delivered once.
import { test, expect } from "@playwright/test";
import { freePort, nativeAgent, startBackend, stopBackend, watchErrorsExcept } from "./helpers.js";

const rand = () => Math.random().toString(36).slice(2, 8);

let backend;
test.afterEach(() => backend?.kill("SIGKILL"));

test("sends pending over a reload while the backend is down are each delivered once after it is back", async ({ page, context }) => {
  test.setTimeout(60_000);
  // The page's sockets and probes fail while the backend is down: Chromium logs each refused connection.
  const errors = watchErrorsExcept(page, [
    { text: /WebSocket connection to .* failed/ },
    { text: /Failed to load resource: net::ERR_(CONNECTION_REFUSED|INTERNET_DISCONNECTED)/ },
  ]);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  backend = (await startBackend(port)).child;
  const recipient = `native-${rand()}`;
  let native = await nativeAgent(recipient, base);

  // The module comes from the suite's backend; the page talks to `base`, which will go down.
  const url = `${process.env.PAGES_URL}/user.html?agent=page-${rand()}&nodes=${encodeURIComponent(base)}`;
  await page.goto(url);
  await page.waitForFunction(() => window.ready && window.bridge.state().sockets.agents.state === "open", null, { timeout: 10_000 });
  native.close();
  await stopBackend(backend);
  await page.waitForFunction(() => window.bridge.state().sockets.agents.state !== "open", null, { timeout: 10_000 });

  // Three messages wait for their ack; they are kept.
  await page.evaluate((to) => {
    for (const n of [1, 2, 3]) window.bridge.sendA2A({ to, messageType: "kept", content: { n } }).catch(() => {});
  }, recipient);
  await page.waitForFunction(() => window.bridge.state().kept.entries === 3, null, { timeout: 5_000 });

  // Reload: the new page load claims them (the old one's lock went with it).
  await page.reload();
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
  await page.waitForFunction(() => window.bridge.state().kept.recovered === 3, null, { timeout: 5_000 });
  expect(await page.evaluate(() => window.bridge.state().kept.entries)).toBe(3);

  // The backend comes back with the recipient registered before the page may reconnect.
  await context.setOffline(true);
  backend = (await startBackend(port)).child;
  native = await nativeAgent(recipient, base);
  await context.setOffline(false);

  const got = [];
  for (let i = 0; i < 3; i++) {
    const m = await native.waitFor((f) => f.type === "message" && !got.includes(f), `message ${i + 1} of 3`);
    got.push(m);
    native.send({ type: "ack", id: m.id, from: m.from });
  }
  await page.waitForFunction(() => window.recovered.length === 3, null, { timeout: 10_000 });
  const after = await page.evaluate(() => ({ recovered: window.recovered, kept: window.bridge.state().kept }));
  expect(after.recovered.map((r) => r.outcome)).toEqual(["delivered", "delivered", "delivered"]);
  expect(after.kept.entries, "cleared on ack").toBe(0);
  // Exactly once: three distinct messages, in the order sent, and no fourth.
  expect(got.map((m) => m.content.n)).toEqual([1, 2, 3]);
  expect(new Set(got.map((m) => m.id)).size).toBe(3);
  expect(after.recovered.map((r) => r.id).sort()).toEqual(got.map((m) => String(m.id)).sort());
  const extra = await native.waitFor((f) => f.type === "message" && !got.includes(f), "a duplicate", 1_000).catch(() => null);
  expect(extra, "no message delivered twice").toBeNull();
  // Nothing left in IndexedDB for a later load.
  const left = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("bridge-outbox");
        open.onsuccess = () => {
          const all = open.result.transaction("entries").objectStore("entries").getAll();
          all.onsuccess = () => resolve(all.result.length);
          all.onerror = () => reject(all.error);
        };
        open.onerror = () => reject(open.error);
      }),
  );
  expect(left).toBe(0);
  native.close();
  await page.evaluate(() => window.bridge.stop());
  errors.expectNone();
});
