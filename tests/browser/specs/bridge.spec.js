// The bridge's own browser suite (it was a wasm-bindgen-test suite in Rust until
// the I/O moved to the JS driver): the bridge in Chromium against the live backend
// that global-setup.js starts with --demo. Faults come from the backend's demo switch.
//
// Every test runs in a quiet page on its own
// local origin (PAGES_URL/overhead.html: it never starts a bridge), imports the
// module from the backend and gives each bridge an explicit `backendUrl`. Only
// the bridge's public JS API is used.
import http from "node:http";
import { test, expect } from "@playwright/test";
import { backendUrl } from "./helpers.js";

const DEAD = "http://127.0.0.1:9";

/**
 * What every test has in its page as `window.T` (the Rust file's helpers): runs
 * in the page, so it must not close over anything of this module.
 */
async function installHelpers(backend) {
  const { default: init, Bridge } = await import(`${backend}/pkg/bridge_wasm.js`);
  await init();
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const unique = (prefix) => `${prefix}${Math.floor(Math.random() * 1e9)}`;
  /** Waits (polling every 20 ms, at most `ms`) until `cond` holds; throws naming `what`. */
  async function waitFor(what, ms, cond) {
    const start = Date.now();
    while (!cond()) {
      if (Date.now() - start >= ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(20);
    }
  }
  /** An HTTP call to the backend from the page; resolves with {status, body} (JSON body or null). */
  async function http(method, path, body) {
    const init = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const resp = await fetch(`${backend}${path}`, init);
    const text = await resp.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: resp.status, body: json };
  }
  async function fault(body) {
    const { status, body: out } = await http("POST", "/api/demo/faults", body);
    if (status !== 200) throw new Error(`setting a demo fault: ${status} ${JSON.stringify(out)}`);
  }
  async function publish(topic, data) {
    const { status, body: out } = await http("POST", "/api/evolution/publish", { topic, data });
    if (status !== 200) throw new Error(`publishing to ${topic}: ${status} ${JSON.stringify(out)}`);
    return out.seq;
  }
  /** `new Bridge(config)` on this backend with a fresh bridge id unless the config names them. */
  function bridge(config) {
    const c = { ...config };
    if (!("backendUrl" in c)) c.backendUrl = backend;
    if (!("bridgeId" in c)) c.bridgeId = unique("test-");
    return new Bridge(c);
  }
  const state = (b) => JSON.parse(JSON.stringify(b.state()));
  const breaker = (b, name) => state(b).breakers.find((x) => x.name === name) ?? null;
  const socketState = (b, name) => state(b).sockets?.[name]?.state ?? "";
  const op = (b, tool) => state(b).retry.operations[tool];
  /** Collects what a JS callback receives (as JSON, like the Rust Collector). */
  function collector() {
    const items = [];
    return { items, fn: (v) => items.push(JSON.parse(JSON.stringify(v))), seqs: () => items.map((e) => e.seq).filter((s) => typeof s === "number") };
  }
  /** `bridge.fetch(backend + path, undefined, options)`: {status} or {error: {code, message, attempts, cause_code}}. */
  async function fetchVia(b, path, options) {
    try {
      const r = await b.fetch(`${backend}${path}`, undefined, options);
      return { status: r.status };
    } catch (e) {
      return { error: { code: e?.code ?? null, message: e?.message ?? null, attempts: e?.attempts ?? null, cause_code: e?.cause?.code ?? null } };
    }
  }
  /** What a send settles with: {ack} or {error: {code, message}}. */
  async function acked(send) {
    try {
      return { ack: await send };
    } catch (e) {
      return { error: { code: e?.code ?? null, message: e?.message ?? null } };
    }
  }
  /** A plain browser WebSocket agent, independent of the bridge under test. */
  async function rawAgent(name) {
    const ws = new WebSocket(`${backend.replace("http", "ws")}/agents`);
    const frames = [];
    ws.onmessage = (e) => frames.push(JSON.parse(e.data));
    await waitFor("the raw agent socket to open", 5000, () => ws.readyState === WebSocket.OPEN);
    const agent = {
      ws,
      frames,
      send: (v) => ws.send(JSON.stringify(v)),
      messages: () => frames.filter((f) => f.type === "message"),
    };
    agent.send({ type: "hello", protocol: 1, client: name });
    agent.send({ type: "register", id: "r", agent: name, takeover: true });
    await waitFor("the raw agent's register ack", 5000, () => frames.some((f) => f.type === "ack"));
    return agent;
  }
  /** A bridge with only the agents socket, as an agent of its own, connected. */
  async function a2aPair() {
    const b = bridge({
      sockets: ["agents"],
      report: false,
      agent: { name: unique("sender-") },
      policies: { connectAgentSocket: { baseDelayMs: 20, maxDelayMs: 100 } },
    });
    await b.start();
    await waitFor("the agents socket to open", 5000, () => socketState(b, "agents") === "open");
    await sleep(100);
    return b;
  }
  /**
   * Runs `body(store, arg)` (with `store` the readwrite store of the open `bridge-outbox`
   * database) and waits for its transaction to complete; resolves with what `body` returns
   * (a function of nothing, called once the transaction completed, or a plain value).
   */
  function outboxDb(body, arg) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open("bridge-outbox", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("entries", { keyPath: "id" });
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction("entries", "readwrite");
        const store = tx.objectStore("entries");
        const out = body(store, arg);
        tx.oncomplete = () => {
          db.close();
          resolve(typeof out === "function" ? out() : (out ?? null));
        };
        tx.onerror = () => reject(tx.error);
      };
    });
  }
  /** A kept-outbox entry a page load long gone left: a `send` of `content` to `to` by `agent` of `bridge`. */
  function orphan(bridge, agent, to, content, ageMs = 1000) {
    const id = unique("orphan-");
    const frame = JSON.stringify({ type: "send", id, to, message_type: "note", content });
    return { id, bridge, agent, instance: "a-page-long-gone", socket: "agents", tool: "sendA2AMessage", created: Date.now() - ageMs, frame };
  }
  /** Puts `entries` in the kept outbox. */
  const putKept = (entries) => outboxDb((store, list) => list.forEach((e) => store.put(e)), entries);
  /** The ids in the kept outbox of bridge `id`. */
  const keptIds = (id) =>
    outboxDb((store) => {
      const r = store.getAll();
      return () => r.result.filter((e) => e.bridge === id).map((e) => e.id);
    });
  window.T = { Bridge, backend, sleep, unique, waitFor, http, fault, publish, bridge, state, breaker, socketState, op, collector, fetchVia, acked, rawAgent, a2aPair, outboxDb, orphan, putKept, keptIds };
}

