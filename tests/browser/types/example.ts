// The page-script example of docs/bridge.md, type-checked against the generated
// pkg/bridge_wasm.d.ts (cargo xtask test runs `tsc --noEmit` on it).
import init, { Bridge, type BridgeError, type EvolutionEvent, type HealthChange } from "../../../www/pkg/bridge_wasm.js";

export async function main(): Promise<void> {
  await init();

  const bridge = new Bridge({
    healthIntervalMs: 10_000,
    agent: { name: "checkout-page", capabilities: ["orders"] },
    policies: { fetch: { maxRetries: 4, baseDelayMs: 200 }, loadCart: { attemptTimeoutMs: 2_000 } },
    breakers: { loadCart: { failureThreshold: 3, resetTimeoutMs: 10_000 } },
  });

  bridge.addEventListener("health", (change: HealthChange) => {
    document.title = `backend: ${change.aggregateTo}`;
  });
  bridge.addEventListener("reset", () => console.warn("missed some events; reloading state"));
  bridge.onMessage(async (message) => {
    console.log(`${message.from} says`, message.content);
  });

  await bridge.start();

  const subscription = bridge.subscribe(["orders.*"], (event: EvolutionEvent) => {
    console.log(event.topic, event.seq, event.data);
  });

  try {
    const response = await bridge.fetch("/api/cart", { headers: { accept: "application/json" } }, { tool: "fetch" });
    const cart: unknown = await response.json();
    const total = await bridge.call("loadCart", async ({ attempt }) => {
      console.log("attempt", attempt);
      return 42;
    });
    const sum: number = total + 1;
    const ack = await bridge.sendA2A({ to: "fulfilment", messageType: "order.placed", content: { cart, sum } });
    console.log(ack.status);
    const result = await bridge.request("evolve", { generation: 12 }, { timeoutMs: 5_000 });
    console.log(result);
  } catch (e) {
    const error = e as BridgeError;
    if (error.code === "circuit_open") console.warn(`backend down; retry in ${error.retryInMs} ms`);
    else throw error;
  }

  const state = bridge.state();
  for (const breaker of state.breakers) console.log(breaker.name, breaker.state, breaker.trips);
  bridge.registerWebMcpTools();
  subscription.unsubscribe();
  await bridge.stop();
}
