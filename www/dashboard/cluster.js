// The cluster card: every node the backend knows (`/status` cluster.nodes, this one included),
// whether it is up and ready, its store, its connections and the bridges reporting to it.
// On the memory store that is this node alone; with `--store nats`, every node of the cluster.
//
// Test hooks: #cluster-nodes tr[data-node-id][data-up][data-ready][data-self], .node-state, .bridges button.

import { badge, count, duration, el, setData, setText, syncKeyed } from "/ui.js";
import { compareNames } from "./triage.js";

const $ = (sel, root = document) => root.querySelector(sel);

/** This node first, then nodes up before nodes down, then by id. */
function nodeOrder(self) {
  return (a, b) => (b.id === self) - (a.id === self) || b.up - a.up || compareNames(a.id, b.id);
}

/**
 * Renders the card from `status`; `attention` maps a node id to how many of its bridges are not
 * healthy (from the dashboard's own list), and `onNode(id)` lists a node's bridges.
 */
export function renderCluster(status, attention, onNode) {
  const nodes = status.cluster?.nodes ?? [];
  const self = status.node?.id;
  const mine = nodes.find((n) => n.id === self);
  syncKeyed(
    $("#cluster-nodes tbody"),
    [...nodes].sort(nodeOrder(self)).map((n) => [n.id, n]),
    "nodeId",
    (id) => nodeRow(id, onNode),
    (tr, n) => updateNode(tr, n, { self, version: mine?.version, attention: attention.get(n.id) ?? 0 }),
  );
  const down = nodes.filter((n) => !n.up).length;
  const stores = [...new Set(nodes.map((n) => n.store))].join(", ");
  setText(
    $("#cluster-summary"),
    nodes.length ? `${nodes.length} node${nodes.length === 1 ? "" : "s"} · ${nodes.length - down} up${down ? ` · ${down} down` : ""} · store ${stores}` : "",
  );
  $("#cluster").classList.toggle("bad", down > 0);
}

function nodeRow(id, onNode) {
  const list = el("button.link", { type: "button", title: "List this node's bridges" });
  list.addEventListener("click", () => onNode(id));
  return el(
    "tr",
    null,
    el("th", { scope: "row" }, el("code.id", { textContent: id }), " ", el("span.self-mark", { textContent: "this node" }), el("div.addr.muted.small")),
    el("td", null, el("span.node-state"), el("div.problem.small")),
    el("td.store"),
    el("td.conns.num"),
    el("td.bridges.num", null, list, el("div.attention.small")),
    el("td.version"),
    el("td.heard.muted"),
  );
}

function updateNode(tr, n, { self, version, attention }) {
  const isSelf = n.id === self;
  setData(tr, "up", n.up);
  setData(tr, "ready", n.ready);
  setData(tr, "self", isSelf);
  $(".self-mark", tr).hidden = !isSelf;
  setText($(".addr", tr), n.addr ?? "");
  const state = !n.up ? "down" : n.ready ? "up" : "not_ready";
  badge($(".node-state", tr), "node", state, { up: "up · ready", not_ready: "up · not ready", down: "down" }[state]);
  setText($(".problem", tr), n.problem ?? "");
  setText($(".store", tr), n.store);
  setText($(".conns", tr), `${count(n.evolutionConnections)} / ${count(n.agentsConnections)}`);
  setText($(".bridges button", tr), count(n.bridges));
  setText($(".attention", tr), attention ? `${count(attention)} need attention` : "");
  setText($(".version", tr), `v${n.version}${n.up && n.unixMs > n.startedUnixMs ? ` · up ${duration(n.unixMs - n.startedUnixMs)}` : ""}`);
  $(".version", tr).classList.toggle("differs", version != null && n.version !== version);
  $(".version", tr).title = version != null && n.version !== version ? `this node runs v${version}` : "";
  setText($(".heard", tr), isSelf ? "this node" : `${duration(n.lastHeardMsAgo)} ago`);
}