test.beforeEach(async ({ page }) => {
  await page.goto(`${process.env.PAGES_URL}/overhead.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 }).catch((e) => {
    throw new Error(`the test page to load the module: ${e.message}`);
  });
  await page.evaluate(installHelpers, backendUrl());
});

// A failed test must not leave a fault behind for the next one.
test.afterEach(async () => {
  await fetch(`${backendUrl()}/api/demo/faults`, { method: "DELETE" });
});

/** Waits in the page (polling every 20 ms, at most `ms`) until `predicate(arg)` holds; fails naming `what`. */
async function waitFor(page, what, ms, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { polling: 20, timeout: ms });
  } catch (e) {
    if (e.name !== "TimeoutError") throw e;
    const s = await page.evaluate(() => (window.b ? JSON.stringify(window.b.state()) : "no bridge")).catch(() => "?");
    throw new Error(`timed out after ${ms} ms waiting for ${what}; state: ${s}`);
  }
}

const sleep = (page, ms) => page.waitForTimeout(ms);
const stateOf = (page) => page.evaluate(() => T.state(window.b));
const stop = (page) => page.evaluate(() => window.b.stop());


test("subscribes and receives events in order", async ({ page }) => {
  await page.evaluate(async () => {
    window.b = T.bridge({ sockets: ["evolution"], report: false });
    await b.start();
  });
  await waitFor(page, "the evolution socket to open", 5000, () => T.socketState(b, "evolution") === "open");
  const seqs = await page.evaluate(async () => {
    const topic = T.unique("t.");
    window.events = T.collector();
    window.sub = b.subscribe(topic, events.fn);
    await T.sleep(100);
    const seqs = [];
    for (let i = 0; i < 5; i++) seqs.push(await T.publish(topic, { i }));
    return seqs;
  });
  await waitFor(page, "5 events", 5000, () => events.items.length === 5);
  const got = await page.evaluate(() => ({ seqs: events.seqs(), items: events.items, held: T.state(b).heldValues }));
  expect(got.seqs).toEqual(seqs);
  expect(got.items[4].data.i).toBe(4);
  expect(got.held, "the module gave back every frame it was handed").toBe(0);
  await stop(page);
});

test("reconnects and resumes without loss or duplicates", async ({ page }) => {
  await page.evaluate(async () => {
    window.b = T.bridge({
      sockets: ["evolution"],
      report: false,
      policies: { connectEvolutionSocket: { baseDelayMs: 20, maxDelayMs: 200 } },
    });
    await b.start();
  });
  await waitFor(page, "the evolution socket to open", 5000, () => T.socketState(b, "evolution") === "open");
  await page.evaluate(async () => {
    window.topic = T.unique("resume.");
    window.events = T.collector();
    window.sub = b.subscribe(topic, events.fn);
    await T.sleep(100);
    window.expected = [];
    for (let i = 0; i < 3; i++) expected.push(await T.publish(topic, i));
  });
  await waitFor(page, "the first 3 events", 5000, () => events.items.length === 3);
  // The backend cuts the connection; events published meanwhile must arrive once, in order.
  await page.evaluate(async () => {
    window.droppedAt = Date.now();
    await T.fault({ target: "evolution", mode: "drop" });
    for (let i = 3; i < 8; i++) expected.push(await T.publish(topic, i));
  });
  await waitFor(page, "all 8 events after the reconnect", 10_000, () => events.items.length >= 8);
  const resumedMs = await page.evaluate(() => Date.now() - droppedAt);
  await sleep(page, 200);
  const got = await page.evaluate(() => ({ seqs: events.seqs(), expected, state: T.state(b) }));
  expect(got.seqs, "no loss, no duplicate, no reordering").toEqual(got.expected);
  expect(got.state.sockets.evolution.reconnects, JSON.stringify(got.state)).toBeGreaterThanOrEqual(1);
  console.log(`FIGURE resume after drop: ${resumedMs.toFixed(0)} ms`);
  await stop(page);
});

test("five failed connects open the breaker which half opens and closes", async ({ page }) => {
  // Upgrades are refused for 1.5 s: every connect fails, as against a dead port.
  await page.evaluate(async () => {
    await T.fault({ target: "agents", mode: "fail", duration_ms: 1500 });
    window.b = T.bridge({
      sockets: ["agents"],
      report: false,
      policies: { connectAgentSocket: { baseDelayMs: 10, maxDelayMs: 40 } },
      breakers: { connectAgentSocket: { resetTimeoutMs: 600, successThreshold: 1 } },
    });
    await b.start();
  });
  await waitFor(page, "the breaker to open", 5000, () => T.breaker(b, "connectAgentSocket")?.state === "open");
  const open = await page.evaluate(() => T.breaker(b, "connectAgentSocket"));
  expect(open.failures, `opened after exactly 5 consecutive failures: ${JSON.stringify(open)}`).toBe(5);
  expect(open.transitions[0].reason).toBe("consecutive_failures");
  // The fault ends; after the reset timeout a trial connect succeeds and closes it.
  await waitFor(page, "the breaker to close again", 8000, () => T.breaker(b, "connectAgentSocket")?.state === "closed");
  const closed = await page.evaluate(() => T.breaker(b, "connectAgentSocket"));
  const path = closed.transitions.map((t) => t.to);
  expect(
    path.some((to, i) => to === "half_open" && path[i + 1] === "closed"),
    `went through half-open: ${JSON.stringify(path)}`,
  ).toBe(true);
  expect(path[0]).toBe("open");
  await waitFor(page, "the socket to open", 5000, () => T.socketState(b, "agents") === "open");
  await stop(page);
});

test("a dead port opens the breaker and failed trials reopen it", async ({ page }) => {
  await page.evaluate(async (dead) => {
    window.b = T.bridge({
      backendUrl: dead,
      sockets: ["evolution"],
      report: false,
      policies: { connectEvolutionSocket: { baseDelayMs: 10, maxDelayMs: 40 } },
      breakers: { connectEvolutionSocket: { resetTimeoutMs: 200 } },
    });
    await b.start();
  }, DEAD);
  await waitFor(page, "open -> half_open -> open", 8000, () =>
    (T.breaker(b, "connectEvolutionSocket")?.transitions ?? []).some((x) => x.reason === "trial_failed"),
  );
  expect(await page.evaluate(() => T.socketState(b, "evolution")), "it never connected").toBe("connecting");
  await stop(page);
});

test("fetch retries a 503 then succeeds and does not retry a 404", async ({ page }) => {
  const first = await page.evaluate(async () => {
    window.b = T.bridge({ sockets: [], report: false, policies: { fetch: { baseDelayMs: 10 } } });
    await T.fault({ target: "echo", mode: "status", status: 503, count: 2 });
    return T.fetchVia(b, "/api/demo/echo", {});
  });
  expect(first.error, "succeeds on the third attempt").toBeUndefined();
  expect(first.status).toBe(200);
  const m = await page.evaluate(() => T.op(b, "fetch"));
  expect([m.attempts, m.retries, m.successes], JSON.stringify(m)).toEqual([3, 2, 1]);

  const second = await page.evaluate(() => T.fetchVia(b, "/api/demo/no-such-thing", { tool: "fetch404" }));
  expect(second.error, "a 404 resolves").toBeUndefined();
  expect(second.status).toBe(404);
  expect((await page.evaluate(() => T.op(b, "fetch404"))).attempts, "not retried").toBe(1);
});

test("fetch honours Retry-After", async ({ page }) => {
  const r = await page.evaluate(async () => {
    window.b = T.bridge({ sockets: [], report: false, policies: { fetchRetryAfter: { baseDelayMs: 10 } } });
    await T.fault({ target: "echo", mode: "status", status: 429, count: 1, retry_after_s: 1 });
    const started = Date.now();
    const out = await T.fetchVia(b, "/api/demo/echo", { tool: "fetchRetryAfter" });
    return { ...out, waited: Date.now() - started };
  });
  expect(r.error, "succeeds after waiting").toBeUndefined();
  expect(r.status).toBe(200);
  expect(r.waited, `waited ${r.waited} ms: the 1 s Retry-After, not the 10 ms backoff`).toBeGreaterThanOrEqual(950);
  expect(r.waited, `waited ${r.waited} ms`).toBeLessThan(3000);
});

test("fetch times out a hanging response", async ({ page }) => {
  const r = await page.evaluate(async () => {
    window.b = T.bridge({
      sockets: [],
      report: false,
      policies: { fetchHang: { attemptTimeoutMs: 200, maxRetries: 1, baseDelayMs: 10, deadlineMs: 2000 } },
    });
    await T.fault({ target: "echo", mode: "hang", duration_ms: 3000 });
    const started = Date.now();
    const out = await T.fetchVia(b, "/api/demo/echo", { tool: "fetchHang" });
    const took = Date.now() - started;
    await T.http("DELETE", "/api/demo/faults");
    return { ...out, took };
  });
  expect(r.error, `times out: ${JSON.stringify(r)}`).toBeDefined();
  const e = r.error;
  expect(e.code, JSON.stringify(e)).toBe("retries_exhausted");
  expect(e.cause_code, JSON.stringify(e)).toBe("timeout");
  expect(e.attempts).toBe(2);
  expect(r.took, `two 200 ms attempts, took ${r.took} ms`).toBeGreaterThanOrEqual(400);
  expect(r.took, `two 200 ms attempts, took ${r.took} ms`).toBeLessThan(1500);
});

test("fetch is cancelled by the caller's signal, in init as in plain fetch or in options", async ({ page }) => {
  const r = await page.evaluate(async () => {
    window.b = T.bridge({ sockets: [], report: false });
    await T.fault({ target: "echo", mode: "hang", duration_ms: 3000 });
    const cancelled = async (where) => {
      const controller = new AbortController();
      const p =
        where === "init"
          ? b.fetch(`${T.backend}/api/demo/echo`, { signal: controller.signal })
          : b.fetch(`${T.backend}/api/demo/echo`, undefined, { signal: controller.signal });
      await T.sleep(100);
      const started = Date.now();
      controller.abort();
      let out;
      try {
        await p;
        out = { resolved: true };
      } catch (e) {
        out = { code: e?.code ?? null };
      }
      out.took = Date.now() - started;
      return out;
    };
    const out = { options: await cancelled("options"), init: await cancelled("init") };
    await T.http("DELETE", "/api/demo/faults");
    return out;
  });
  for (const where of ["options", "init"]) {
    expect(r[where].resolved, `cancelled through ${where}`).toBeUndefined();
    expect(r[where].took).toBeLessThan(500);
    expect(r[where].code).toBe("cancelled");
  }
});

test("sendA2A across a forced reconnect is delivered exactly once", async ({ page }) => {
  await page.evaluate(async () => {
    window.receiver = T.unique("recv-");
    window.agent = await T.rawAgent(receiver);
    window.b = await T.a2aPair();
  });
  // The worst case: the server accepts the message, then the connection is cut before the
  // ack. The bridge re-sends with the same id after reconnecting; the server recognises it.
  const sent = await page.evaluate(async () => {
    await T.fault({ target: "agents", mode: "cut_after_accept" });
    return T.acked(b.sendA2A({ to: receiver, messageType: "note", content: { n: 1 } }));
  });
  expect(sent.error, "acked").toBeUndefined();
  expect(sent.ack.duplicate, `the re-sent message was recognised, not delivered again: ${JSON.stringify(sent.ack)}`).toBe(true);
  expect((await stateOf(page)).sockets.agents.reconnects).toBeGreaterThanOrEqual(1);
  await waitFor(page, "the message", 5000, () => agent.messages().length > 0);
  await sleep(page, 500);
  const got = await page.evaluate(() => agent.messages());
  expect(got.length, `exactly once: ${JSON.stringify(got)}`).toBe(1);
  expect(got[0].content).toEqual({ n: 1 });
  await page.evaluate((m) => agent.send({ type: "ack", id: m.id, from: m.from }), got[0]);
  await stop(page);
});

test("sendA2A while disconnected waits in the outbox and goes out once", async ({ page }) => {
  // The receiver registers first, so the server knows the name whenever the re-sent
  // message arrives (the bridge may reconnect before the receiver is back).
  await page.evaluate(async () => {
    window.receiver = T.unique("recv-");
    window.first = await T.rawAgent(receiver);
    window.b = await T.a2aPair();
  });
  const sent = await page.evaluate(async () => {
    // Cut every agents connection: the bridge's and the receiver's.
    await T.fault({ target: "agents", mode: "drop" });
    const p = b.sendA2A({ to: receiver, messageType: "note", content: 2 });
    // The receiver comes back (taking its name over) and gets the message, queued or live.
    window.agent = await T.rawAgent(receiver);
    return T.acked(p);
  });
  expect(sent.error, "acked after the reconnect").toBeUndefined();
  expect(sent.ack.type, JSON.stringify(sent.ack)).toBe("ack");
  await waitFor(page, "the message", 5000, () => agent.messages().length > 0);
  await sleep(page, 300);
  expect(await page.evaluate(() => agent.messages().length)).toBe(1);
  await stop(page);
});

test("a full outbox rejects at once with outbox_full", async ({ page }) => {
  const r = await page.evaluate(async (dead) => {
    window.b = T.bridge({
      backendUrl: dead,
      sockets: ["agents"],
      report: false,
      outboxLimit: 2,
      policies: { sendA2AMessage: { maxRetries: 0, attemptTimeoutMs: 60000 } },
    });
    await b.start();
    const send = (n) => b.sendA2A({ to: "nobody", messageType: "note", content: n });
    // The two that fill the outbox fail with `stopped` at the end; nobody waits for them.
    window.held = [send(1), send(2)];
    held.forEach((p) => p.catch(() => {}));
    await T.sleep(50);
    const started = Date.now();
    let out;
    try {
      await send(3);
      out = { resolved: true };
    } catch (e) {
      out = { code: e?.code ?? null };
    }
    out.took = Date.now() - started;
    return out;
  }, DEAD);
  expect(r.resolved, "the outbox holds 2").toBeUndefined();
  expect(r.took, "rejected at once").toBeLessThan(100);
  expect(r.code).toBe("outbox_full");
  await stop(page);
});

test("the kept outbox is bounded and cleared when requests settle", async ({ page }) => {
  await page.evaluate(async (dead) => {
    window.b = T.bridge({
      backendUrl: dead,
      sockets: ["agents"],
      report: false,
      agent: { name: T.unique("kept-") },
      persistOutbox: { maxEntries: 2 },
      policies: { sendA2AMessage: { maxRetries: 0, attemptTimeoutMs: 60000 } },
    });
    await b.start();
    const send = (n) => b.sendA2A({ to: "nobody", messageType: "note", content: n });
    window.pending = [1, 2, 3].map(send).map((p) => p.then((v) => ({ resolved: v }), (e) => ({ code: e?.code ?? null })));
  }, DEAD);
  await waitFor(page, "two kept, one refused", 3000, () => {
    const k = T.state(b).kept;
    return k?.entries === 2 && k?.refused === 1;
  });
  const { all, id } = await page.evaluate(async () => ({
    all: await T.outboxDb((store) => {
      const r = store.getAll();
      return () => r.result;
    }),
    id: b.id,
  }));
  const mine = all.filter((e) => e.bridge === id).length;
  expect(mine, `the two kept are in IndexedDB: ${JSON.stringify(all)}`).toBe(2);
  // Stopping settles them (the page is told `stopped`): nothing is left to re-send.
  await stop(page);
  const settled = await page.evaluate(() => Promise.all(pending));
  for (const s of settled) {
    expect(s.resolved, "stopped").toBeUndefined();
    expect(s.code).toBe("stopped");
  }
  expect((await stateOf(page)).kept.entries).toBe(0);
});

test("an orphan too old is reported expired and not sent", async ({ page }) => {
  const entry = await page.evaluate(async (dead) => {
    const bridgeId = T.unique("old-");
    const agent = T.unique("agent-");
    const entry = {
      id: T.unique("gone-"),
      bridge: bridgeId,
      agent,
      instance: "a-page-long-gone",
      socket: "agents",
      tool: "sendA2AMessage",
      created: Date.now() - 10_000,
      frame: '{"type":"send","id":"x","to":"nobody","message_type":"note","content":1}',
    };
    await T.outboxDb((store, arg) => {
      store.put(arg);
    }, entry);
    window.b = T.bridge({
      bridgeId,
      backendUrl: dead,
      sockets: ["agents"],
      report: false,
      agent: { name: agent },
      persistOutbox: { maxAgeMs: 1000 },
    });
    window.recovered = T.collector();
    b.addEventListener("recovered", recovered.fn);
    await b.start();
    return entry;
  }, DEAD);
  await waitFor(page, "the expired entry's event", 3000, () => recovered.items.length === 1);
  const event = await page.evaluate(() => recovered.items[0]);
  expect([event.id, event.outcome]).toEqual([entry.id, "expired"]);
  expect((await stateOf(page)).kept.expired).toBe(1);
  expect((await stateOf(page)).kept.recovered).toBe(0);
  const left = await page.evaluate(
    (id) =>
      T.outboxDb((store, arg) => {
        const r = store.get(arg);
        return () => r.result ?? null;
      }, id),
    entry.id,
  );
  expect(left, "deleted from IndexedDB").toBeNull();
  await stop(page);
});

test("a claim takes only what the outbox has room for; the rest is claimed as room frees up, none lost", async ({ page }) => {
  const r = await page.evaluate(async () => {
    const bridgeId = T.unique("room-");
    const agent = T.unique("agent-");
    const to = T.unique("recv-");
    window.receiver = await T.rawAgent(to);
    // Five orphans, oldest first, for an outbox of two.
    const entries = [1, 2, 3, 4, 5].map((n) => T.orphan(bridgeId, agent, to, n, 5000 - n));
    await T.putKept(entries);
    window.b = T.bridge({ bridgeId, sockets: ["agents"], report: false, agent: { name: agent }, outboxLimit: 2 });
    window.recovered = T.collector();
    b.addEventListener("recovered", recovered.fn);
    await b.start();
    const claimed = T.state(b).kept.recovered;
    // Each one still kept, or delivered already (the socket may be quick).
    const kept = await T.keptIds(bridgeId);
    const accounted = entries.every((e) => kept.includes(e.id) || recovered.items.some((x) => x.id === e.id && x.outcome === "delivered"));
    return { ids: entries.map((e) => e.id), claimed, accounted, bridgeId };
  });
  expect(r.claimed, "claimed at start: the outbox's room").toBe(2);
  expect(r.accounted, "the other three stay in IndexedDB").toBe(true);
  await waitFor(page, "five recovered events", 10_000, () => recovered.items.length === 5);
  const after = await page.evaluate(async (id) => ({ events: recovered.items, left: await T.keptIds(id), got: receiver.messages() }), r.bridgeId);
  expect(after.events.map((e) => [e.id, e.outcome])).toEqual(r.ids.map((id) => [id, "delivered"]));
  expect(after.got.map((m) => m.content), "each delivered once, oldest first").toEqual([1, 2, 3, 4, 5]);
  expect(after.left, "nothing left kept").toEqual([]);
  await stop(page);
});

test("what was kept for an agent registered with registerAgent is claimed once it registers", async ({ page }) => {
  const r = await page.evaluate(async () => {
    const bridgeId = T.unique("reg-");
    const agent = T.unique("agent-");
    const to = T.unique("recv-");
    window.receiver = await T.rawAgent(to);
    const entry = T.orphan(bridgeId, agent, to, "kept");
    await T.putKept([entry]);
    window.b = T.bridge({ bridgeId, sockets: ["agents"], report: false });
    window.recovered = T.collector();
    b.addEventListener("recovered", recovered.fn);
    await b.start();
    // Registered later than the start's claims.
    await T.waitFor("the agents socket to open", 5000, () => T.socketState(b, "agents") === "open");
    const before = T.state(b).kept.recovered;
    await b.registerAgent(agent, []);
    return { id: entry.id, before };
  });
  expect(r.before, "not claimed before the agent registers").toBe(0);
  await waitFor(page, "the entry's recovered event", 5000, () => recovered.items.length === 1);
  const event = await page.evaluate(() => recovered.items[0]);
  expect([event.id, event.outcome]).toEqual([r.id, "delivered"]);
  await waitFor(page, "the message", 5000, () => receiver.messages().length === 1);
  expect(await page.evaluate(() => receiver.messages()[0].content)).toBe("kept");
  await stop(page);
});

test("a stop during start wins: no lock or lead is taken, and no kept entry is deleted unsent", async ({ page }) => {
  const r = await page.evaluate(async (dead) => {
    const bridgeId = T.unique("abandoned-");
    const agent = T.unique("agent-");
    const entry = T.orphan(bridgeId, agent, "nobody", 1);
    await T.putKept([entry]);
    window.b = T.bridge({ bridgeId, backendUrl: dead, sockets: ["agents"], report: false, agent: { name: agent } });
    window.recovered = T.collector();
    b.addEventListener("recovered", recovered.fn);
    const held = async () => (await navigator.locks.query()).held.map((l) => l.name).filter((n) => n.startsWith("bridge-"));
    const seen = async () => {
      // A lock let go is released a moment later: wait for that (at most 1 s), not for a lock kept.
      for (const t0 = Date.now(); (await held()).length && Date.now() - t0 < 1000; ) await T.sleep(20);
      return { held: await held(), role: T.state(b).tabs?.role ?? "none", kept: await T.keptIds(bridgeId), events: recovered.items.length };
    };
    // Stopped while start() joins the other tabs.
    let started = b.start();
    b.stop();
    await started;
    const joining = await seen();
    // Stopped while start() waits to claim the kept outbox (this page holds the claim lock first).
    let release;
    const blocker = new Promise((resolve) => (release = resolve));
    await new Promise((granted) => navigator.locks.request("bridge-outbox-claim", () => (granted(), blocker)));
    started = b.start();
    const t0 = Date.now();
    while (!(await navigator.locks.query()).pending.some((l) => l.name === "bridge-outbox-claim")) {
      if (Date.now() - t0 > 3000) throw new Error("timed out after 3000 ms waiting for start() to wait for the claim lock");
      await T.sleep(20);
    }
    b.stop();
    release();
    await started;
    const claiming = await seen();
    // A start that completes claims it; its stop gives it back, unsent.
    await b.start();
    const claimed = T.state(b).kept.recovered;
    b.stop();
    return { id: entry.id, joining, claiming, claimed, stopped: await seen() };
  }, DEAD);
  for (const at of ["joining", "claiming"]) {
    expect(r[at], at).toEqual({ held: [], role: "none", kept: [r.id], events: 0 });
  }
  expect(r.claimed).toBe(1);
  expect(r.stopped, "stopped with the entry claimed").toEqual({ held: [], role: "none", kept: [r.id], events: 0 });
});

test("health changes are events and reports reach the backend", async ({ page }) => {
  await page.evaluate(async () => {
    window.b = T.bridge({ healthIntervalMs: 200 });
    window.changes = T.collector();
    b.addEventListener("health", changes.fn);
    await b.start();
  });
  await waitFor(page, "backend and both sockets to be healthy", 8000, () => {
    const h = T.state(b).health;
    return ["backend", "evolutionSocket", "agentSocket"].every((c) => h.components[c]?.status === "healthy");
  });
  const seen = await page.evaluate(() => changes.items);
  expect(seen.some((c) => c.aggregateTo === "healthy")).toBe(true);
  expect(
    seen.every((c) => c.to !== "degraded" && c.to !== "unhealthy"),
    `no spurious degradation while connecting: ${JSON.stringify(seen)}`,
  ).toBe(true);
  const n = await page.evaluate(() => changes.items.length);
  await sleep(page, 600);
  expect(await page.evaluate(() => changes.items.length), "no change, no event").toBe(n);
  const id = await page.evaluate(() => b.id);
  await waitFor(page, "the backend to hold this bridge's report", 5000, () => (T.state(b).reportsSent ?? 0) >= 1);
  const list = await page.evaluate(() => T.http("GET", "/api/bridges"));
  const mine = list.body.bridges.find((x) => x.bridgeId === id);
  expect(mine, "listed").toBeDefined();
  expect(mine.report.health.status).toBe("healthy");
  expect(mine.stale).toBe(false);
  await stop(page);
});

test("call keeps the policy exact on its fast path", async ({ page }) => {
  // Success on the first try, many times: counted, breaker closed, no retries.
  const fast = await page.evaluate(async () => {
    window.b = T.bridge({ sockets: [], report: false, policies: { flaky: { baseDelayMs: 5 } } });
    const ok = (_ctx) => 7;
    const results = [];
    for (let i = 0; i < 40; i++) results.push(await b.call("quick", ok));
    const s = T.state(b);
    return { results, quick: s.retry.operations.quick, breaker: s.breakers.find((x) => x.name === "quick") ?? null };
  });
  expect(fast.results).toEqual(Array(40).fill(7));
  const quick = fast.quick;
  expect([quick.calls, quick.attempts, quick.retries]).toEqual([40, 40, 0]);
  expect(quick.latency.count, "a sample of calls is timed").toBeGreaterThanOrEqual(1);
  expect(fast.breaker, "the quick breaker").not.toBeNull();
  expect([fast.breaker.state, fast.breaker.successes]).toEqual(["closed", 40]);

  // Fails twice, then succeeds: exactly 3 attempts (the fast path's first try counts as attempt 1).
  const flaky = await page.evaluate(async () => {
    let calls = 0;
    const numbering = [];
    const flaky = (ctx) => {
      calls += 1;
      numbering.push([ctx.attempt, calls]);
      if (ctx.attempt < 3) throw new Error("flaky");
      return 42;
    };
    const result = await b.call("flaky", flaky);
    return { result, calls, numbering, m: T.state(b).retry.operations.flaky };
  });
  for (const [attempt, call] of flaky.numbering) expect(attempt, "attempts are numbered 1, 2, 3").toBe(call);
  expect(flaky.result).toBe(42);
  expect(flaky.calls).toBe(3);
  expect([flaky.m.attempts, flaky.m.retries], JSON.stringify(flaky.m)).toEqual([3, 2]);

  // A permanent error (a 404) is not retried.
  const permanent = await page.evaluate(async () => {
    try {
      await b.call("lookup", (_ctx) => {
        throw { message: "no such user", status: 404 };
      });
      return { resolved: true };
    } catch (e) {
      return { code: e?.code ?? null, attempts: T.state(b).retry.operations.lookup.attempts };
    }
  });
  expect(permanent.resolved).toBeUndefined();
  expect(permanent.code).toBe("permanent");
  expect(permanent.attempts).toBe(1);

  // A rejected promise behaves like a throw.
  const rejecting = await page.evaluate(async () => {
    try {
      await b.call("rejecting", (_ctx) => Promise.reject({ message: "nope", retryable: false }));
      return { resolved: true };
    } catch (e) {
      return { code: e?.code ?? null };
    }
  });
  expect(rejecting.resolved).toBeUndefined();
  expect(rejecting.code).toBe("permanent");

  // An isolated breaker refuses at once, without calling fn.
  const isolated = await page.evaluate(async () => {
    const isolatedNow = b.isolateBreaker("quick");
    let called = false;
    const never = (_ctx) => {
      called = true;
      throw new Error("an open breaker must not call fn");
    };
    try {
      await b.call("quick", never);
      return { isolatedNow, called, resolved: true };
    } catch (e) {
      return { isolatedNow, called, code: e?.code ?? null };
    }
  });
  expect(isolated.isolatedNow).toBe(true);
  expect(isolated.called, "an open breaker must not call fn").toBe(false);
  expect(isolated.resolved).toBeUndefined();
  expect(isolated.code).toBe("circuit_open");
});

test("call refuses a tool that is not a string and an fn that is not a function, at once", async ({ page }) => {
  const r = await page.evaluate(async () => {
    window.b = T.bridge({ sockets: [], report: false });
    const outcome = async (p) => {
      try {
        await p;
        return "resolved";
      } catch (e) {
        return e.code;
      }
    };
    return {
      tool: await outcome(b.call(42, () => 1)),
      fn: await outcome(b.call("notAFunction", "nope")),
      metrics: T.state(b).retry.operations.notAFunction ?? null,
    };
  });
  expect(r.tool).toBe("invalid_argument");
  expect(r.fn).toBe("invalid_argument");
  expect(r.metrics, "nothing ran, nothing retried").toBeNull();
});

test("content that cannot be sent as JSON is refused with invalid_argument, naming it", async ({ page }) => {
  const r = await page.evaluate(async () => {
    const b = T.bridge({ report: false });
    const cycle = {};
    cycle.self = cycle;
    const outcome = async (p) => {
      try {
        await p;
        return "resolved";
      } catch (e) {
        return `${e.code} ${e.message}`;
      }
    };
    return {
      send: await outcome(b.sendA2A({ to: "bob", messageType: "note", content: { n: 1n } })),
      broadcast: await outcome(b.broadcast("note", cycle)),
      request: await outcome(b.request("evolve", () => 1)),
      outbox: T.state(b).sockets.agents.outbox,
    };
  });
  expect(r.send.startsWith("invalid_argument sendA2A: content: cannot be sent as JSON: "), r.send).toBe(true);
  expect(r.broadcast.startsWith("invalid_argument broadcast: content: cannot be sent as JSON: "), r.broadcast).toBe(true);
  expect(r.request).toBe("invalid_argument request: params: cannot be sent as JSON (a function)");
  expect(r.outbox, "nothing waits to be sent").toBe(0);
});

test("a WebMCP provider that throws on register gives webmcp_failed, and the tool is not listed", async ({ page }) => {
  const r = await page.evaluate(async () => {
    const refusal = new Error("no more tools");
    Object.defineProperty(document, "modelContext", {
      configurable: true,
      value: {
        registerTool() {
          throw refusal;
        },
      },
    });
    const b = T.bridge({ sockets: [], report: false });
    let out;
    try {
      b.registerTool({ name: "pageTool", execute: () => 1 });
      out = { registered: true };
    } catch (e) {
      out = { code: e.code, message: e.message, cause: e.cause === refusal };
    }
    out.tools = b.state().webmcp.tools;
    delete document.modelContext;
    return out;
  });
  expect(r.code).toBe("webmcp_failed");
  expect(r.message).toBe("registering the WebMCP tool pageTool failed: no more tools");
  expect(r.cause, "the provider's error is the cause").toBe(true);
  expect(r.tools).toEqual([]);
});

test("a backend whose readyz stalls mid-body fails its health check on time", async ({ page }) => {
  // A node that sends the headers and the start of a body, then nothing: the probe's
  // timeout (5 s) must cover the body, or the check would wait for ever.
  const stalled = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "access-control-allow-origin": "*" });
    res.write('{"status":');
    stalled.push(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}`;
    const r = await page.evaluate(async (url) => {
      const b = T.bridge({ backendUrl: url, sockets: [], report: false });
      const started = Date.now();
      const health = await b.checkHealth();
      return { took: Date.now() - started, backend: health.components.backend };
    }, url);
    expect(r.backend.status).not.toBe("healthy");
    expect(r.backend.detail).toBe("backend unreachable: no answer within 5000 ms");
    expect(r.took).toBeLessThan(8000);
  } finally {
    for (const res of stalled) res.destroy();
    server.close();
  }
});

