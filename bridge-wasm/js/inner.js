// The bridge's state, shared by the JS class (`bridge.js`), the sockets, the
// health poller, the reporter and the WebMCP tools. Decisions are the wasm
// module's (`Core`); this wires them to the page.

import { Core, heldValues, version } from "./core.js";
import { BRIDGE_ID_KEY, readConfig } from "./config.js";
import { Code, atHand, codedError, localRefusal, warn } from "./errors.js";
import { Events } from "./events.js";
import { poll, report } from "./health.js";
import { Moment, PageLife, online } from "./lifecycle.js";
import { Backends } from "./nodes.js";
import { Persist, ownerGone } from "./outbox.js";
import { Lifetime, Signal, liveTimers, now, randomId, randomSeed, unixMs } from "./platform.js";
import { Lanes } from "./call.js";
import { run } from "./retry.js";
import { Role, Share } from "./share.js";
import { AGENTS, EVOLUTION, Socket } from "./socket.js";
import { WebMcp, modelContext } from "./webmcp.js";

/** See the module docs. */
export class Inner {
  /** Leader: followers' request ids being served now (each once). */
  #serving = new Set();
  /** Page loads whose end this one waits for, to claim what they leave (a few tabs at most). */
  #watchedOwners = new Set();
  /** A claim left orphans for want of room in an outbox: claim again when a request settles. */
  #unclaimed = false;
  #startedAt = null;
  #reportSeq = 0;
  reportsSent = 0;

  /** Reads `config` (throws `invalid_config` naming the field). */
  constructor(config) {
    const origin = globalThis.location?.origin?.startsWith("http") ? location.origin : undefined;
    let storage = null;
    try {
      storage = globalThis.localStorage ?? null;
    } catch {}
    this.core = new Core(randomSeed());
    /** `call()`'s tools and their lanes. */
    this.lanes = new Lanes(this.core);
    try {
      this.config = readConfig(this.core, config, {
        origin,
        storedId: () => storage?.getItem(BRIDGE_ID_KEY),
        storeId: (id) => {
          try {
            storage?.setItem(BRIDGE_ID_KEY, id);
          } catch {}
        },
        newId: () => `b-${randomId(12)}`,
      });
    } catch (e) {
      if (e.invalid) throw codedError(Code.InvalidConfig, e.message);
      throw e;
    }
    /** Random per page load: request ids and reports are unique per instance. */
    this.instance = randomId(8);
    this.events = new Events();
    /** Something worth reporting changed. */
    this.changed = new Signal();
    this.lifetime = new Lifetime();
    this.backends = new Backends(this.core, this.config.backendUrls, this.events, this.changed);
    this.page = new PageLife();
    /** Wake the health poller and the reporter at each change of the page's life (kept across restarts). */
    this.wakes = { health: this.page.watch(), reports: this.page.watch() };
    this.persist = new Persist(this.config.persist);
    this.share = new Share(this.config.group, this.instance);
    this.webmcp = new WebMcp();
    /** Notified when this tab's role changes (a new leader claims what the old one left). */
    this.roleChanged = this.share.watch();
    const client = `bridge-wasm/${version()} ${this.config.bridgeId}`;
    const socket = (k) => {
      this.core.addSocket(k, client, this.config.token, this.instance, this.config.outboxLimit);
      return new Socket(k, this);
    };
    this.evolution = this.config.evolution ? socket(EVOLUTION) : null;
    this.agents = this.config.agents ? socket(AGENTS) : null;
    if (this.config.agent && this.agents) this.agents.setAgent(this.config.agent);
  }

  get started() {
    return this.#startedAt !== null;
  }

