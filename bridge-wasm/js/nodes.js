// The backend node the bridge talks to now, shared by the sockets, the health
// checks, the reporter, the LLM proxy and `fetch`. Which node, and when to
// move to another, is decided in the wasm module (bridge-core's `Nodes`); a
// move is told to the page as a `node` event.

import { atHand } from "./errors.js";
import { now } from "./platform.js";

export class Backends {
  /** `urls`: the page's nodes, in order; `changed` is told of a move, and `events` emit it. */
  constructor(core, urls, events, changed) {
    this.core = core;
    this.urls = urls;
    this.events = events;
    this.changed = changed;
    core.setNodes(urls, now());
  }

  /** `http(s)://host:port` of the node to talk to now. */
  url() {
    return this.core.node();
  }

  /** A URL on one of the nodes, moved to the current node (others are kept as they are). */
  follow(url) {
    const current = this.url();
    for (const node of this.urls) {
      if (url.startsWith(node)) {
        const rest = url.slice(node.length);
        if (rest === "" || rest[0] === "/" || rest[0] === "?") return current + rest;
      }
    }
    return url;
  }

  /** A connection to `node` succeeded. */
  succeeded(node) {
    this.core.nodeSucceeded(node, now());
  }

  /** A connection to `node` failed with `failure`; the bridge may move to another node. */
  failed(node, failure) {
    const moved = atHand(this.core, failure).nodeFailed(node, now());
    if (moved !== undefined) {
      this.changed.notify();
      this.events.emit("node", JSON.parse(moved));
    }
  }
}
