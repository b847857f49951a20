// A backend restart: the bridge reconnects by itself, is told about the lost
// history (a reset, the epoch changed) and resumes its subscriptions.
import { test, expect } from "@playwright/test";
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const bin = process.env.BRIDGE_BACKEND_BIN || path.join(root, "target/debug/bridge-backend");

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function startBackend(port) {
  const child = spawn(bin, ["--port", String(port), "--www", path.join(root, "www")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("backend did not start within 15 s")), 15_000);
    child.stdout.on("data", (c) => {
      if (String(c).includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`backend exited with ${code}`)));
  });
  return { child, ready };
}

const stop = (child) =>
  new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });

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
  let backend = startBackend(port);
  await backend.ready;
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
  await stop(backend.child);
  const downAt = Date.now();
  backend = startBackend(port);
  await backend.ready;
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
  await stop(backend.child);
});
