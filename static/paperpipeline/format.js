// How the pages show values: step labels, error messages, times, confidences, percentages and row order.
// The tables come from the server (papers/display.py, embedded as JSON); the templates render through the same
// tables and rounding, and every page runs formatAll() on load, so a live page and a reloaded one read alike.

const TABLES = JSON.parse(document.getElementById("display-tables")?.textContent || "{}");
const NONE = TABLES.none || "—";

// A finished paper has no current step.
export function stepLabel(step, status) {
  if (status !== "processing" || !step) return NONE;
  return TABLES.steps?.[step] || capitalize(step.replaceAll("_", " "));
}

// The human message of an error code; `fallback` (the server's own words) for a code the table lacks.
export function errorText(code, fallback = "") {
  return TABLES.errors?.[code] || fallback || TABLES.errors?.unknown || "Something went wrong.";
}

// A system_status figure: at most two decimals, in the viewer's notation.
const FIGURE = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export function figureText(value) {
  return value === null || value === undefined || value === "" ? "–" : FIGURE.format(Number(value));
}

// Half up from the shortest decimal form, as Python's Decimal(repr(x)) does (0.855 → 0.86, not toFixed's 0.85).
function shifted(value, places) {
  const number = Number(value);
  const exact = Number(`${number}e${places}`);
  return Math.round(Number.isFinite(exact) ? exact : number * 10 ** places);
}

export function confidenceText(value) {
  return (shifted(value, 2) / 100).toFixed(2);
}

export function percentText(fraction) {
  return `${shifted(fraction || 0, 2)}%`;
}

// The viewer's local time, with its zone named.
const DATETIME = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit",
  timeZoneName: "short" });

export function timeText(iso, { dateToo = true } = {}) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return NONE;
  return (dateToo ? DATETIME : TIME).format(date);
}

// A <time> element for an ISO timestamp, formatted.
export function timeNode(iso, format = "datetime", className = "") {
  const node = document.createElement("time");
  if (className) node.className = className;
  node.dateTime = iso;
  node.dataset.format = format;
  formatNode(node);
  return node;
}

// Order of entity rows and of relationship rows: confidence, highest first, then by name (code points,
// as the server's sort), then id.
export function rowOrder(a, b) {
  const [x, y] = [a.dataset, b.dataset];
  return Number(y.confidence) - Number(x.confidence) || compare(x.sortKey, y.sortKey)
    || compare(x.entityId || x.relationshipId, y.entityId || y.relationshipId);
}

export function insertSorted(body, row) {
  const after = [...body.children].find((other) => rowOrder(row, other) < 0);
  body.insertBefore(row, after || null);
}

const FORMATS = {
  datetime: (node) => timeText(node.getAttribute("datetime")),
  time: (node) => timeText(node.getAttribute("datetime"), { dateToo: false }),
  confidence: (node) => confidenceText(node.dataset.value),
  percent: (node) => percentText(node.dataset.value),
  step: (node) => stepLabel(node.dataset.step, node.dataset.status),
  error: (node) => errorText(node.dataset.code),
  figure: (node) => figureText(node.dataset.value),
};

export function formatNode(node) {
  const format = FORMATS[node.dataset.format];
  if (format) node.textContent = format(node);
}

export function formatAll(root = document) {
  for (const node of root.querySelectorAll("[data-format]")) formatNode(node);
}

function compare(a = "", b = "") {
  return a < b ? -1 : a > b ? 1 : 0;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
