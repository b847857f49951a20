// TypeScript types of /pkg/bridge_wasm.js (the bridge's JS driver bundled with
// its wasm module): the shapes the API takes and returns. Kept next to the
// code they describe: js/config.js, js/bridge.js, bridge_core::report and
// bridge_core::protocol::frames.

/** Loads the wasm module (from `bridge_wasm_bg.wasm` beside this file, or what you pass). */
export default function init(
  module_or_path?: { module_or_path: RequestInfo | URL | Response | BufferSource | WebAssembly.Module } | RequestInfo | URL | Response | BufferSource | WebAssembly.Module | Promise<Response>,
): Promise<unknown>;
/** Loads the wasm module synchronously from its bytes or a compiled module. */
export function initSync(module: { module: BufferSource | WebAssembly.Module } | BufferSource | WebAssembly.Module): unknown;

/** The bridge's version. */
export function version(): string;
/** The built-in per-tool retry policies, by name, plus `default`. */
export function defaultPolicies(): Record<string, object>;
/** The retry policy a tool named `name` gets (unknown names get the default). */
export function policyFor(name: string): { maxRetries: number; baseDelayMs: number; maxDelayMs: number; jitter: unknown; deadlineMs: number | null; attemptTimeoutMs: number | null };
/** The delays, in ms, that the tool `name`'s policy would wait between its retries, drawing jitter from a generator seeded with `seed`. */
export function backoffDelays(name: string, seed: number): Float64Array;

/** A subscription to evolution events; `unsubscribe()` ends it. */
export class Subscription {
  private constructor();
  /** Stops delivering events to this subscription's callback. Returns false if it had already ended. */
  unsubscribe(): boolean;
}

/** The bridge. See `docs/bridge.md`. */
export class Bridge {
  /** Creates a bridge; throws an `Error` with `code: "invalid_config"` naming the field when `config` is wrong. */
  constructor(config?: BridgeConfig);
  /** This bridge's id. */
  readonly id: string;
  /** Connects the sockets and starts health polling and reporting. Resolves at once; watch `health` events or `state()` for the connections. */
  start(): Promise<void>;
  /** Releases every socket, timer, listener and registered tool. Waiting requests fail with `code: "stopped"`. A stopped bridge can be started again. */
  stop(): Promise<void>;
  /**
   * Subscribes `callback` to evolution events on `topics` (a name, `*`, `prefix.*`, or an array); returns a `Subscription`.
   * Events resume after reconnects without loss or duplicates; a `reset` event says when the server could not replay what was missed.
   */
  subscribe(topics: string | string[], callback: (event: EvolutionEvent) => void): Subscription;
  /** Sends an evolution request for `action` with `params`; resolves with the handler's result. */
  request(action: string, params?: unknown, options?: { timeoutMs?: number; tool?: string }): Promise<unknown>;
  /** Registers this page's agent (re-registered automatically after every reconnect). */
  registerAgent(name: string, capabilities?: string[]): Promise<{ type: "ack"; id: string; queued: number }>;
  /** Sends a message to an agent; resolves once the backend acked it. Takes effect exactly once, even across reconnects. */
  sendA2A(message: A2aMessage): Promise<A2aAck>;
  /** Lists agents (optionally only those with `capability`). */
  discover(capability?: string): Promise<AgentInfo[]>;
  /** Sends a message to every other online agent; resolves with `{recipients}`. */
  broadcast(messageType: string, content: unknown): Promise<{ type: "ack"; recipients: number }>;
  /** Calls `callback(message)` for each agent message; acknowledged after the callback returns (or its promise resolves). */
  onMessage(callback: (message: AgentMessage) => void | Promise<void>): void;
  /** `fetch(url, init)` under the `fetch` policy (or `options.tool`'s) and the origin's breaker. `init.signal` or `options.signal` cancels every attempt. */
  fetch(url: string, init?: RequestInit, options?: FetchOptions): Promise<Response>;
  /** Runs `fn` (sync or async; it gets `{attempt}`) under tool `tool`'s policy and breaker. */
  call<T>(tool: string, fn: (context: { attempt: number; timeoutMs?: number }) => T | Promise<T>): Promise<T>;
  /** Sends a prompt to the LLM endpoint; resolves with `{text, model, usage}`. */
  prompt(input: Prompt): Promise<{ text: string; model: unknown; usage: unknown }>;
  /** Everything the bridge knows: the same JSON as the `get_os_state` tool and the report sent to the backend. */
  state(): BridgeState;
  /** Closes breaker `name` by hand; false if there is no such breaker. */
  resetBreaker(name: string): boolean;
  /** Opens breaker `name` by hand until `resetBreaker`; false if there is no such breaker. */
  isolateBreaker(name: string): boolean;
  /** Listens for `health`, `reset`, `message`, `presence`, `node` and `recovered` events. */
  addEventListener<K extends keyof BridgeEventMap>(kind: K, callback: (detail: BridgeEventMap[K]) => void): void;
  /** Removes a listener added with `addEventListener`. */
  removeEventListener<K extends keyof BridgeEventMap>(kind: K, callback: (detail: BridgeEventMap[K]) => void): void;
  /** Same as `addEventListener("health", callback)`. */
  onHealthChange(callback: (change: HealthChange) => void): void;
  /** Runs the health checks now (and reports if anything changed); resolves with the health. */
  checkHealth(): Promise<BridgeState["health"]>;
  /** Sends a state report now; resolves with its seq when the backend accepted it. */
  sendReport(): Promise<number>;
  /** Registers the bridge's tools on the page's model context; returns their names (empty without one) and the provider. */
  registerWebMcpTools(): string[] & { provider: "native" | "navigator" | "polyfill" | null };
  /** Registers a page tool on WebMCP, wrapped in its own breaker and `options.policy`. Returns false when the page has no model context. */
  registerTool(
    descriptor: { name: string; description?: string; inputSchema?: object; execute: (input: any, options: { signal: AbortSignal }) => unknown },
    options?: { policy?: PolicyOverride },
  ): boolean;
}

