// A page imports the wasm module from the running backend and calls it.
import { test, expect } from "@playwright/test";

const url = () => process.env.BRIDGE_URL;

test("the demo page imports /pkg/bridge_wasm.js and calls its exports", async ({ page }) => {
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(`${url()}/demo/`);
  await expect(page.locator("#bridge-version")).toHaveText(/^\d+\.\d+\.\d+$/);

  const result = await page.evaluate(async () => {
    const m = await import("/pkg/bridge_wasm.js");
    await m.default();
    return { version: m.version(), llm: m.policyFor("sendLLMPrompt"), delays: m.backoffDelays("fetch", 1) };
  });
  expect(result.llm.maxRetries).toBe(2);
  expect(result.llm.baseDelayMs).toBe(500);
  expect(result.delays).toHaveLength(3);
  expect(errors).toEqual([]);
});

test("the wasm is served as application/wasm", async ({ request }) => {
  const resp = await request.get(`${url()}/pkg/bridge_wasm_bg.wasm`);
  expect(resp.status()).toBe(200);
  expect(resp.headers()["content-type"]).toBe("application/wasm");
});
