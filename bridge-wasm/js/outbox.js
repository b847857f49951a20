// The outbox kept across reloads (`persistOutbox`, on by default where the
// page has IndexedDB).
//
// Every agent message (`sendA2A`) and evolution request waiting for its answer
// is also written to IndexedDB, frame and id as sent, and deleted when it is
// settled (answered, failed, or refused to the page). What a reload or a crash
// leaves behind is claimed by the next page load of the same bridge (and, for
// agent messages, the same agent) and re-sent with the same id, so the server
// takes it once. The page hears about each one through a `recovered` event.
//
// Which entries are orphans: each page load holds a Web Lock named after its
// instance for as long as it lives; an entry whose instance holds no lock is
// an orphan. Claims run under one lock per origin, so two tabs starting
// together do not both take the same entry. Without Web Locks every entry of
// another instance counts as an orphan (the server's de-duplication by id is
// then what keeps a message once).
//
// Bounded: a page keeps at most `maxEntries` entries and `maxBytes` of frames
// (more are sent, just not kept: counted as `refused`); an entry older than
// `maxAgeMs` is dropped and reported as `expired` instead of being re-sent.

import { warn } from "./errors.js";
import { heldNames, hold } from "./locks.js";
import { unixMs } from "./platform.js";

/** The database (one per origin, shared by its tabs) and its one store of entries keyed by `id`. */
const DB_NAME = "bridge-outbox";
const STORE = "entries";
/** The lock a page load holds while it lives. */
const PAGE_LOCK = "bridge-page:";
/** The lock claims run under. */
const CLAIM_LOCK = "bridge-outbox-claim";

/** `persistOutbox`'s defaults. */
export const PERSIST_DEFAULTS = Object.freeze({ maxEntries: 256, maxBytes: 1 << 20, maxAgeMs: 24 * 3_600_000 });

/** Resolves with `req`'s result once it succeeds; rejects with its error. */
const settled = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(req.error?.message ?? "IndexedDB request failed"));
  });

/** Opens (creating on first use) the database; `null` where the page has no IndexedDB. */
async function open() {
  if (typeof indexedDB === "undefined") return null;
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
  return settled(req);
}

/** Completes when the page load `instance` is gone (its lock is free); at once without Web Locks. */
export async function ownerGone(instance) {
  (await hold(PAGE_LOCK + instance))?.();
}

/** See the module docs. */
export class Persist {
  #db = null;
  /** This page load's lock, held while started: its `release()`, to come. */
  #alive = null;
  /** Ids kept by this page, and their sizes. */
  #kept = new Map();
  #stats = { recovered: 0, expired: 0, refused: 0, errors: 0 };

  /** `config`: `{maxEntries, maxBytes, maxAgeMs}`, or null when off. */
  constructor(config) {
    this.config = config;
  }

