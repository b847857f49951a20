// Which bridges an operator should look at first, and which ones the filter box shows.
// Pure functions over plain rows ({id, node, state}): no DOM and no clock, so the
// order, the counts and the filter syntax are decided in one place.

/** A bridge's states, problems first: the order of the list and of the counts. */
export const STATES = ["unhealthy", "degraded", "stale", "unknown", "healthy"];
const RANK = Object.fromEntries(STATES.map((s, i) => [s, i]));

/** The state a bridge is listed under: a stale bridge's last health is no longer known, so stale wins. */
export function stateOf(health, stale) {
  if (stale) return "stale";
  return health === "unhealthy" || health === "degraded" || health === "healthy" ? health : "unknown";
}

/** What is wrong, in a few words: the components not healthy and the breakers open. */
export function problemsOf(report) {
  const parts = Object.entries(report?.health?.components ?? {})
    .filter(([, c]) => c.status === "unhealthy" || c.status === "degraded")
    .map(([name, c]) => `${name} ${c.status}`);
  const open = (report?.breakers ?? []).filter((x) => x.state === "open" || x.state === "forced_open").length;
  if (open) parts.push(`${open} breaker${open === 1 ? "" : "s"} open`);
  return parts.join(" · ");
}

// Numeric-aware, so load-2 comes before load-10; case and accents do not separate names.
const names = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** Natural order of bridge ids; a total order (ids equal to the collator still get a fixed place). */
export function compareNames(a, b) {
  return names.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Problems first (unhealthy, degraded, stale, unknown, healthy), then names in natural order. */
export function byUrgency(a, b) {
  return RANK[a.state] - RANK[b.state] || compareNames(a.id, b.id);
}

const KEYS = new Set(["state", "node", "name"]);

/**
 * The filter box's words; a row must match every one. `state:x` matches states starting with x
 * (`state:un` is unhealthy and unknown), `node:x` and `name:x` a part of the node or the name;
 * `key:a,b` matches either. Any other word matches a part of the name, node or state.
 */
export function parseFilter(text) {
  const terms = [];
  for (const word of text.toLowerCase().split(/\s+/)) {
    const m = /^([a-z]+):(.*)$/.exec(word);
    const term = m && KEYS.has(m[1]) ? { key: m[1], values: m[2].split(",") } : { key: null, values: [word] };
    term.values = term.values.filter(Boolean);
    if (term.values.length) terms.push(term);
  }
  return terms;
}

function termMatches(term, row) {
  const id = row.id.toLowerCase();
  const node = (row.node ?? "").toLowerCase();
  return term.values.some((v) => {
    if (term.key === "state") return row.state.startsWith(v);
    if (term.key === "node") return node.includes(v);
    if (term.key === "name") return id.includes(v);
    return id.includes(v) || node.includes(v) || row.state.includes(v);
  });
}

/** Whether `row` matches every term. */
export function matches(terms, row) {
  return terms.every((t) => termMatches(t, row));
}

/**
 * Rows per state among those the filter's other words let through: what each state button
 * would show, so clicking "unhealthy 2" lists exactly two rows.
 */
export function countStates(terms, rows) {
  const others = terms.filter((t) => t.key !== "state");
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  let all = 0;
  for (const row of rows) {
    if (!matches(others, row)) continue;
    counts[row.state]++;
    all++;
  }
  return { all, counts };
}

/** The one state the filter selects (`state:degraded`), else null: which state button is pressed. */
export function selectedState(terms) {
  const states = terms.filter((t) => t.key === "state");
  return states.length === 1 && states[0].values.length === 1 && RANK[states[0].values[0]] != null ? states[0].values[0] : null;
}

/** The filter text with its `state:` words replaced by `state:<state>` (none when `state` is null). */
export function withState(text, state) {
  const words = text.split(/\s+/).filter((w) => w && !/^state:/i.test(w));
  if (state) words.push(`state:${state}`);
  return words.join(" ");
}
