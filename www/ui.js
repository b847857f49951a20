// What the dashboard and the demo page share: the words for states, the order of
// health components, and the small DOM and formatting helpers both render with.

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

/** A state badge: `data-<kind>` for the colour, the word for people (never colour alone). */
export function badge(e, kind, value, word) {
  e.classList.add("badge");
  setData(e, kind, value);
  setText(e, word ?? value);
}

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