  /** What `state().kept` shows; undefined when off. */
  stats() {
    if (!this.config) return undefined;
    let bytes = 0;
    for (const b of this.#kept.values()) bytes += b;
    return { entries: this.#kept.size, bytes, ...this.#stats };
  }

  #store(mode) {
    return this.#db.transaction(STORE, mode).objectStore(STORE);
  }

  /**
   * Opens the database and announces this page load as alive; then claims what earlier page
   * loads of `bridge` (as `agent`) left behind, oldest first, as much as `room(socket)` (the
   * free room in that socket's outbox; -1 without it) takes: `{claimed, expired, aliveOwners,
   * left}`, `left` counting what stays kept for want of room. Claims nothing when `lifetime`
   * ends meanwhile (a stop during the start).
   */
  async start(bridge, agent, instance, room, lifetime) {
    const none = { claimed: [], expired: [], aliveOwners: [], left: 0 };
    if (!this.config) return none;
    this.#db ??= await open();
    if (!this.#db || lifetime.isStopped) return none;
    // Held from its request on, so that a stop before it is granted lets it go too.
    this.#alive ??= hold(PAGE_LOCK + instance);
    await this.#alive;
    const releaseClaim = await hold(CLAIM_LOCK);
    try {
      // Entries written after this moment may belong to a page that started after the query.
      const askedAt = unixMs();
      const alive = await heldNames();
      // What waits as the store is read (one that settles meanwhile is gone, not orphaned).
      const waiting = new Set(this.#kept.keys());
      const isOrphan = (e) => {
        // This page's own, from before a stop() and start(): orphaned unless still waiting.
        if (e.instance === instance) return !waiting.has(e.id);
        return e.created < askedAt && !alive?.includes(PAGE_LOCK + e.instance);
      };
      const claimed = [];
      const expired = [];
      const aliveOwners = [];
      const orphans = [];
      for (const e of await settled(this.#store("readonly").getAll())) {
        if (!valid(e)) continue;
        if (!isOrphan(e)) {
          // A page that is going may still hold its lock for a moment (a reload): wait for it.
          if (e.bridge === bridge && e.instance !== instance && !aliveOwners.includes(e.instance)) {
            aliveOwners.push(e.instance);
          }
          continue;
        }
        if (e.created + this.config.maxAgeMs <= askedAt) {
          // Anyone's: an expired entry only takes room.
          await settled(this.#store("readwrite").delete(e.id)).catch(() => {});
          if (e.bridge === bridge) expired.push(e);
          continue;
        }
        if (e.bridge === bridge && (e.socket !== "agents" || e.agent === (agent ?? null))) orphans.push(e);
      }
      // Taking more than the outbox holds would fail them as `outbox_full`: the rest waits here.
      const free = { agents: room("agents"), evolution: room("evolution") };
      let left = 0;
      for (const e of orphans.sort((a, b) => a.created - b.created)) {
        if (!(free[e.socket] > 0)) {
          if (free[e.socket] === 0) left++;
          continue;
        }
        free[e.socket]--;
        const mine = { ...e, instance };
        await settled(this.#store("readwrite").put(mine));
        this.#kept.set(mine.id, mine.frame.length);
        claimed.push(mine);
      }
      // Stopped meanwhile: what was claimed stays in IndexedDB for a later claim.
      if (lifetime.isStopped) {
        for (const e of claimed) this.#kept.delete(e.id);
        return none;
      }
      this.#stats.recovered += claimed.length;
      this.#stats.expired += expired.length;
      return { claimed, expired, aliveOwners, left };
    } finally {
      releaseClaim?.();
    }
  }

  /** The bridge stopped: other pages may now claim what is left. */
  stop() {
    this.#alive?.then((release) => release?.());
    this.#alive = null;
  }

  /** Keeps `entry` until `forget`; false when off, not started, or over the bounds. */
  keep(entry) {
    if (!this.config || !this.#db) return false;
    const size = entry.frame.length;
    let bytes = 0;
    for (const b of this.#kept.values()) bytes += b;
    if (this.#kept.size >= this.config.maxEntries || bytes + size > this.config.maxBytes) {
      this.#stats.refused++;
      return false;
    }
    try {
      this.#settle(settled(this.#store("readwrite").put(entry)));
    } catch (e) {
      this.#stats.errors++;
      warn("keeping a request in IndexedDB failed", e);
      return false;
    }
    this.#kept.set(entry.id, size);
    return true;
  }

  /** Gives claimed entry `id` back unsent: it stays in IndexedDB for a later claim. */
  release(id) {
    if (this.#kept.delete(id)) this.#stats.recovered--;
  }

  /** Deletes the entry `id` (settled). */
  forget(id) {
    if (!this.#db || !this.#kept.delete(id)) return;
    try {
      this.#settle(settled(this.#store("readwrite").delete(id)));
    } catch (e) {
      warn("deleting a kept request failed", e);
    }
  }

  #settle(done) {
    done.catch((e) => warn("an IndexedDB write failed", e));
  }
}

/** An entry as this bridge writes them (another page's junk is skipped). */
const valid = (e) =>
  e &&
  ["id", "bridge", "instance", "socket", "tool", "frame"].every((k) => typeof e[k] === "string") &&
  typeof e.created === "number";
