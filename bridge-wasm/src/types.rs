//! TypeScript types for `pkg/bridge_wasm.d.ts`: the shapes the JS API takes and
//! returns (wasm-bindgen alone would say `any`). Kept next to the code they
//! describe: `config.rs`, `bridge_core::report`, `bridge_core::protocol::frames`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A retry policy override; every field optional. */
export interface PolicyOverride {
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  jitter?: { mode: "none" | "full" | "decorrelated" } | { mode: "proportional"; ratio?: number };
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
  webmcp?: { available: boolean; provider?: "native" | "navigator" | "polyfill"; tools: string[] };
  /** Page only: */
  /** The node talked to now. */
  node: string;
  liveTimers: number;
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
export interface Prompt { prompt: string; model?: string; temperature?: number; max_tokens?: number; system_prompt?: string }

/**
 * Every failure the bridge reports is an Error with a stable `code`. Outcomes of retried
 * operations: circuit_open, retries_exhausted, deadline_exceeded, permanent, cancelled,
 * retry_budget_exhausted. The bridge's own: invalid_argument, invalid_config, not_configured,
 * not_found, limit_exceeded, report_failed, handler_error, outbox_full, stopped, leader_changed.
 */
export interface BridgeError extends Error {
  code: string;
  cause?: unknown;
  tool?: string;
  attempts?: number;
  retryInMs?: number;
  serverCode?: string;
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
"#;
