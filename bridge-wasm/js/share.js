// One connection for all tabs of an origin (`shareConnection`, on by default
// where the browser has Web Locks).
//
// Tabs whose bridges have the same id, backend nodes and agent form a group.
// The tab holding the Web Lock `bridge-leader:<group>` leads: it alone keeps
// the sockets, and serves the others (followers) over the BroadcastChannel
// `bridge:<group>`:
// - a follower's requests go to the leader with their ids; the leader sends
//   them on its sockets and posts the answer back;
// - every event, reset, agent message and presence the leader receives is
//   posted to every tab, which de-duplicates by position and calls its own
//   subscriptions and listeners (the leader acknowledges agent messages);
// - a follower's subscription patterns go to the leader, which subscribes
//   their union;
// - after each change the leader posts its sockets' state, the union of
//   patterns and the number of tabs.
//
// When the leader goes (closed, crashed, navigated away, stopped) the lock
// passes to a waiting follower at once: it connects, resumes the union from
// the last position it saw (so nothing is lost), and the other followers post
// their waiting requests to it again with the same ids (the server takes each
// once). This module is the channel, the election and the bookkeeping; what
// the messages mean to the sockets is wired in `bridge.js`.

import { warn } from "./errors.js";
import { heldNames, hold } from "./locks.js";
import { Signal, Watchers, race, sleep } from "./platform.js";

/** Most followers whose patterns a leader tracks (a bound on a map keyed by other tabs' input). */
const MAX_TABS = 64;

export const Role = Object.freeze({ Alone: "alone", Follower: "follower", Leader: "leader" });

export class Share {
  #channel = null;
  #leaderLock = null;
  #tabLock = null;
  #watchers = new Watchers();
  /** Follower: requests posted to the leader, by id: `{socket, frame, settle}`. */
  #pending = new Map();
  /** Leader: each follower's patterns. */
  #patterns = new Map();
  /** Follower: the leader's last word (`{sockets, union, tabs, tab}`). */
  #heard = null;
  /** Leader: tabs in the group (this one included), as of the last count. */
  #tabs = 1;
  /** Which wait for the leader lock is current (a stale one lets go when granted). */
  #turn = 0;
  #steppedDown = false;
  role = Role.Alone;
  /** What `bridge.js` does with other tabs' messages: `(incoming) => void`. */
  handler = null;

  /** A tab `tab` of `group` (none: not sharing). */
  constructor(group, tab) {
    this.group = group ?? "";
    this.tab = tab;
  }

  get isFollower() {
    return this.role === Role.Follower;
  }

  get isLeader() {
    return this.role === Role.Leader;
  }

  /** A signal notified whenever this tab's role changes, for one task. */
  watch() {
    return this.#watchers.watch();
  }

