// Starts the real backend binary on 127.0.0.1:0 and hands its URL to the
// tests through process.env.BRIDGE_URL; the returned function stops it.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

export default async function globalSetup() {
  const bin = process.env.BRIDGE_BACKEND_BIN || path.join(root, "target/debug/bridge-backend");
  const www = process.env.BRIDGE_WWW || path.join(root, "www");
  const child = spawn(bin, ["--port", "0", "--www", www], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not report its address within 15 s`)), 15_000);
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      buffered += chunk;
      const m = buffered.match(/listening on (http:\/\/[^\s/]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`${bin} exited with ${code} before listening`)));
    child.on("error", reject);
  });
  process.env.BRIDGE_URL = url;
  return async () => {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  };
}