/** A retry policy override; every field optional. */
export interface PolicyOverride {
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  jitter?: { mode: "none" | "full" | "decorrelated" } | { mode?: "proportional"; ratio?: number };
  /** 0 removes the deadline. */
  deadlineMs?: number;
  /** 0 removes the per-attempt timeout. */
  attemptTimeoutMs?: number;
}

/** Circuit breaker settings; every field optional. */
export interface BreakerSettings {
  failureThreshold?: number;
  resetTimeoutMs?: number;
  halfOpenMaxCalls?: number;
  successThreshold?: number;
  failureRate?: { window?: number; minCalls?: number; threshold?: number };
}

/** `new Bridge(config)`. */
export interface BridgeConfig {
  /**
   * Default: the page's origin. One URL (a node, or a load balancer), or the nodes of a cluster
   * in the order to try them: the bridge moves to the next when its node dies (a `node` event).
   */
  backendUrl?: string | string[];
  /** Default: generated and kept in localStorage ("bridge.id"). */
  bridgeId?: string;
  token?: string;
  /** Default 10000. */
  healthIntervalMs?: number;
  /** Default: healthIntervalMs. */
  reportIntervalMs?: number;
  /** By tool name (connectEvolutionSocket, connectAgentSocket, sendLLMPrompt, sendA2AMessage, fetch, your own), or "default". */
  policies?: Record<string, PolicyOverride>;
  /** Defaults for every breaker. */
  breaker?: BreakerSettings;
  /** By breaker name. */
  breakers?: Record<string, BreakerSettings>;
  retryBudget?: { windowMs?: number; ratio?: number; minRetries?: number };
  /** Default: the backend's LLM proxy. */
  llmEndpoint?: string;
  llmModel?: string;
  /** Requests waiting per socket while disconnected. Default 256. */
  outboxLimit?: number;
  /** Default ["evolution", "agents"]. */
  sockets?: ("evolution" | "agents")[];
  /** Registered on the agents socket, again after every reconnect. */
  agent?: { name: string; capabilities?: string[] };
  /** Send state reports to the backend. Default true. */
  report?: boolean;
  /**
   * Keep agent messages and evolution requests waiting for their answer in IndexedDB, and re-send
   * them (same ids: once) after a reload or a crash; a `recovered` event reports each. Default true
   * (maxEntries 256, maxBytes 1 MiB, maxAgeMs 24 h); false turns it off.
   */
  persistOutbox?: boolean | { maxEntries?: number; maxBytes?: number; maxAgeMs?: number };
  /**
   * Tabs of this origin with the same bridgeId, backendUrl, agent and token share one pair of sockets:
   * one tab leads (keeps the sockets), the others go through it. Default true where the browser has
   * Web Locks and BroadcastChannel.
   */
  shareConnection?: boolean;
}

export type HealthStatus = "unknown" | "healthy" | "degraded" | "unhealthy";
export type BreakerStateName = "closed" | "open" | "half_open" | "forced_open";

export interface ComponentHealth {
  status: HealthStatus;
  critical: boolean;
  lastCheck: number | null;
  lastSuccess: number | null;
  consecutiveFailures: number;
  detail?: string;
  latencyMs?: number;
}

export interface HealthChange {
  component: string;
  from: HealthStatus;
  to: HealthStatus;
  aggregateFrom: HealthStatus;
  aggregateTo: HealthStatus;
  at: number;
  detail?: string;
}

export interface BreakerTransition {
  seq: number;
  from: BreakerStateName;
  to: BreakerStateName;
  at: number;
  reason: "consecutive_failures" | "failure_rate" | "reset_timeout" | "trials_succeeded" | "trial_failed" | "manual_reset" | "manual_isolate";
  detail: string;
}

export interface BreakerSnapshot {
  name: string;
  state: BreakerStateName;
  since: number;
  timeInStateMs: number;
  consecutiveFailures: number;
  halfOpenInFlight: number;
  retryAt?: number;
  successes: number;
  failures: number;
  rejections: number;
  openCount: number;
  trips: number;
  lastOpenDurationMs: number | null;
  timeInStatesMs: { closed: number; open: number; halfOpen: number; forcedOpen: number };
  transitions: BreakerTransition[];
}