  #setRole(role) {
    if (this.role !== role) {
      this.role = role;
      this.#watchers.notifyAll();
    }
  }

  /**
   * Joins the group: opens the channel and queues for the leader lock. Resolves once this
   * tab knows its role (it leads at once when nobody else does). Stays alone without Web
   * Locks or BroadcastChannel, or when `lifetime` ends first (a stop during the start).
   */
  async start(lifetime) {
    if (!this.group || this.#channel || typeof BroadcastChannel === "undefined") return;
    const mine = await hold(`bridge-tab:${this.group}:${this.tab}`);
    if (!mine || lifetime.isStopped) return mine?.();
    this.#tabLock = mine;
    this.#channel = new BroadcastChannel(`bridge:${this.group}`);
    this.#channel.onmessage = (e) => this.#received(e.data);
    this.#setRole(Role.Follower);
    const granted = this.#queueForLead();
    this.#post({ t: "hello", tab: this.tab });
    // Wait briefly for the lock: free means this tab leads from the start.
    await race(granted.notified(), sleep(50), lifetime.stopped());
  }

  /** Queues for the leader lock (the first tab gets it at once); the signal fires when this tab leads. */
  #queueForLead() {
    const granted = new Signal();
    const turn = ++this.#turn;
    hold(`bridge-leader:${this.group}`).then((release) => {
      // Stopped, or stepped down and queued again, meanwhile: letting go passes the lead on.
      if (!this.#channel || this.#turn !== turn) return release?.();
      this.#leaderLock = release;
      this.#lead();
      granted.notify();
    });
    return granted;
  }

  /** The page is being frozen or cached: a leader hands the lead to another tab. */
  stepDown() {
    if (this.isLeader) {
      this.#leaderLock?.();
      this.#leaderLock = null;
      this.#steppedDown = true;
      this.#setRole(Role.Follower);
    }
  }

  /** The page runs again: a tab that stepped down queues for the lead again. */
  rejoin() {
    if (this.#steppedDown && this.#channel) {
      this.#steppedDown = false;
      this.#queueForLead();
      this.#post({ t: "hello", tab: this.tab });
    }
  }

  /** This tab now leads. */
  #lead() {
    this.#setRole(Role.Leader);
    // `heard` stays until `tookOver()`: its union is what the old leader subscribed, resumed by this one.
    // Whatever waited on the old leader now runs here.
    for (const { settle } of this.#pending.values()) settle({ again: true });
    this.#pending.clear();
    this.#post({ t: "leader", tab: this.tab });
  }

  /** Leaves the group: passes the lead on and tells the others. */
  stop() {
    const channel = this.#channel;
    if (!channel) return;
    this.#channel = null;
    try {
      channel.postMessage({ t: "bye", tab: this.tab });
    } catch {}
    channel.onmessage = null;
    channel.close();
    this.#leaderLock?.();
    this.#tabLock?.();
    this.#leaderLock = this.#tabLock = null;
    for (const { settle } of this.#pending.values()) settle({ error: ["stopped", "the bridge stopped", false] });
    this.#pending.clear();
    this.#patterns.clear();
    this.#heard = null;
    this.#setRole(Role.Alone);
  }

  #post(message) {
    try {
      this.#channel?.postMessage(message);
    } catch (e) {
      warn("posting to the other tabs failed", e);
    }
  }

  #received(m) {
    if (typeof m?.t !== "string") return;
    const from = typeof m.tab === "string" ? m.tab : "";
    const str = (v) => typeof v === "string";
    let incoming = null;
    if (this.isFollower) {
      switch (m.t) {
        case "frame":
          if (str(m.socket) && str(m.text)) incoming = { frame: { socket: m.socket, text: m.text } };
          break;
        case "reply":
          if (m.to === this.tab) this.#replied(m);
          break;
        case "leader":
          // A new leader: what waited on the old one goes to it.
          for (const [id, { socket, frame }] of this.#pending) this.#postRequest(id, socket, frame);
          incoming = { newLeader: true };
          break;
        case "state":
          this.#heard = m;
      }
    } else if (this.isLeader) {
      switch (m.t) {
        case "req":
          if (str(m.socket) && str(m.id) && str(m.frame)) incoming = { request: { tab: from, socket: m.socket, id: m.id, frame: m.frame } };
          break;
        case "patterns":
          if (this.#patterns.has(from) || this.#patterns.size < MAX_TABS) {
            this.#patterns.set(from, Array.isArray(m.patterns) ? m.patterns.filter(str) : []);
          }
          incoming = { patterns: true };
          break;
        case "bye":
          this.#patterns.delete(from);
          incoming = { joined: true };
          break;
        case "hello":
          incoming = { joined: true };
      }
    }
    if (incoming) this.handler?.(incoming);
  }

  #replied(m) {
    if (typeof m.id !== "string") return;
    const waiting = this.#pending.get(m.id);
    if (!waiting) return;
    this.#pending.delete(m.id);
    waiting.settle(
      "ok" in m
        ? { ok: m.ok }
        : { error: [typeof m.code === "string" ? m.code : "error", String(m.message ?? ""), m.retryable !== false] },
    );
  }

  #postRequest(id, socket, frame) {
    this.#post({ t: "req", tab: this.tab, socket, id, frame });
  }

  /**
   * Follower: sends `frame` through the leader: `{ok}` with the answer, `{error: [code,
   * message, retryable]}`, or `{again}` when the leader changed first. Forgotten when `signal` aborts.
   */
  forward(socket, id, frame, signal) {
    return new Promise((settle) => {
      const entry = { socket, frame, settle };
      this.#pending.set(id, entry);
      // The caller stopped waiting: forget it (a later answer finds nobody).
      signal?.addEventListener("abort", () => this.#pending.get(id) === entry && this.#pending.delete(id));
      this.#postRequest(id, socket, frame);
    });
  }

  /** Leader: the answer to `tab`'s request `id`: `{ok: value}` or `{error: [code, message, retryable]}`. */
  reply(tab, id, result) {
    const m = { t: "reply", to: tab, id };
    if ("ok" in result) m.ok = result.ok;
    else [m.code, m.message, m.retryable] = result.error;
    this.#post(m);
  }

  /** Leader: a frame for every tab. */
  shareFrame(socket, text) {
    if (this.isLeader) this.#post({ t: "frame", socket, text });
  }

  /** Follower: this tab's subscription patterns, for the leader. */
  postPatterns(patterns) {
    if (this.isFollower) this.#post({ t: "patterns", tab: this.tab, patterns });
  }

  /** Leader: every follower's patterns, each once. */
  followersPatterns() {
    const all = [];
    for (const list of this.#patterns.values()) for (const p of list) if (!all.includes(p)) all.push(p);
    return all;
  }

  /**
   * Leader: tells every tab its sockets' state (`sockets`: as in `state()`), the patterns it
   * subscribes (`union`) and the tab count; recounts the tabs and forgets the patterns of
   * tabs that are gone.
   */
  async announce(sockets, union) {
    if (!this.isLeader) return;
    const held = await heldNames();
    if (held) {
      const prefix = `bridge-tab:${this.group}:`;
      const alive = held.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
      this.#tabs = Math.max(alive.length, 1);
      for (const tab of [...this.#patterns.keys()]) if (!alive.includes(tab)) this.#patterns.delete(tab);
    }
    this.#post({ t: "state", tab: this.tab, sockets, union, tabs: this.#tabs });
  }

  /** Follower: the position the leader's evolution socket last told (`epoch:seq`). */
  leaderPosition() {
    const p = this.leaderSockets()?.evolution?.position;
    return typeof p === "string" ? p : null;
  }

  /** Follower: the leader's sockets as it last told (`state().sockets`). */
  leaderSockets() {
    return this.#heard?.sockets ?? null;
  }

  /**
   * Leader: the takeover's connection is up, with the old leader's union resumed; from now on
   * the followers' own patterns say what is wanted (kept, that union would come back at every
   * reconnect, wanted or not).
   */
  tookOver() {
    if (this.isLeader) this.#heard = null;
  }

  /** Follower: the patterns the leader subscribes, for when this tab takes over. */
  leaderUnion() {
    const u = this.#heard?.union;
    return Array.isArray(u) ? u.filter((s) => typeof s === "string") : [];
  }

  /** `state().tabs`: `[role, leader, count]`. */
  snapshot() {
    switch (this.role) {
      case Role.Alone:
        return [this.role, null, 1];
      case Role.Leader:
        return [this.role, this.tab, this.#tabs];
      default: {
        const tabs = this.#heard?.tabs;
        return [this.role, typeof this.#heard?.tab === "string" ? this.#heard.tab : null, typeof tabs === "number" ? tabs : 2];
      }
    }
  }
}
