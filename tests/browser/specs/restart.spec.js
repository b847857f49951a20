// A backend restart: the bridge reconnects by itself, is told about the lost
// history (a reset, the epoch changed) and resumes its subscriptions.
import { test, expect } from "@playwright/test";
import { freePort, startBackend, stopBackend } from "./helpers.js";
import path from "node:path";
import { fileURLToPath } from "node:url";

const www = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../www");

async function publish(base, topic, data) {
  const r = await fetch(`${base}/api/evolution/publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic, data }),
  });
  expect(r.status).toBe(200);
  return (await r.json()).seq;
}

test("the bridge survives a backend restart and resumes", async ({ page }) => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let backend = await startBackend(port, ["--www", www]);
  await page.goto(`${process.env.PAGES_URL}/user.html?backend=${encodeURIComponent(base)}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
  await page.evaluate(() => {
    window.events = [];
    window.bridge.subscribe("restart.*", (e) => window.events.push(e));
  });
  await page.waitForFunction(() => window.bridge.state().sockets.evolution.state === "open");
  await page.waitForTimeout(200);
  await publish(base, "restart.before", { n: 1 });
  await page.waitForFunction(() => window.events.length === 1);

  // Restart: graceful stop (close 1001), then a new process on the same port with an empty history.
  await stopBackend(backend.child);
  const downAt = Date.now();
  backend = await startBackend(port, ["--www", www]);
  const upAt = Date.now();
  await page.waitForFunction(
    () => window.bridge.state().sockets.evolution.state === "open" && window.resets.length === 1,
    null,
    { timeout: 15_000 },
  );
  const resumedAt = Date.now();
  const reset = await page.evaluate(() => window.resets[0]);
  expect(reset.reason).toBe("epoch_changed");
  console.log(`FIGURE restart: backend down ${upAt - downAt} ms; bridge resumed ${resumedAt - upAt} ms after the new backend was listening`);

  // The subscription is back: a new event arrives.
  await publish(base, "restart.after", { n: 2 });
  await page.waitForFunction(() => window.events.length === 2, null, { timeout: 10_000 });
  const state = await page.evaluate(() => window.bridge.state());
  expect(state.sockets.evolution.reconnects).toBeGreaterThanOrEqual(1);
  expect(state.sockets.evolution.resets).toBe(1);
  await page.evaluate(() => window.bridge.stop());
  await stopBackend(backend.child);
});
