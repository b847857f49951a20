// Real Chromium (Debian's /usr/bin/chromium; never a downloaded one) against
// the real backend, which global-setup.js starts on 127.0.0.1:0.
import { defineConfig } from "@playwright/test";
import { WITH_WEBMCP } from "./chromium.js";

export default defineConfig({
  testDir: "./specs",
  globalSetup: "./global-setup.js",
  outputDir: "../../target/playwright/results",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    headless: true,
    launchOptions: WITH_WEBMCP,
  },
});
