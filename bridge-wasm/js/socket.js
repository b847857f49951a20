// A resilient WebSocket to the backend (evolution or agents): the browser's
// side of the socket's session in the wasm module (bridge-core's `Session`),
// which decides what to send and what the page gets. This opens sockets, runs
// timers and calls the page.
//
// While started, it keeps a connection: each connect runs under the socket's
// policy (`connectEvolutionSocket` / `connectAgentSocket`) and breaker of the
// same name, waiting out an open breaker. Requests wait in a bounded outbox
// while disconnected and are re-sent with the same id after a reconnect (the
// server de-duplicates by id, so each takes effect once); subscriptions resume
// with `since`, events are de-duplicated by seq, and an agent re-registers and
// gets its queued messages. A heartbeat finds a dead connection within two
// intervals.

import { Code, atHand, failedAttempt, httpFailure, isOwnCode, localRefusal, messageOf, warn } from "./errors.js";
import { OFFLINE, online, pause, untilOffline, untilOnline } from "./lifecycle.js";
import { quickGet } from "./fetch.js";
import { Mailbox, Signal, now, race, sleep, whenAborted } from "./platform.js";
import { run } from "./retry.js";

export const EVOLUTION = 0;
export const AGENTS = 1;

const closed = (code, reason) => ({ kind: "socket_closed", code, reason });

/** A connect attempt given up (its timeout, a stop, the browser going offline). */
const abandoned = () => failedAttempt({ kind: "other", message: "abandoned", retryable: true });

const str = (v) => (typeof v === "string" ? v : undefined);
const num = (v) => (typeof v === "number" ? v : undefined);

/**
 * What the session reads of a parsed server frame, as `Core.frame` takes it: its type, its id
 * (as a string, or a number), two texts, a number, a flag.
 */
function fields(f) {
  const t = f.type;
  const [a, b, n, flag] =
    t === "welcome"
      ? [, , f.heartbeat_ms]
      : t === "error"
        ? [f.code, f.message, f.retry_after_ms, f.retryable]
        : t === "event" || t === "reset"
          ? [f.epoch, f.topic, f.seq]
          : t === "message"
            ? [f.from, , , f.broadcast]
            : [f.position?.epoch, , f.position?.seq];
  return [t, str(f.id), num(f.id), str(a), str(b), num(n), flag === true];
}

/** One browser WebSocket with its events as a queue; `dispose()` unhooks it and closes the socket. */
class Conn {
  #events = new Mailbox();

  constructor(url) {
    this.ws = new WebSocket(url);
    const push = (event) => this.#events.put(event);
    this.ws.onopen = () => push({ open: true });
    this.ws.onmessage = (e) => typeof e.data === "string" && push({ text: e.data });
    // An error is always followed by a close event, which carries the code.
    this.ws.onclose = (e) => push({ closed: closed(e.code, e.reason) });
  }

  /** The next event (`{open}`, `{text}` or `{closed}`); cancellable (the event stays queued). */
  next() {
    return this.#events.take();
  }

  send(text) {
    this.ws.send(text);
  }

  /** Closes with `code` (the close event is still seen). */
  close(code, reason) {
    try {
      this.ws.close(code, reason);
    } catch {}
  }

  dispose() {
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    if (this.ws.readyState <= WebSocket.OPEN) this.close(1000, "bridge closing");
  }
}

/** See the module docs. `k` is EVOLUTION or AGENTS; `bridge` the bridge's shared pieces. */
export class Socket {
  constructor(k, bridge) {
    this.k = k;
    this.name = k === EVOLUTION ? "evolution" : "agents";
    this.core = bridge.core;
    this.tool = this.core.socketTool(k);
    this.bridge = bridge;
    this.backends = bridge.backends;
    this.share = bridge.share;
    /** Woken when there are frames to send. */
    this.wake = new Signal();
    /** Notified when the page goes offline, comes back, is resumed or restored. */
    this.page = bridge.page.watch();
    /** Notified when this tab's role changes. */
    this.role = bridge.share.watch();
    /** Who waits for each request, by the session's key. */
    this.waiters = new Map();
    /** The page's subscription callbacks, by subscription id. */
    this.callbacks = new Map();
    /** The node of the current (or last) connection. */
    this.node = null;
  }