test("call's fast lane tells its successes in order, across batches", async ({ page }) => {
  // Two failures, ten successes, two failures: the successes (counted in the page and told
  // in batches) come between, so the breaker has 2 consecutive failures and stays closed.
  const r = await page.evaluate(async () => {
    window.b = T.bridge({
      sockets: [],
      report: false,
      policies: { lanes: { maxRetries: 0 } },
      breakers: { lanes: { failureThreshold: 3 } },
    });
    const fail = () => {
      throw new Error("down");
    };
    const codes = [];
    const failing = async () => {
      try {
        await b.call("lanes", fail);
      } catch (e) {
        codes.push(e.code);
      }
    };
    await failing();
    await failing();
    for (let i = 0; i < 10; i++) await b.call("lanes", () => i);
    await failing();
    await failing();
    const after = T.breaker(b, "lanes");
    for (let i = 0; i < 200; i++) await b.call("lanes", () => i);
    return { codes, after, end: T.breaker(b, "lanes"), m: T.state(b).retry.operations.lanes };
  });
  expect(r.codes).toEqual(Array(4).fill("retries_exhausted"));
  expect([r.after.state, r.after.consecutiveFailures, r.after.successes, r.after.failures]).toEqual(["closed", 2, 10, 4]);
  expect([r.end.state, r.end.consecutiveFailures, r.end.successes]).toEqual(["closed", 0, 210]);
  expect([r.m.calls, r.m.successes, r.m.attempts]).toEqual([214, 210, 214]);
});

