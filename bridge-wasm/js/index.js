// The module a page imports (`/pkg/bridge_wasm.js`, this file bundled with the
// module's glue): `init`, the `Bridge` class, and the built-in policies.
//
//   import init, { Bridge } from "/pkg/bridge_wasm.js";
//   await init();
//   const bridge = new Bridge({ healthIntervalMs: 10000 });

import { backoffDelays as delays, defaultPoliciesJson, policyForJson } from "./core.js";

export { default, initSync, version } from "./core.js";
export { Bridge, Subscription } from "./bridge.js";

/** The built-in per-tool retry policies, by name, plus `default`. */
export const defaultPolicies = () => JSON.parse(defaultPoliciesJson());

/** The retry policy a tool named `name` gets (unknown names get the default). */
export const policyFor = (name) => JSON.parse(policyForJson(String(name)));

/** The delays, in ms, that tool `name`'s policy would wait between its retries, jitter drawn from `seed`. */
export const backoffDelays = (name, seed) => new Float64Array(JSON.parse(delays(String(name), seed >>> 0)));