  /** Runs `input()` on the session, then does what it asks of the page; returns what `input` returned. */
  withSession(input) {
    const out = input();
    this.drain();
    return out;
  }

  /** `ws(s)://node/path` of this socket on `node`. */
  url(node = this.node ?? this.backends.url()) {
    return node.replace("http", "ws") + "/" + this.name;
  }

  /** The leader's state of this socket as it last told; empty when this tab is not a follower. */
  leaderState() {
    return (this.share.isFollower && this.share.leaderSockets()?.[this.name]?.state) || "";
  }

  /** What only the page knows of this socket's snapshot: its URL, and in a follower tab the leader's state. */
  pageView() {
    const led = this.leaderState();
    return led ? { url: this.url(), state: led } : { url: this.url() };
  }

  /** This socket as `state()` shows it. */
  snapshot() {
    return Object.assign(JSON.parse(this.core.socketJson(this.k)), this.pageView());
  }

  /** A new request id, unique across page loads. */
  newId() {
    return this.core.newId(this.k);
  }

  /**
   * Sends `frame` (carrying `id`) and waits for its answer: on this tab's connection, or
   * through the leader tab's when this tab follows. Rejects with a failed attempt.
   */
  request(id, frame, signal) {
    // On this tab's connection the answer's promise is handed back as is, so that a refusal
    // (the bridge stopping) settles it before any cancel does.
    return this.share.isFollower ? this.#forwarded(id, frame, signal) : this.localRequest(id, frame, signal);
  }

