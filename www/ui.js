// What the dashboard and the demo page share: the words for states, the order of
// health components, and the small DOM and formatting helpers they render with.

export const COMPONENT_ORDER = ["backend", "evolutionSocket", "agentSocket", "webmcp", "llm"];
export const STATE_WORDS = { closed: "closed", open: "open", half_open: "half-open", forced_open: "forced open" };

/** Sets `e`'s text only when it changed (no needless layout, no lost selection). */
export function setText(e, text) {
  const t = String(text);
  if (e.textContent !== t) e.textContent = t;
}

/** Sets `e.dataset[key]` only when it changed (tests and CSS watch these). */
export function setData(e, key, value) {
  const v = String(value);
  if (e.dataset[key] !== v) e.dataset[key] = v;
}

/** `el("div.a.b", {title: "x", dataset: {k: "v"}}, child, "text")`. */
export function el(spec, props, ...children) {
  const [tag, ...classes] = spec.split(".");
  const e = document.createElement(tag || "div");
  if (classes.length) e.className = classes.join(" ");
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && k !== "role") e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

/**
 * Keeps `parent`'s keyed children (`data-<attr>`) in step with `items` ([key, value]), in that
 * order: children that stay are updated in place, never rebuilt (focus and listeners survive).
 */
export function syncKeyed(parent, items, attr, create, update, destroy) {
  const old = new Map([...parent.children].map((c) => [c.dataset[attr], c]));
  let prev = null;
  for (const [key, value] of items) {
    let node = old.get(key);
    if (node) old.delete(key);
    else {
      node = create(key, value);
      node.dataset[attr] = key;
    }
    update(node, value);
    const want = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (node !== want) parent.insertBefore(node, want);
    prev = node;
  }
  for (const node of old.values()) {
    destroy?.(node);
    node.remove();
  }
}

/** A state badge: `data-<kind>` for the colour, the word for people (never colour alone). */
export function badge(e, kind, value, word) {
  e.classList.add("badge");
  setData(e, kind, value);
  setText(e, word ?? value);
}

/** A count for people: "1,000"; "–" when unknown. */
export const count = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));

/** A duration for people: "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function duration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "–";
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
}