test("stop leaves no timer socket or task running", async ({ page }) => {
  await page.evaluate(async () => {
    window.b = T.bridge({ healthIntervalMs: 200, reportIntervalMs: 300 });
    await b.start();
  });
  await waitFor(
    page,
    "both sockets to open",
    5000,
    () => T.socketState(b, "evolution") === "open" && T.socketState(b, "agents") === "open",
  );
  await page.evaluate(() => {
    window.sub = b.subscribe("x.*", T.collector().fn);
  });
  await sleep(page, 300);
  expect((await stateOf(page)).liveTimers, "timers run while started").toBeGreaterThan(0);
  await stop(page);
  await sleep(page, 100);
  const s = await stateOf(page);
  expect(s.liveTimers, `every timer cleared: ${JSON.stringify(s)}`).toBe(0);
  expect(s.sockets.evolution.state).toBe("stopped");
  expect(s.sockets.agents.state).toBe("stopped");
  const reports = s.reportsSent;
  await sleep(page, 700);
  expect((await stateOf(page)).reportsSent, "no report after stop").toBe(reports);
  // And it can start again.
  await page.evaluate(() => b.start());
  await waitFor(page, "the sockets to reopen", 5000, () => T.socketState(b, "evolution") === "open");
  await stop(page);
});

test("stop ends call, fetch and prompt retries waiting their backoff, with stopped, and leaves no timer", async ({ page }) => {
  const r = await page.evaluate(async () => {
    const slow = { baseDelayMs: 5000, maxDelayMs: 5000 };
    const policies = { slowCall: slow, slowFetch: slow, sendLLMPrompt: slow };
    window.b = T.bridge({ sockets: [], report: false, policies, llmEndpoint: `${T.backend}/api/demo/echo` });
    await b.start();
    await T.fault({ target: "echo", mode: "status", status: 503, count: 10 });
    const code = (p) => p.then(() => "resolved", (e) => e.code);
    const called = code(
      b.call("slowCall", () => {
        throw new Error("down");
      }),
    );
    const fetched = code(b.fetch(`${T.backend}/api/demo/echo`, undefined, { tool: "slowFetch" }));
    const prompted = code(b.prompt({ prompt: "hello" }));
    // Each breaker hears of the first failure as its 5 s backoff starts.
    await T.waitFor("the three first attempts to fail", 5000, () =>
      ["slowCall", `fetch:${T.backend}`, "sendLLMPrompt"].every((n) => T.breaker(b, n)?.consecutiveFailures === 1),
    );
    await b.stop();
    const all = Promise.all([called, fetched, prompted]);
    const codes = await Promise.race([all, T.sleep(2000).then(() => "still waiting after 2 s")]);
    await T.http("DELETE", "/api/demo/faults");
    return { codes, timers: T.state(b).liveTimers };
  });
  expect(r.codes).toEqual(["stopped", "stopped", "stopped"]);
  expect(r.timers, "no backoff timer left").toBe(0);
});

