// What bridge.call(tool, fn) costs a successful call, in Chromium, measured
// against a bare `await fn()` in the same page (median of 7 rounds of 100k calls),
// beside cockatiel's wrap(retry, circuitBreaker) in the same page and rounds.
// The figure is printed; the assertion is a loose guard against regressions
// (timing on a shared CI machine varies).
import { test, expect } from "@playwright/test";

test("call() overhead on the success path", async ({ page }) => {
  test.setTimeout(120_000);
  await page.goto(`${process.env.PAGES_URL}/overhead.html`);
  await page.waitForFunction(() => window.ready === true);
  const r = await page.evaluate(() => window.measure());
  console.log(`FIGURE call() overhead: ${Math.round(r.overheadNs)} ns per call (median of rounds ${JSON.stringify(r.rounds)})`);
  console.log(
    `FIGURE cockatiel wrap(retry, circuitBreaker).execute() overhead: ${Math.round(r.cockatielNs)} ns per call ` +
      `(median of rounds ${JSON.stringify(r.cockatielRounds)}); call() / cockatiel = ${(r.overheadNs / r.cockatielNs).toFixed(2)}`,
  );
  expect(r.successes).toBe(r.calls);
  expect(r.calls).toBeGreaterThanOrEqual(7 * 100_000);
  expect(r.overheadNs).toBeLessThan(20_000);
});