export interface LatencySummary { count: number; p50Ms: number; p90Ms: number; p99Ms: number; meanMs: number; maxMs: number }

export interface OperationMetrics {
  calls: number;
  attempts: number;
  successes: number;
  failures: number;
  retries: number;
  totalDelayMs: number;
  successRate: number;
  outcomes: Record<string, number>;
  latency: LatencySummary;
  lastError?: string;
}

export interface SocketSnapshot {
  state: "stopped" | "connecting" | "open" | "reconnecting";
  url: string;
  connectedSince?: number;
  reconnects: number;
  outbox: number;
  outboxLimit: number;
  lastError?: string;
  position?: string;
  resets: number;
}

/** `state()`, the `get_os_state` tool's result, and the report sent to the backend. */
export interface BridgeState {
  bridgeId: string;
  instance: string;
  seq: number;
  ts: number;
  version: string;
  page?: string;
  uptimeMs: number;
  health: { status: HealthStatus; components: Record<string, ComponentHealth> };
  breakers: BreakerSnapshot[];
  retry: {
    totalRetries: number;
    successfulRetries: number;
    failedRetries: number;
    successRate: number;
    latency: LatencySummary;
    operations: Record<string, OperationMetrics>;
  };
  sockets: Record<string, SocketSnapshot>;
  /** The listed backend nodes, which one is current, and each node's breaker (`node:<url>`). */
  nodes?: { url: string; current: boolean; breaker: BreakerSnapshot }[];
  /** `provider`: the browser's `document.modelContext` ("native"), its older `navigator.modelContext`
   * ("navigator"), or one a page script installed ("polyfill"); absent without any. */
  webmcp: { available: boolean; provider?: "native" | "navigator" | "polyfill"; tools: string[] };
  /** Page only: */
  /** The node talked to now. */
  node: string;
  liveTimers: number;
  /** The page's values (parsed frames) the wasm module holds now, across every bridge: a count that only grows is a leak. */
  heldValues: number;
  /** `navigator.onLine`: while false the bridge attempts nothing and charges no breaker. */
  online: boolean;
  /** Times the page came back from the back/forward cache (its sockets were closed, then resumed). */
  restored: number;
  /** The tabs sharing this connection: this tab's id and role, the leader's tab, how many (absent when alone). */
  tabs?: { tab: string; role: "leader" | "follower"; leader?: string; count: number };
  /** The outbox kept across reloads (absent when persistOutbox is off). */
  kept?: { entries: number; bytes: number; recovered: number; expired: number; refused: number; errors: number };
  started: boolean;
  reportsSent: number;
  policies: { default: object; named: Record<string, object> };
}

/** An evolution event, as the server sent it. */
export interface EvolutionEvent { type: "event"; topic: string; epoch: string; seq: number; ts: number; publisher: string; data: unknown }
/** The server could not replay what this page missed (it restarted, or history was trimmed). */
export interface EvolutionReset { type: "reset"; epoch: string; seq: number; reason: "epoch_changed" | "history_trimmed" }
/** An agent message; acknowledged after your listener returns (or its promise resolves). */
export interface AgentMessage { type: "message"; id: string | number; from: string; message_type: string; content: unknown; ts: number; priority: "low" | "normal" | "high"; broadcast?: boolean; redelivery?: number }
export interface AgentInfo { agent: string; capabilities: string[]; online: boolean; since: number }

export interface A2aMessage { to: string; messageType: string; content: unknown; priority?: "low" | "normal" | "high"; expiresInMs?: number }
export interface A2aAck { type: "ack"; id: string | number; status: "delivered" | "queued"; duplicate?: boolean }
export interface FetchOptions { tool?: string; signal?: AbortSignal }
export interface Prompt { prompt: string; model?: string; temperature?: number; max_tokens?: number; maxTokens?: number; system_prompt?: string; systemPrompt?: string }

/**
 * Every failure the bridge reports is an Error with a stable `code`. Outcomes of retried
 * operations: circuit_open, retries_exhausted, deadline_exceeded, permanent, cancelled,
 * retry_budget_exhausted. The bridge's own: invalid_argument, invalid_config, not_configured,
 * not_found, limit_exceeded, report_failed, handler_error, outbox_full, stopped, leader_changed,
 * webmcp_failed.
 */
export interface BridgeError extends Error {
  code: string;
  cause?: unknown;
  tool?: string;
  attempts?: number;
  retryInMs?: number;
  serverCode?: string;
  /** handler_error: the handler's whole response. */
  response?: unknown;
}

export type BridgeEventMap = { health: HealthChange; reset: EvolutionReset; message: AgentMessage; presence: { type: "presence"; agent: string; online: boolean; ts: number }; node: { from: string; to: string }; recovered: Recovered };

/** A request an earlier page load left waiting, re-sent by this one (or dropped for age). */
export interface Recovered {
  id: string;
  tool: string;
  socket: "agents" | "evolution";
  outcome: "delivered" | "failed" | "expired";
  createdAt: number;
  /** delivered: the server's answer (an A2aAck, or the request's response). */
  reply?: unknown;
  /** failed: why (a BridgeError). */
  error?: BridgeError;
}