  /** Socket `name` (`evolution`, `agents`), or null. */
  #named(name) {
    return name === "evolution" ? this.evolution : name === "agents" ? this.agents : null;
  }

  /** Socket `name` (`evolution`, `agents`), or `not_configured`. */
  socket(name) {
    const s = this.#named(name);
    if (!s) {
      const refusal = localRefusal(Code.NotConfigured, `this bridge has no ${name} socket (config.sockets)`);
      throw codedError(Code.NotConfigured, refusal.failure.message);
    }
    return s;
  }

  sockets() {
    return [this.evolution, this.agents].filter(Boolean);
  }

  /** Connects the sockets and starts health polling and reporting. */
  async start() {
    if (this.started) return;
    const lifetime = (this.lifetime = new Lifetime());
    this.#startedAt = now();
    this.page.listen();
    // Join the other tabs of this origin: one of them (maybe this one) keeps the sockets.
    this.share.handler = (incoming) => this.#fromOtherTab(incoming);
    await this.share.start(lifetime);
    // A stop during the start wins: nothing more of this start runs.
    if (lifetime.isStopped) return;
    // A frozen or cached page runs nothing: it hands the lead over, and queues again on return.
    this.page.onMoment = (m) => (m === Moment.Leaving ? this.share.stepDown() : this.share.rejoin());
    this.#postPatterns();
    // What an earlier page load left waiting goes out first (the sockets are not open yet).
    await this.#claimAndRecover();
    if (lifetime.isStopped) return;
    // A tab that takes the lead claims what the leader it replaces left.
    lifetime.spawn(async () => {
      while ((await lifetime.run(this.roleChanged.notified())) !== undefined) {
        if (this.share.isLeader) await this.#claimAndRecover();
      }
    });
    for (const s of this.sockets()) {
      s.restart();
      lifetime.spawn(() => s.maintain(lifetime));
    }
    lifetime.spawn(() => poll(this, lifetime));
    // Reports (when configured), and a leading tab's word to the others.
    if (this.config.report || this.share.role !== Role.Alone) lifetime.spawn(() => report(this, lifetime));
  }

  /** Releases every socket, timer, listener and registered tool; waiting requests fail with `stopped`. */
  stop() {
    this.webmcp.unregisterAll();
    // The sockets first: what waits on them is refused as `stopped` before the lifetime's end
    // cancels the operations waiting for them.
    for (const s of this.sockets()) s.stopped();
    this.share.stop();
    this.lifetime.stop();
    this.page.unlisten();
    this.persist.stop();
    this.#watchedOwners.clear();
    this.#startedAt = null;
  }

  /** The report (`full`: every breaker transition kept, else the last 20). */
  report(full = false) {
    this.lanes.flush();
    const r = JSON.parse(
      this.core.report(
        this.config.bridgeId,
        this.instance,
        this.#reportSeq,
        unixMs(),
        globalThis.location?.href,
        this.#startedAt === null ? 0 : now() - this.#startedAt,
        full,
        now(),
      ),
    );
    // What only the page knows: where the sockets go, the leader's word, WebMCP, the tabs.
    for (const s of this.sockets()) Object.assign(r.sockets[s.name], s.pageView());
    const found = modelContext();
    r.webmcp = found ? { available: true, provider: found[1], tools: this.webmcp.names() } : { available: false, tools: this.webmcp.names() };
    if (this.share.role !== Role.Alone) {
      const [role, leader, count] = this.share.snapshot();
      r.tabs = leader ? { tab: this.share.tab, role, leader, count } : { tab: this.share.tab, role, count };
    }
    return r;
  }

  /** The next report's seq. */
  nextReportSeq() {
    return ++this.#reportSeq;
  }

  /**
   * A run's end as its caller gets it: when a breaker moved, `call()`'s lanes ask the module
   * again and the reporter hears of it; then the value, or the error thrown.
   */
  settle(result) {
    if (result.moved) {
      this.lanes.changed();
      this.changed.notify();
    }
    if ("error" in result) throw result.error;
    return result.value;
  }

  /** `state()`: the report plus what only the page sees. */
  state() {
    const s = this.report(true);
    s.node = this.backends.url();
    s.liveTimers = liveTimers();
    s.heldValues = heldValues();
    s.started = this.started;
    s.online = online();
    s.restored = this.page.restored;
    const kept = this.persist.stats();
    if (kept) s.kept = kept;
    s.reportsSent = this.reportsSent;
    s.policies = JSON.parse(this.core.policiesJson());
    return s;
  }

  // ---- other tabs ----

  /** What another tab's message means here (see `share.js`). */
  #fromOtherTab(incoming) {
    if (incoming.frame) {
      this.#named(incoming.frame.socket)?.onFrame(incoming.frame.text);
    } else if (incoming.request) {
      const { tab, socket: name, id, frame } = incoming.request;
      const s = this.#named(name);
      if (!s) return this.share.reply(tab, id, { error: ["not_configured", `the leading tab has no ${name} socket`, false] });
      // Posted again after a leader change or a retry: the one in flight answers it.
      if (this.#serving.has(id)) return;
      if (this.#serving.size >= 2 * this.config.outboxLimit) {
        return this.share.reply(tab, id, { error: ["outbox_full", "the leading tab serves too many requests", false] });
      }
      this.#serving.add(id);
      this.lifetime.spawn(async () => {
        let result;
        try {
          result = { ok: await s.localRequest(id, frame) };
        } catch (a) {
          result = { error: sharedFailure(this.core, a) };
        }
        this.#serving.delete(id);
        this.share.reply(tab, id, result);
      });
    } else if (incoming.patterns) {
      this.evolution?.setRemotePatterns(this.share.followersPatterns());
      this.changed.notify();
    } else if (incoming.joined) {
      this.changed.notify();
    } else if (incoming.newLeader) {
      this.#postPatterns();
    }
  }

  /** Follower: tells the leader which patterns this tab subscribes. */
  #postPatterns() {
    if (this.evolution) this.share.postPatterns(this.evolution.ownPatterns());
  }

  /** Leader: tells the other tabs how its sockets are and what it subscribes. */
  async announce() {
    const sockets = {};
    for (const s of this.sockets()) sockets[s.name] = s.snapshot();
    await this.share.announce(sockets, this.evolution?.allPatterns() ?? []);
  }

  // ---- requests over the sockets ----

  /**
   * A request over `socket`, under `tool`'s policy and breaker, with one id for every
   * attempt (the server de-duplicates, so it takes effect once). With `keep`, the request is
   * also kept in IndexedDB until it settles, so that a reload or a crash does not lose it.
   */
  async socketRequest(socket, tool, policy, keep, make) {
    const id = socket.newId();
    const frame = make(id);
    const kept =
      keep &&
      this.persist.keep({
        id,
        bridge: this.config.bridgeId,
        agent: socket.agentName() ?? null,
        instance: this.instance,
        socket: socket.name,
        tool,
        frame,
        created: unixMs(),
      });
    try {
      return await this.#runRequest(socket, tool, policy, id, frame);
    } finally {
      if (kept) this.persist.forget(id);
      this.#freed();
    }
  }

  async #runRequest(socket, tool, policy, id, frame) {
    const result = await run(this.core, { tool, policy, lifetime: this.lifetime }, ({ signal }) =>
      socket.request(id, frame, signal),
    );
    return this.settle(result);
  }

  /**
   * Claims what earlier page loads (or a leader tab that went) left waiting, and re-sends it.
   * Entries of a page load that still looks alive are claimed when it goes (a reloading page
   * may hold its lock a moment longer than it takes the new one to start).
   */
  async #claimAndRecover() {
    if (!this.started) return;
    let claim;
    try {
      const room = (name) => this.#room(name);
      claim = await this.persist.start(this.config.bridgeId, this.agents?.agentName(), this.instance, room, this.lifetime);
    } catch (e) {
      return warn("reading the kept outbox failed", e);
    }
    if (claim.left) this.#unclaimed = true;
    this.#recover(claim.claimed, claim.expired);
    for (const owner of claim.aliveOwners) {
      if (this.#watchedOwners.has(owner)) continue;
      this.#watchedOwners.add(owner);
      const lifetime = this.lifetime;
      lifetime.spawn(async () => {
        await ownerGone(owner);
        this.#watchedOwners.delete(owner);
        if (!lifetime.isStopped) await this.#claimAndRecover();
      });
    }
  }

  /** Free room in socket `name`'s outbox; -1 without that socket. */
  #room(name) {
    const s = this.#named(name);
    return s ? this.config.outboxLimit - JSON.parse(this.core.socketJson(s.k)).outbox : -1;
  }

  /** Claims again, in the background (an agent registered: what was kept for it is claimed too). */
  claim() {
    this.lifetime.spawn(() => this.#claimAndRecover());
  }

  /** A request settled, so an outbox has room: what a claim left for want of it is claimed now. */
  #freed() {
    if (this.#unclaimed) {
      this.#unclaimed = false;
      this.claim();
    }
  }

  /** Re-sends what an earlier page load left waiting; each one ends in a `recovered` event. */
  #recover(claimed, expired) {
    const lifetime = this.lifetime;
    for (const e of expired) this.events.emit("recovered", recovered(e, "expired"));
    for (const e of claimed) {
      const socket = this.#named(e.socket);
      lifetime.spawn(async () => {
        let detail;
        try {
          // Kept operations (sends, requests) run under a policy of their own name.
          detail = recovered(e, "delivered", "reply", await this.#runRequest(socket, e.tool, e.tool, e.id, e.frame));
        } catch (error) {
          // Room taken meanwhile, or cut off by the stop: not lost, given back for a later claim.
          if (error.code === Code.OutboxFull || lifetime.isStopped) {
            this.persist.release(e.id);
            this.#unclaimed = true;
            return;
          }
          detail = recovered(e, "failed", "error", error);
        }
        this.persist.forget(e.id);
        this.events.emit("recovered", detail);
        this.#freed();
      });
    }
  }
}

/** A `recovered` event's detail: `{id, tool, socket, outcome, createdAt, reply? | error?}`. */
function recovered(e, outcome, key, value) {
  const d = { id: e.id, tool: e.tool, socket: e.socket, outcome, createdAt: e.created };
  if (key) d[key] = value;
  return d;
}

/** A leader's failure as a follower gets it: `[code, message, retryable]`. */
function sharedFailure(core, a) {
  const f = a.failure ?? { kind: "other", message: String(a), retryable: false };
  return JSON.parse(atHand(core, f).shared(a.refusal));
}
