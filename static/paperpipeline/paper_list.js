// The paper list: live status and progress of every paper (topic "papers"), the system panel (topic
// "system"), and uploads by file picker or drag and drop, several at once.
//
// Each row shows one record per paper. Every field of a record remembers the `seq` it is current to, and
// a change applies only to the fields it is newer for: a live event (its own seq) or a row fetched from
// the server (the seq it was read at). So events and fetches may land in any order and a row still ends at
// its paper's newest state. Everything is applied synchronously; a row is created on first sight, a fetch
// only fills it in, and a paper has at most one fetch in flight.
import { enableActions, hideError, showError } from "./actions.js";
import { errorText, figureText, formatAll, stepLabel } from "./format.js";
import { announce, csrfToken, el, setBar, setStatus, startStream } from "./ui.js";

const rows = document.getElementById("paper-rows");
const records = new Map(); // paper_id → {row, seen, status, progress, step, error, filled, fetching, again}

// What a status change does to the other fields, as the server does it (papers/services.py).
const STATUS_EFFECTS = {
  queued: { progress: 0, step: "", error: "" },
  processing: { progress: 0, step: "text_extraction", error: "" },
  completed: { progress: 1 },
};

const unset = () => ({ value: null, seq: -1 });

// The paper's record; on first sight its row is created at once (the server's, or a placeholder).
function recordFor(paperId, row = null) {
  let record = records.get(paperId);
  if (!record) {
    record = { row: row || placeholderRow(paperId), seen: -1, status: unset(), progress: unset(), step: unset(),
      error: unset(), filled: false, fetching: false, again: false };
    records.set(paperId, record);
    if (!record.row.isConnected) {
      document.getElementById("no-papers")?.remove();
      rows.prepend(record.row);
    }
  }
  return record;
}

