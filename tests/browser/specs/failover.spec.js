// A cluster node dies under a page: the bridge moves to another node. Two nodes on a real
// nats-server; the page lists both. Node A is frozen (SIGSTOP) while the page has a message
// waiting for its ack and events are published on node B, then killed (SIGKILL). The bridge
// moves to B: its subscription resumes with no reset and no missing event, the message is
// re-sent with its id and delivered once, and B's dashboard shows the page's bridge.
import { test, expect } from "@playwright/test";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, nativeAgent } from "./helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const bin = process.env.BRIDGE_BACKEND_BIN || path.join(root, "target/debug/bridge-backend");
const natsBin = process.env.BRIDGE_NATS_SERVER || path.join(root, "xtask/nats/venv/bin/nats-server");


/** Resolves once `child` printed `line` on stdout; rejects if it exits first or after 15 s. */
const printed = (child, pattern, what) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s`)), 15_000);
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on("exit", (code) => reject(new Error(`${what} exited with ${code}`)));
  });

async function startNats() {
  if (!fs.existsSync(natsBin)) throw new Error(`${natsBin} is missing: run cargo xtask setup`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-failover-"));
  const child = spawn(natsBin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((r) => net.connect(port, "127.0.0.1").on("connect", function () { this.end(); r(true); }).on("error", () => r(false)));
    if (up) return { child, url: `nats://127.0.0.1:${port}`, dir };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("nats-server did not listen within 10 s");
}

async function startNode(natsUrl, id) {
  const child = spawn(
    bin,
    ["--port", "0", "--www", path.join(root, "www"), "--store", "nats", "--nats-url", natsUrl, "--node-id", id],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } },
  );
  const m = await printed(child, /listening on (http:\/\/[^\s/]+)/, `node ${id}`);
  return { child, url: m[1] };
}

async function publish(base, n) {
  const r = await fetch(`${base}/api/evolution/publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ topic: "failover.tick", data: { n } }),
  });
  expect(r.status, `publish ${n}`).toBe(200);
  return (await r.json()).seq;
}

let nats;
let nodes = [];
test.afterEach(() => {
  for (const n of nodes) n.child.kill("SIGKILL");
  nats?.child.kill("SIGKILL");
  if (nats) fs.rmSync(nats.dir, { recursive: true, force: true });
  nodes = [];
  nats = undefined;
});

test("a page moves to another node when its node is killed, losing nothing", async ({ page }) => {
  nats = await startNats();
  const a = await startNode(nats.url, "a");
  const b = await startNode(nats.url, "b");
  nodes = [a, b];
  const receiver = await nativeAgent("failover-receiver", b.url);

  await page.goto(`${process.env.PAGES_URL}/user.html?nodes=${a.url},${b.url}&agent=failover-page`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
  await page.evaluate(() => {
    window.events = [];
    window.bridge.subscribe("failover.*", (e) => window.events.push(e.seq));
  });
  await page.waitForFunction(() => {
    const s = window.bridge.state();
    return s.sockets.evolution.state === "open" && s.sockets.agents.state === "open";
  });
  expect(await page.evaluate(() => window.bridge.state().node)).toBe(a.url);
  await page.waitForTimeout(200); // the subscribe frame reaches node A
  const first = [];
  for (let n = 1; n <= 5; n++) first.push(await publish(b.url, n));
  await page.waitForFunction((k) => window.events.length === k, first.length);

  // Node A freezes: the page's message waits for an ack that A will never send.
  a.child.kill("SIGSTOP");
  await page.evaluate(() => {
    window.sent = window.bridge.sendA2A({ to: "failover-receiver", messageType: "task", content: { job: 7 } });
  });
  const during = [];
  for (let n = 6; n <= 10; n++) during.push(await publish(b.url, n));
  await page.waitForTimeout(300); // the message is in A's socket buffer, unanswered
  expect(await page.evaluate(() => window.bridge.state().sockets.agents.outbox)).toBe(1);

  // Node A dies.
  const killedAt = Date.now();
  a.child.kill("SIGKILL");
  await page.waitForFunction(
    (bUrl) => {
      const s = window.bridge.state();
      return s.node === bUrl && s.sockets.evolution.state === "open" && s.sockets.agents.state === "open";
    },
    b.url,
    { timeout: 10_000 },
  );
  const movedAt = Date.now();
  const ack = await page.evaluate(() => window.sent);
  expect(ack.status).toBe("delivered");
  const after = [];
  for (let n = 11; n <= 15; n++) after.push(await publish(b.url, n));
  const all = [...first, ...during, ...after];
  await page.waitForFunction((k) => window.events.length >= k, all.length, { timeout: 10_000 });
  console.log(`FIGURE failover: the page moved to node B and reopened both sockets ${movedAt - killedAt} ms after node A was killed`);

  // Every event once, in order, and no reset: the stream is shared, the position carries over.
  expect(await page.evaluate(() => window.events)).toEqual(all);
  expect(await page.evaluate(() => window.resets)).toEqual([]);
  const moves = await page.evaluate(() => window.moves);
  expect(moves[0]).toEqual({ from: a.url, to: b.url });
  const state = await page.evaluate(() => window.bridge.state());
  expect(state.sockets.evolution.url).toBe(`${b.url.replace("http", "ws")}/evolution`);
  expect(state.nodes.map((n) => [n.url, n.current, n.breaker.state])).toEqual([
    [a.url, false, "open"],
    [b.url, true, "closed"],
  ]);

  // The message arrived once, from the page's agent.
  const msg = await receiver.waitFor((f) => f.type === "message", "the page's message");
  expect([msg.from, msg.content]).toEqual(["failover-page", { job: 7 }]);
  receiver.send({ type: "ack", id: msg.id, from: msg.from });
  await page.waitForTimeout(500);
  expect(receiver.frames.filter((f) => f.type === "message").length).toBe(1);
  receiver.close();

  // Node B's dashboard shows the page's bridge, reporting to node b.
  const bridgeId = state.bridgeId;
  await expect
    .poll(async () => {
      const r = await fetch(`${b.url}/api/bridges`);
      const list = (await r.json()).bridges ?? [];
      return list.find((x) => x.bridgeId === bridgeId)?.node;
    }, { timeout: 10_000 })
    .toBe("b");
  const dash = await page.context().newPage();
  await dash.goto(`${b.url}/`);
  await expect(dash.locator("#bridge-list")).toContainText(bridgeId, { timeout: 10_000 });
  await page.evaluate(() => window.bridge.stop());
});
