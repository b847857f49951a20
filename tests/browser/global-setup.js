// Starts what the browser tests talk to, for real:
// - a stand-in LLM server speaking the OpenAI chat completions protocol (the one
//   thing we cannot run here), on 127.0.0.1:0;
// - the backend binary on 127.0.0.1:0 with the demo fault switch, its LLM proxy
//   pointed at that stand-in.
// - a static server for "user pages" (tests/browser/pages/) on its own origin,
//   the way an application on another local origin would use the bridge.
// Their URLs reach the tests as process.env.BRIDGE_URL, LLM_FIXTURE_URL and
// PAGES_URL; the returned function stops them all.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { backendBin, listeningAt } from "./backend.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

function startLlmFixture() {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method === "GET" && req.url === "/v1/models") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ data: [{ id: "fixture-model" }] }));
      }
      if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
        res.writeHead(404);
        return res.end();
      }
      const request = JSON.parse(body || "{}");
      const last = (request.messages || []).at(-1) || {};
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "chatcmpl-fixture",
          object: "chat.completion",
          model: request.model,
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: `fixture says: ${last.content}` } }],
          usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
        }),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Scripts a user's page may load from its own origin, by URL path.
const VENDOR = {
  "/vendor/webmcp-polyfill.js": path.join(here, "node_modules/@mcp-b/webmcp-polyfill/dist/index.iife.js"),
};

function startPages(backend) {
  const dir = path.join(here, "pages");
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, "http://x").pathname;
    // cockatiel's ES modules import each other by relative path: serve its dist/ folder.
    const cockatiel = pathname.match(/^\/vendor\/cockatiel\/([\w/.-]+\.js)$/);
    const vendored =
      VENDOR[pathname] ??
      (cockatiel && !cockatiel[1].includes("..") ? path.join(here, "node_modules/cockatiel/dist", cockatiel[1]) : null);
    if (vendored && fs.existsSync(vendored)) {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
      return res.end(fs.readFileSync(vendored));
    }
    const name = path.basename(new URL(req.url, "http://x").pathname);
    const file = path.join(dir, name);
    if (!name.endsWith(".html") || !fs.existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
    res.end(fs.readFileSync(file, "utf8").replaceAll("{{BRIDGE_URL}}", backend));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

export default async function globalSetup() {
  const llm = await startLlmFixture();
  const llmUrl = `http://127.0.0.1:${llm.address().port}/v1/chat/completions`;
  process.env.LLM_FIXTURE_URL = llmUrl;
  const www = process.env.BRIDGE_WWW || path.join(root, "www");
  const child = spawn(backendBin, ["--port", "0", "--www", www, "--demo"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn", BRIDGE_LLM__UPSTREAM: `"${llmUrl}"` },
  });
  const url = await listeningAt(child);
  process.env.BRIDGE_URL = url;
  const pages = await startPages(url);
  process.env.PAGES_URL = `http://127.0.0.1:${pages.address().port}`;
  return async () => {
    await new Promise((resolve) => pages.close(resolve));
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await new Promise((resolve) => llm.close(resolve));
  };
}
