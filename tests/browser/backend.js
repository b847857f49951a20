// The backend binary the browser tests run, and how to know it is listening.
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The backend binary under test (debug by default). */
export const backendBin = process.env.BRIDGE_BACKEND_BIN || path.join(root, "target/debug/bridge-backend");

/** Resolves with the URL a spawned backend prints once it listens; rejects if it exits first or after 15 s. */
export function listeningAt(child, what = backendBin) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not report its address within 15 s`)), 15_000);
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      buffered += chunk;
      const m = buffered.match(/listening on (http:\/\/[^\s/]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`${what} exited with ${code} before listening`)));
    child.on("error", reject);
  });
}