  async #forwarded(id, frame, signal) {
    for (;;) {
      if (!this.share.isFollower) return this.localRequest(id, frame, signal);
      const r = await this.share.forward(this.name, id, frame, signal);
      if ("ok" in r) return r.ok;
      if (r.error) {
        const [code, message, retryable] = r.error;
        throw isOwnCode(code) ? localRefusal(code, message) : failedAttempt({ kind: "server", code, message, retryable });
      }
      // The leader changed (maybe to this tab): again, same id.
    }
  }

  /**
   * Queues `frame` on this tab's connection and waits for its answer. The request leaves
   * the outbox when answered, or when `signal` aborts (its caller stopped waiting).
   */
  localRequest(id, frame, signal) {
    const key = this.core.request(this.k, id, frame);
    if (typeof key !== "number") throw localRefusal(key.payload, key.text);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.waiters.delete(key);
        signal?.removeEventListener("abort", abort);
      };
      const abort = () => {
        done();
        this.core.cancel(this.k, key);
        reject(localRefusal(Code.Stopped, "the request was abandoned"));
      };
      this.waiters.set(key, {
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
      });
      signal?.addEventListener("abort", abort);
      this.wake.notify();
    });
  }

  /** Sends a frame nobody waits for on the current connection (none in a follower tab: the leader acks for it). */
  push(frame) {
    if (this.share.isFollower) return;
    this.core.push(this.k, frame);
    this.wake.notify();
  }

  /** Evolution: calls `callback` with every event on `patterns` from now on; the subscription's id. */
  subscribe(patterns, callback) {
    const r = this.core.subscribe(this.k, patterns);
    const id = Math.floor(r / 2);
    const grew = r % 2 === 1;
    this.callbacks.set(id, callback);
    if (grew) this.share.postPatterns(this.ownPatterns());
    this.wake.notify();
    return id;
  }

  /** Evolution: ends subscription `id`; false if it did not exist. */
  unsubscribe(id) {
    this.callbacks.delete(id);
    const r = this.core.unsubscribe(this.k, id);
    if (r < 0) return false;
    if (r === 1) this.share.postPatterns(this.ownPatterns());
    this.wake.notify();
    return true;
  }

  ownPatterns() {
    return JSON.parse(this.core.ownPatterns(this.k));
  }

  allPatterns() {
    return JSON.parse(this.core.allPatterns(this.k));
  }

  /** Leader: the followers' patterns changed; subscribe what is new, drop what nobody wants. */
  setRemotePatterns(wanted) {
    this.core.setRemotePatterns(this.k, wanted);
    this.wake.notify();
  }

  /**
   * Before connecting as the leader: the followers' patterns, and until the first connection
   * after a takeover those of the leader this tab took over from; a tab that saw no event yet
   * resumes from where that leader was.
   */
  takeOverPatterns() {
    const remote = this.share.followersPatterns();
    for (const p of this.share.leaderUnion()) if (!remote.includes(p)) remote.push(p);
    this.core.setRemotePatterns(this.k, remote);
    const at = this.share.leaderPosition();
    const i = at ? at.lastIndexOf(":") : -1;
    if (i > 0 && /^\d+$/.test(at.slice(i + 1))) this.core.adoptPosition(this.k, at.slice(0, i), Number(at.slice(i + 1)));
  }

  /** A frame from the server (on this tab's connection, or shared by the tab that leads). */
  onFrame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {}
    const read = typeof f?.type === "string" ? this.core.frame(this.k, now(), ...fields(f), f) : -1;
    if (read < 0) return warn("the server sent a frame this bridge cannot read", text), read;
    // What every tab sharing the connection gets.
    if (read === 1) this.share.shareFrame(this.name, text);
    this.drain();
    return read;
  }

  agentName() {
    return this.core.agentName(this.k);
  }

  /** Agents: the agent to (re-)register on every connect. */
  setAgent({ name, capabilities }) {
    this.core.setAgent(this.k, name, capabilities);
  }

  noteError(e) {
    this.withSession(() => this.core.noteError(this.k, e));
  }

  /** Does what the session asks of the page, in order (what it has to send, the connection's loop writes). */
  drain() {
    for (;;) {
      // One output at a time: page callbacks below may call back into the socket.
      const out = this.core.output(this.k);
      if (out === undefined) return;
      switch (out.type) {
        case "answer":
          this.waiters.get(out.key)?.resolve(out.payload);
          break;
        case "failed":
          this.waiters.get(out.key)?.reject(failedAttempt(JSON.parse(out.text)));
          break;
        case "refused":
          this.waiters.get(out.key)?.reject(localRefusal(out.payload, out.text));
          break;
        case "event":
          for (const id of out.subs) {
            const f = this.callbacks.get(id);
            try {
              f?.call(null, out.payload);
            } catch (e) {
              warn("a subscription callback threw", e);
            }
          }
          break;
        case "reset":
        case "presence":
          this.bridge.events.emit(out.type, out.payload);
          break;
        case "message":
          this.#message(out.payload, out.text);
          break;
        case "error":
          warn("the server reported an error", out.text);
          break;
        default:
          this.bridge.changed.notify();
      }
    }
  }

  /**
   * Hands an agent message to the page; acknowledges it once every listener has finished.
   * A listener that fails leaves it unacknowledged, so the server redelivers it after a reconnect.
   */
  #message(detail, ack) {
    const results = this.bridge.events.emit("message", detail);
    if (!ack) return;
    const promises = results.filter((v) => v instanceof Promise);
    if (!promises.length) return this.push(ack);
    const lifetime = this.bridge.lifetime;
    Promise.all(promises).then(
      () => !lifetime.isStopped && this.push(ack),
      (e) => warn("a message listener failed; the message stays unacknowledged", e),
    );
  }

  /** Writes what the session has to send on this connection. */
  #flush(conn) {
    for (let text; (text = this.core.transmit(this.k)) !== undefined; ) conn.send(text);
  }

  /** One connect attempt to `node`: open the socket, say hello, wait for the welcome. */
  async connect(node, signal) {
    const url = this.url(node);
    let conn;
    try {
      conn = new Conn(url);
    } catch (e) {
      throw failedAttempt({ kind: "validation", message: messageOf(e) });
    }
    const next = async () => {
      const r = await race(conn.next(), whenAborted(signal));
      if (r.index === 1) throw abandoned();
      return r.value;
    };
    try {
      const first = await next();
      // A browser is not told why an upgrade failed: ask the node.
      if (first.closed) throw failedAttempt(await this.#whyNotOpen(url, first.closed, signal));
      if (!first.open) throw failedAttempt({ kind: "network", message: "the socket failed to open" });
      try {
        conn.send(this.core.opened(this.k));
      } catch (e) {
        throw failedAttempt({ kind: "network", message: messageOf(e) });
      }
      for (;;) {
        const event = await next();
        let why;
        if (event.text !== undefined) {
          if (this.onFrame(event.text) >= 0) {
            if (this.core.isOpen(this.k)) return conn;
            continue;
          }
          why = { kind: "protocol", message: "the server sent an unreadable frame" };
        } else if (event.closed) {
          why = event.closed;
        } else {
          continue;
        }
        throw failedAttempt(JSON.parse(atHand(this.core, why).handshakeFailed(this.k)));
      }
    } catch (e) {
      conn.dispose();
      throw e;
    }
  }

  /**
   * Why a socket failed to open, asked of the node with a plain GET on the same path (the
   * backend answers what an upgrade would get now, taking nothing): its refusal
   * (`too_many_handshakes` with the turn to come back at, a full node, a foreign origin...),
   * that it does not answer, or `otherwise` when it would admit the connection.
   */
  async #whyNotOpen(url, otherwise, signal) {
    const a = await quickGet(url.replace("ws", "http"), 3000, signal);
    if (a.cancelled) throw abandoned();
    if (a.timedOut) return { kind: "timeout", after_ms: 3000 };
    if (a.error) return { kind: "network", message: `the node does not answer: ${messageOf(a.error)}` };
    const { response, body } = a;
    if (response.status === 426 || response.ok) return otherwise;
    if (typeof body?.code === "string") {
      const f = { kind: "server", code: body.code, message: String(body.message ?? ""), retryable: body.retryable === true };
      if (typeof body.retry_after_ms === "number") f.retry_after_ms = body.retry_after_ms;
      return f;
    }
    return httpFailure(response);
  }

  /** Runs a welcomed connection until it ends: why it ended (nothing when the lifetime did). */
  async #connected(conn, lifetime) {
    // The heartbeat counts silence: only what arrives (or a tick) starts its interval again,
    // not the page's sends or other wake-ups.
    let quietSince = now();
    try {
      for (;;) {
        this.drain();
        try {
          this.#flush(conn);
        } catch (e) {
          return { kind: "network", message: messageOf(e) };
        }
        const beat = this.core.heartbeatMs(this.k);
        if (beat < 0) return { kind: "other", message: "the session ended", retryable: true };
        const quiet = sleep(Math.max(0, quietSince + beat - now()));
        const r = await race(conn.next(), this.wake.notified(), this.role.notified(), quiet, lifetime.stopped());
        if (r.index === 4) return;
        // Another tab leads now (this page is being frozen or cached): it keeps the connection.
        if (this.share.isFollower) {
          conn.close(1000, "another tab leads");
          this.handOver();
          return { kind: "other", message: "another tab leads this connection now", retryable: false };
        }
        if (r.index === 0) {
          if (r.value.text !== undefined) {
            quietSince = now();
            this.onFrame(r.value.text);
          } else if (r.value.closed) return r.value.closed;
        } else if (r.index === 3) {
          quietSince = now();
          const dead = this.core.tick(this.k, now());
          if (dead !== undefined) {
            conn.close(4000, "heartbeat lost");
            return JSON.parse(dead);
          }
        }
      }
    } finally {
      conn.dispose();
    }
  }

  /**
   * Keeps the connection up until `lifetime` ends. The session's stop is `Inner.stop`'s (once:
   * a second one from here could land after the next start and refuse its requests); a
   * replaced session stopped itself.
   */
  async maintain(lifetime) {
    const core = this.core;
    for (;;) {
      if (lifetime.isStopped || core.isReplaced(this.k)) return;
      // Another tab leads: it keeps the connection; wait until this one leads.
      if (this.share.isFollower) {
        this.withSession(() => core.life(this.k, "following"));
        await lifetime.run(this.role.notified());
        continue;
      }
      this.withSession(() => core.life(this.k, "connecting"));
      // Leading: subscribe for the other tabs too, from where the tab that led before left off.
      if (this.k === EVOLUTION) this.takeOverPatterns();
      // A known-offline browser attempts nothing: no retry burnt, no breaker charged.
      if (!online()) {
        this.noteError(OFFLINE);
        if ((await lifetime.run(untilOnline(this.page))) === undefined) continue;
      }
      // Stopping, or the browser going offline, ends the connect attempts.
      const cancel = () => race(lifetime.stopped(), untilOffline(this.page));
      const result = await run(core, { tool: this.tool, cancel }, async ({ signal, timeout }) => {
        // Each attempt goes to the node current at that moment: after a failure it may be another.
        const node = this.backends.url();
        try {
          const conn = await this.connect(node, signal);
          if (signal.aborted) {
            conn.dispose();
            throw abandoned();
          }
          this.backends.succeeded(node);
          this.node = node;
          return conn;
        } catch (e) {
          // Cut off by its timeout, the node did not answer in time (a hung handshake moves the
          // bridge to another node); cut off by a stop or by going offline, nobody is to blame.
          const failure = signal.aborted ? (online() && !lifetime.isStopped ? { kind: "timeout", after_ms: timeout ?? 0 } : null) : e.failure;
          // Offline, the node is not to blame: stay with it.
          if (online() && failure) this.backends.failed(node, failure);
          // Every failed attempt is visible at once (health, state), not only when the run ends.
          if (failure) this.noteError(atHand(core, failure).describe());
          throw e;
        }
      });
      this.bridge.changed.notify();
      let wait;
      if ("value" in result) {
        if (this.k === EVOLUTION) this.share.tookOver();
        const why = await this.#connected(result.value, lifetime);
        // Stopped meanwhile (whatever ended the connection): the session may be the next start's already.
        if (lifetime.isStopped) return;
        // A connection that keeps dropping right after opening backs off like a failed connect.
        wait = this.#disconnected(why);
        if (wait < 0) continue;
      } else if (lifetime.isStopped) {
        return;
      } else if (result.ended.code === "circuit_open") {
        this.noteError("waiting for the circuit breaker to half-open");
        wait = (result.ended.retryInMs ?? 1000) + 1;
      } else if (!online()) {
        wait = 0;
      } else {
        this.noteError(result.ended.message);
        const policy = JSON.parse(core.policyJson(this.tool));
        wait = result.ended.code === "permanent" ? policy.maxDelayMs : policy.baseDelayMs;
      }
      // Back online, resumed or restored: reconnect now rather than after the backoff.
      if (wait > 0 && (await lifetime.run(pause(wait, this.page))) === undefined) return;
    }
  }

  /**
   * After a connection ended: the node and the breaker hear of the drop, and the session
   * keeps the requests for the next one. The pause before reconnecting; negative when this
   * socket must not reconnect.
   */
  #disconnected(why) {
    const on = online();
    if (this.node && on) this.backends.failed(this.node, why);
    return this.withSession(() => atHand(this.core, why).dropped(this.k, now(), on));
  }

  stopped() {
    this.withSession(() => this.core.life(this.k, "stop"));
  }

  /** Runs under a new lifetime (after a stop, for the next start). */
  restart() {
    this.core.life(this.k, "restart");
  }

  /** This tab stopped leading: what waits in its outbox fails as retryable, to go again through the new leader. */
  handOver() {
    this.withSession(() => this.core.life(this.k, "handOver"));
  }
}
