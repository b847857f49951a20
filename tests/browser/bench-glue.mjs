// What a crossing into the wasm module costs, through its glue (bridge-wasm/js/core.js),
// in Node's V8: a few exports on the paths that run most, per call. A benchmark that
// prints its figures; nothing fails on a slow machine.
//
//   cargo xtask build && node tests/browser/bench-glue.mjs
//
// `landed` is what call()'s lanes send every 64 calls; `isOpen` a plain number call.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const { initSync, Core } = await import(`${root}bridge-wasm/js/core.js`);
initSync({ module: readFileSync(`${root}www/pkg/bridge_wasm_bg.wasm`) });

const core = new Core(1);
const id = core.toolId("bench");
const permit = core.lane(id, 0);
const N = 300_000;
const perCall = (f) => {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) f(i);
  return Math.round(((performance.now() - t0) * 1e6) / N);
};
for (let round = 1; round <= 3; round++) {
  const figures = {
    "landed(0 successes)": perCall((i) => core.landed(id, permit, 0, [], i)),
    "landed(64 successes, 4 timed)": perCall((i) => core.landed(id, permit, 64, [1, 2, 3, 4], i)),
    isOpen: perCall(() => core.isOpen(0)),
    lane: perCall((i) => core.lane(id, i)),
  };
  console.log(`round ${round}: ${Object.entries(figures).map(([k, v]) => `${k} ${v} ns`).join(", ")}`);
}