test("a stop and a start at once: what the new run sends is not refused", async ({ page }) => {
  await page.evaluate(async () => {
    window.to = T.unique("recv-");
    window.agent = await T.rawAgent(to);
    window.b = await T.a2aPair();
  });
  const sent = await page.evaluate(async () => {
    b.stop();
    b.start();
    return T.acked(b.sendA2A({ to, messageType: "note", content: "after the restart" }));
  });
  expect(sent.error, JSON.stringify(sent)).toBeUndefined();
  expect(sent.ack.status).toMatch(/^(delivered|queued)$/);
  await stop(page);
});

test("invalid config names the field", async ({ page }) => {
  const r = await page.evaluate(() => {
    try {
      new T.Bridge({ healthIntervalMs: 5 });
      return { constructed: true };
    } catch (e) {
      return { code: e?.code ?? null, message: e?.message ?? null };
    }
  });
  expect(r.constructed, "new Bridge throws").toBeUndefined();
  expect(r.code).toBe("invalid_config");
  expect(typeof r.message).toBe("string");
  expect(r.message.startsWith("config.healthIntervalMs"), r.message).toBe(true);
});

test("a dead first node moves the bridge to the next one", async ({ page }) => {
  const backend = backendUrl();
  await page.evaluate(async (dead) => {
    window.b = T.bridge({
      backendUrl: [dead, T.backend],
      sockets: ["evolution"],
      report: false,
      policies: { connectEvolutionSocket: { baseDelayMs: 10, maxDelayMs: 40 } },
    });
    window.moves = T.collector();
    b.addEventListener("node", moves.fn);
    await b.start();
  }, DEAD);
  await waitFor(page, "the socket to open on the live node", 5000, () => T.socketState(b, "evolution") === "open");
  const { s, moved } = await page.evaluate(() => ({ s: T.state(b), moved: moves.items }));
  expect(s.node, JSON.stringify(s)).toBe(backend);
  expect(s.sockets.evolution.url).toBe(`${backend.replace("http", "ws")}/evolution`);
  expect(moved[0]).toEqual({ from: DEAD, to: backend });
  const nodes = s.nodes.map((n) => [n.url, n.current === true, n.breaker.state]);
  expect(nodes).toEqual([
    [DEAD, false, "open"],
    [backend, true, "closed"],
  ]);
  await stop(page);
});

