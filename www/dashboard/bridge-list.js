// The Bridges panel's list: counts per state (buttons that filter), the filter box, and one
// page of rows, problems first. A thousand bridges must not mean a thousand of anything in
// the DOM: at most PAGE_ROWS rows exist, kept in place between renders (see syncKeyed).
//
// Test hooks: #bridge-list > li[data-row-id][data-state][data-open], #state-counts
// button[data-state-count][data-n][aria-pressed], #bridge-filter, #bridge-more, #no-match.

import { badge, count, duration, el, setData, setText, syncKeyed } from "/ui.js";
import { STATES, byUrgency, countStates, matches, parseFilter, problemsOf, selectedState, withState } from "./triage.js";

/** Rows shown at most; past that the filter narrows the list. */
export const PAGE_ROWS = 200;

const $ = (sel, root = document) => root.querySelector(sel);

let changed = () => {};

/** Wires the counts, the filter box and the rows once: `onOpen(id)` when a row is chosen, `onChange()` when the filter changes. */
export function setupBridgeList({ onOpen, onChange }) {
  changed = onChange;
  const filter = $("#bridge-filter");
  const counts = $("#state-counts");
  counts.replaceChildren(
    el("button.count", { type: "button", dataset: { stateCount: "all" } }, "all ", el("b.n")),
    ...STATES.map((s) => el("button.count", { type: "button", dataset: { stateCount: s } }, el("span.badge", { dataset: { health: s }, textContent: s }), " ", el("b.n"))),
  );
  // A count button shows only its state; pressed again, every state.
  counts.addEventListener("click", (e) => {
    const state = e.target.closest("button[data-state-count]")?.dataset.stateCount;
    if (!state) return;
    const pressed = state !== "all" && selectedState(parseFilter(filter.value)) === state;
    filter.value = withState(filter.value, state === "all" || pressed ? null : state);
    onChange();
  });
  filter.addEventListener("input", onChange);
  filter.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || !filter.value) return;
    filter.value = "";
    onChange();
  });
  // "/" jumps to the filter, as on most sites with one search box.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.target.closest?.("input, textarea, select")) return;
    if (filter.offsetParent === null) return; // hidden: few bridges
    e.preventDefault();
    filter.focus();
  });
  $("#bridge-list").addEventListener("click", (e) => {
    const id = e.target.closest("li[data-row-id]")?.dataset.rowId;
    if (id != null) onOpen(id);
  });
}

/** Sets the filter box's text (a node's bridges, from the cluster card), renders, and brings the list into view. */
export function setFilter(text) {
  $("#bridge-filter").value = text;
  changed();
  $("#overview").scrollIntoView({ block: "nearest" });
}

/** Whether the filter box holds anything (then the tools stay shown, whatever the layout). */
export const filtering = () => $("#bridge-filter").value.trim() !== "";

/**
 * Renders `rows` ({id, node, state, health, report, silentMs, open}, every bridge, any order):
 * counts, then the rows the filter lets through, most urgent first, at most PAGE_ROWS of them.
 * `nodes` maps node ids to their summary (for marking bridges of a node that is down).
 * Returns how many matched.
 */
export function renderBridgeList(rows, nodes) {
  const terms = parseFilter($("#bridge-filter").value);
  renderCounts(countStates(terms, rows), selectedState(terms));
  const shown = rows.filter((r) => matches(terms, r)).sort(byUrgency);
  const page = shown.slice(0, PAGE_ROWS);
  const list = $("#bridge-list");
  const focused = document.activeElement?.closest?.("#bridge-list li")?.dataset.rowId;
  syncKeyed(list, page.map((r) => [r.id, r]), "rowId", createRow, (li, r) => updateRow(li, r, nodes));
  // A row that moved (its state changed) was taken out and put back: give it its focus again.
  if (focused != null && !list.contains(document.activeElement)) $(`li[data-row-id="${CSS.escape(focused)}"] button`, list)?.focus();
  const more = shown.length - page.length;
  $("#bridge-more").hidden = more <= 0;
  setText($("#bridge-more"), `${count(more)} more — refine the filter to see them`);
  $("#no-match").hidden = shown.length > 0 || rows.length === 0;
  return shown.length;
}

function renderCounts({ all, counts }, selected) {
  for (const button of $("#state-counts").children) {
    const state = button.dataset.stateCount;
    const n = state === "all" ? all : counts[state];
    setData(button, "n", n);
    setText($(".n", button), count(n));
    button.setAttribute("aria-pressed", String(state === "all" ? selected == null : state === selected));
    button.classList.toggle("zero", n === 0);
  }
}

function createRow() {
  return el(
    "li",
    null,
    el("button.row", { type: "button", title: "Show this bridge's details" }, el("span.state"), el("code.name"), el("span.why"), el("span.node.muted"), el("span.age.muted")),
  );
}

function updateRow(li, r, nodes) {
  setData(li, "state", r.state);
  setData(li, "open", r.open);
  badge($(".state", li), "health", r.state);
  setText($(".name", li), r.id);
  setText($(".why", li), why(r));
  const node = nodes.get(r.node);
  const down = node != null && !node.up;
  setText($(".node", li), r.node ? `${r.node}${down ? " (down)" : ""}` : "–");
  setData($(".node", li), "down", down);
  setText($(".age", li), `${duration(r.silentMs)} ago`);
}

function why(r) {
  if (r.state === "stale") return `was ${r.health} · silent`;
  if (r.state === "unknown") return "not checked yet";
  return problemsOf(r.report);
}