function placeholderRow(paperId) {
  return el("tr", { "data-paper-id": paperId, "aria-busy": "true" },
    el("td", {}, el("a", { href: `/papers/${encodeURIComponent(paperId)}/` }, "…")),
    el("td", {}, el("span", { class: "badge", "data-field": "status" }, "…"), " ",
      el("span", { class: "why small", "data-field": "why", hidden: "" })),
    el("td", {}, el("div", { class: "bar small", role: "progressbar", "aria-label": "Progress",
      "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "data-field": "progress" }, el("span"))),
    el("td", { "data-field": "step", class: "small" }, "—"),
    el("td", { class: "small muted" }), el("td"));
}

// Set a field if `seq` is newer than what it shows; say whether it changed.
function update(record, field, value, seq) {
  if (seq <= record[field].seq) return false;
  record[field] = { value, seq };
  return true;
}

function render(record) {
  const { row } = record;
  const status = record.status.value;
  if (status) {
    setStatus(row.querySelector("[data-field=status]"), status);
    row.dataset.status = status; // which actions show (app.css)
  }
  setBar(row.querySelector("[data-field=progress]"), record.progress.value ?? 0, status);
  row.querySelector("[data-field=step]").textContent = stepLabel(record.step.value, status);
  const why = row.querySelector("[data-field=why]"); // a failed row says why
  why.hidden = status !== "failed";
  why.textContent = status === "failed" ? errorText(record.error.value) : "";
}

// A row rendered by the server (templates/papers/_paper_row.html), current to its `data-seq`.
function applyRow(fresh) {
  const record = recordFor(fresh.dataset.paperId, fresh);
  const seq = Number(fresh.dataset.seq);
  const percent = Number(fresh.querySelector("[data-field=progress]").getAttribute("aria-valuenow"));
  update(record, "status", fresh.querySelector("[data-field=status]").textContent.trim(), seq);
  update(record, "progress", percent / 100, seq);
  update(record, "step", fresh.dataset.step, seq);
  update(record, "error", fresh.dataset.errorCode, seq);
  record.seen = Math.max(record.seen, seq);
  formatAll(fresh);
  if (record.row !== fresh) record.row.replaceWith(fresh); // title, link and date come from the server
  record.row = fresh;
  record.filled = true;
  render(record);
}

function applyEvent(event) {
  if (!event.paper_id || typeof event.seq !== "number") return;
  const record = recordFor(event.paper_id);
  // A seq beyond the next one: events were missed (lost live, or progress coalesced); the server has them.
  const gap = record.seen >= 0 && event.seq > record.seen + 1;
  record.seen = Math.max(record.seen, event.seq);
  let statusChanged = false;
  if (event.event_type === "status_changed") {
    statusChanged = update(record, "status", event.new_status, event.seq);
    for (const [field, value] of Object.entries(STATUS_EFFECTS[event.new_status] || {})) {
      update(record, field, value, event.seq);
    }
  }
  if (event.event_type === "error") update(record, "error", event.error_code, event.seq);
  if (event.event_type === "progress_updated") {
    update(record, "progress", event.progress, event.seq);
    update(record, "step", event.step, event.seq);
  }
  render(record);
  if (!record.filled || gap) refresh(event.paper_id);
  if (statusChanged) announce(`${record.row.querySelector("a").textContent}: ${event.new_status}`);
}

// Server-rendered rows: null when the fetch failed (a later event or reconnect tries again), [] when gone.
async function fetchRows(url) {
  try {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 404) return [];
    if (!response.ok || response.redirected) return null;
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    return [...template.content.querySelectorAll("tr[data-paper-id][data-seq]")];
  } catch {
    return null;
  }
}

// Fetch one paper's row; a request made meanwhile is served by one more fetch after this one.
async function refresh(paperId) {
  const record = records.get(paperId);
  if (!record) return;
  if (record.fetching) return void (record.again = true);
  record.fetching = true;
  try {
    do {
      record.again = false;
      const fresh = await fetchRows(`/papers/${encodeURIComponent(paperId)}/row/`);
      if (fresh?.length === 0 && records.get(paperId) === record) {
        forget(paperId); // deleted, or no longer visible to this user
      } else if (fresh?.length) {
        applyRow(fresh[0]);
      }
    } while (record.again);
  } finally {
    record.fetching = false;
  }
}

// A paper deleted (here, on another page, or by anyone who may): its row goes.
function forget(paperId) {
  const record = records.get(paperId);
  if (!record) return;
  records.delete(paperId);
  record.row.remove();
}

// The topic has no `since`: after every subscribe (the first, and each reconnect) bring every row up to
// the server's state, so events published before the subscription took effect are not missed.
async function reconcile() {
  const fresh = await fetchRows("/papers/rows/");
  for (const row of (fresh || []).reverse()) applyRow(row); // oldest first: new rows are prepended
}

for (const row of rows.querySelectorAll("tr[data-paper-id]")) applyRow(row);

const stream = startStream();
stream.addEventListener("event", ({ detail }) => applyEvent(detail));
stream.addEventListener("subscribed", ({ detail }) => {
  if (detail.topic === "papers") reconcile();
});
stream.addEventListener("paper_deleted", ({ detail }) => forget(detail.paper_id));
stream.addEventListener("system_status", ({ detail }) => {
  for (const node of document.querySelectorAll("#system-panel [data-stat]")) {
    node.dataset.value = String(detail[node.dataset.stat]);
    node.textContent = figureText(detail[node.dataset.stat]);
  }
});
stream.subscribeTopic("papers");
stream.subscribeTopic("system");

// Uploads: the form works without JavaScript; with it, files upload in parallel and the page stays.
const form = document.getElementById("upload-form");
const input = document.getElementById("id_file");
const zone = document.getElementById("dropzone");
const status = document.getElementById("upload-status");
const uploadErrors = document.getElementById("upload-errors");

enableActions({
  alert: document.getElementById("action-error"),
  titleOf: (row) => row.querySelector("a")?.textContent || "this paper",
  onDeleted: forget,
});

async function upload(files) {
  const title = files.length === 1 ? document.getElementById("id_title").value : "";
  status.textContent = `Uploading ${files.length} file(s)…`;
  hideError(uploadErrors);
  const results = await Promise.all([...files].map(async (file) => {
    const body = new FormData();
    body.append("file", file);
    if (title) body.append("title", title);
    try {
      const response = await fetch("/api/papers/", { method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() } });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) return { file, error: data.fields?.file?.[0] || errorText(data.code, data.detail) };
      if (!recordFor(data.id).filled) refresh(data.id); // one fetch per paper, whoever asks
      return { file };
    } catch {
      return { file, error: errorText("network") };
    }
  }));
  const queued = results.filter((r) => !r.error).map((r) => `${r.file.name}: queued`);
  const failed = results.filter((r) => r.error).map((r) => `${r.file.name}: ${r.error}`);
  status.textContent = queued.join(" · ");
  if (failed.length) showError(uploadErrors, "", failed.join(" · "));
  form.reset();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (input.files.length) upload(input.files);
});
for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  zone.addEventListener(name, () => zone.classList.remove("over"));
}
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  if (event.dataTransfer.files.length) upload(event.dataTransfer.files);
});