test("a refused upgrade is explained by the node", async ({ page }) => {
  // A browser is not told why a WebSocket failed to open; the bridge asks the node.
  const r = await page.evaluate(async () => {
    await T.fault({ target: "agents", mode: "fail", duration_ms: 1000 });
    window.b = T.bridge({
      sockets: ["agents"],
      report: false,
      policies: { connectAgentSocket: { baseDelayMs: 10, maxDelayMs: 40 } },
      breakers: { connectAgentSocket: { resetTimeoutMs: 300, successThreshold: 1 } },
    });
    await b.start();
    const seen = [];
    const started = Date.now();
    for (;;) {
      const e = T.state(b).sockets.agents.lastError ?? "";
      if (e.includes("demo_fault")) return { explained: e };
      if (!seen.includes(e)) seen.push(e);
      if (Date.now() - started >= 3000) return { seen };
      await T.sleep(5);
    }
  });
  expect(r.explained, `no explanation within 3 s; errors seen: ${JSON.stringify(r.seen)}`).toBeDefined();
  expect(r.explained).toContain("demo fault on agents");
  expect((await stateOf(page)).node, "a node that answers is not left").toBe(backendUrl());
  await waitFor(page, "the socket to open once the fault ends", 8000, () => T.socketState(b, "agents") === "open");
  await stop(page);
});

// ---- the module's exports and the config (were bridge-wasm/tests/browser.rs) ----

test("the module exports its version and the built-in policies", async ({ page }) => {
  const r = await page.evaluate(async (backend) => {
    const m = await import(`${backend}/pkg/bridge_wasm.js`);
    return { version: m.version(), llm: m.defaultPolicies().sendLLMPrompt, fallback: m.policyFor("noSuchTool") };
  }, backendUrl());
  expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
  expect([r.llm.maxRetries, r.llm.baseDelayMs]).toEqual([2, 500]);
  expect(r.fallback.maxRetries).toBe(3);
});

test("backoff is capped and reproducible in the browser", async ({ page }) => {
  const [a, b] = await page.evaluate(async (backend) => {
    const m = await import(`${backend}/pkg/bridge_wasm.js`);
    return [Array.from(m.backoffDelays("connectEvolutionSocket", 42)), Array.from(m.backoffDelays("connectEvolutionSocket", 42))];
  }, backendUrl());
  expect(a).toEqual(b);
  expect(a).toHaveLength(5);
  // 200 ms base, ±20 %: the first delay is within [160, 240].
  expect(a[0]).toBeGreaterThanOrEqual(160);
  expect(a[0]).toBeLessThanOrEqual(240);
  expect(a.every((d) => d <= 30_000)).toBe(true);
});

test("config errors name the field", async ({ page }) => {
  const cases = [
    [{ healthIntervalMs: 5 }, "config.healthIntervalMs: must be between 100 and 3600000, got 5"],
    [{ healthIntervalMs: "fast" }, "config.healthIntervalMs: must be a number, got a string"],
    [{ backendUrl: "ftp://x" }, 'config.backendUrl: must start with http:// or https://, got "ftp://x"'],
    [{ backendUrl: ["http://a", "ftp://b"] }, 'config.backendUrl: must start with http:// or https://, got "ftp://b"'],
    [{ backendUrl: [] }, "config.backendUrl: give 1 to 16 URLs, got 0"],
    [{ backendUrl: 5 }, "config.backendUrl: must be a string or an array of strings, got a number"],
    [{ sockets: ["evolution", "chat"] }, 'config.sockets: "chat" is not a socket; use "evolution" and/or "agents"'],
    [{ agent: {} }, "config.agent.name: is required"],
    [{ policies: { fetch: { maxRetries: -1 } } }, "config.policies.fetch.maxRetries: must be a whole number of 0 or more"],
    [{ policies: { fetch: { jitter: { mode: "wild" } } } }, 'config.policies.fetch.jitter.mode: "wild" is not one of none, proportional, full, decorrelated'],
    [{ policies: { fetch: { jitter: { mode: "full", ratio: 0.5 } } } }, 'config.policies.fetch.jitter: mode "full" takes no ratio'],
    [{ breakers: { llm: { failureThreshold: 0 } } }, "config.breakers.llm: failureThreshold must be at least 1"],
    [{ retryBudget: { ratio: 20 } }, "config.retryBudget: retry budget ratio must be between 0 and 10, got 20"],
    [{ persistOutbox: "yes" }, "config.persistOutbox: must be true, false or an object"],
    [{ persistOutbox: { maxEntries: 0 } }, "config.persistOutbox.maxEntries: must be between 1 and 100000, got 0"],
    [{ persistOutbox: { maxAge: 5 } }, "config.persistOutbox: unknown field `maxAge`"],
  ];
  const errorOf = (config) =>
    page.evaluate((c) => {
      try {
        new T.Bridge(c);
        return { constructed: true };
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    }, config);
  for (const [config, want] of cases) {
    const e = await errorOf(config);
    expect(e.code, JSON.stringify(config)).toBe("invalid_config");
    expect(e.message, JSON.stringify(config)).toContain(want);
  }
  const typo = await errorOf({ healthIntervalMS: 500 });
  expect(typo.message.startsWith("config: unknown field `healthIntervalMS`; known fields:"), typo.message).toBe(true);
  const policy = await errorOf({ policies: { fetch: { baseDelayMs: 99999 } } });
  expect(policy.message.startsWith('config.policies: policy "fetch": base delay (99999 ms)'), policy.message).toBe(true);
});

test("config defaults and a kept id", async ({ page }) => {
  const r = await page.evaluate(() => {
    localStorage.removeItem("bridge.id");
    const b = new T.Bridge({});
    const again = new T.Bridge(undefined).id;
    const s = b.state();
    localStorage.setItem("bridge.id", "not an id!");
    const fresh = new T.Bridge({}).id;
    return { id: b.id, kept: localStorage.getItem("bridge.id"), again, fresh, origin: location.origin, s };
  });
  expect(r.id.startsWith("b-"), r.id).toBe(true);
  expect(r.again, "the next bridge reuses it").toBe(r.id);
  expect(r.fresh.startsWith("b-") && r.fresh !== r.id, `a kept id that is not one is replaced: ${r.fresh}`).toBe(true);
  expect(r.kept, "and the new one kept").toBe(r.fresh);
  expect(r.s.sockets.evolution.url).toBe(`${r.origin.replace("http", "ws")}/evolution`);
  expect(r.s.sockets.evolution.outboxLimit).toBe(256);
  expect(r.s.policies.named.fetch.maxRetries).toBe(3);
  expect(r.s.policies.named.sendLLMPrompt.attemptTimeoutMs).toBe(60_000);
});
