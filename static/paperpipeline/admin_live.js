// Live status and progress in the Paper admin: the changelist (topic "papers") and a change page (its paper).
// Values go through format.js, as the admin's own display methods (papers/display.py) render them.
import { percentText, stepLabel } from "./format.js";
import { startStream } from "./ui.js";

const paperId = document.querySelector("script[data-paper-id]")?.dataset.paperId; // set on a change page
const stream = startStream();
const steps = new Map(); // paper_id → its step, shown only while processing

function cells(id) {
  if (paperId) return paperId === id ? document : null; // change page: its read-only fields
  return document.querySelector(`input.action-select[value="${id}"]`)?.closest("tr") || null;
}

function put(scope, field, text) {
  const node = scope.querySelector(`.field-${field} .readonly`) || scope.querySelector(`.field-${field}`);
  if (node) node.textContent = text;
}

stream.addEventListener("status_changed", ({ detail }) => {
  const scope = cells(detail.paper_id);
  if (!scope) return;
  const status = detail.new_status;
  put(scope, "status", status[0].toUpperCase() + status.slice(1)); // the choice label
  if (status === "queued") put(scope, "progress_percent", percentText(0));
  if (status === "completed") put(scope, "progress_percent", percentText(1));
  const step = status === "processing" ? steps.get(detail.paper_id) || "text_extraction" : "";
  put(scope, "step", stepLabel(step, status));
  if (status !== "processing") put(scope, "step_progress_percent", percentText(0));
});

stream.addEventListener("progress_updated", ({ detail }) => {
  const scope = cells(detail.paper_id);
  if (!scope) return;
  steps.set(detail.paper_id, detail.step);
  put(scope, "progress_percent", percentText(detail.progress));
  put(scope, "step", stepLabel(detail.step, "processing"));
  put(scope, "step_progress_percent", percentText(detail.step_progress));
});

// The changelist: a paper it does not show yet (uploaded after the page was opened) is read in as the admin
// renders it, in the admin's order and under its filters, by reading this page again; a deleted one goes.
let reading = null; // the read in flight
let again = false; // another paper appeared while reading: read once more after it
const asked = new Set(); // papers whose events asked for a read
const outside = new Set(); // papers a read did not show (filtered out, or on another page): read again only when
// their status changes, not on each of their hundreds of events

async function addNewRows() {
  if (reading) {
    again = true;
    return;
  }
  const wanted = new Set(asked); // the papers this read answers for; later ones wait for the next read
  asked.clear();
  reading = fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
  try {
    const response = await reading;
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const body = document.querySelector("#result_list tbody");
    const rows = [...fresh.querySelectorAll("#result_list tbody tr")];
    if (!body) {
      if (rows.length) location.reload(); // the page said "0 papers": it has no table to add rows to
      return;
    }
    let before = null; // insert each new row in front of the next row this page already shows
    for (const row of rows.reverse()) {
      const id = row.querySelector("input.action-select")?.value;
      const shown = id && cells(id);
      if (shown) {
        before = shown;
        continue;
      }
      const added = document.importNode(row, true);
      added.classList.add("live-added");
      body.insertBefore(added, before);
      before = added;
    }
    for (const id of wanted) if (!cells(id)) outside.add(id);
    // The counts the admin shows ("2 papers", "0 of 2 selected") as the page read them.
    const paginator = fresh.querySelector(".paginator");
    if (paginator) document.querySelector(".paginator")?.replaceWith(document.importNode(paginator, true));
    const counter = document.querySelector(".action-counter");
    const total = fresh.querySelector(".action-counter")?.dataset.actionsIcnt;
    if (counter && total) {
      counter.dataset.actionsIcnt = total;
      counter.textContent = counter.textContent.replace(/of \d+/, `of ${total}`);
    }
  } finally {
    reading = null;
    if (again) {
      again = false;
      addNewRows();
    }
  }
}

if (paperId) {
  stream.subscribePaper(paperId);
} else {
  stream.addEventListener("event", ({ detail }) => {
    const id = detail.paper_id;
    if (!id || cells(id)) return;
    if (outside.has(id) && detail.event_type !== "status_changed") return;
    outside.delete(id);
    asked.add(id);
    addNewRows();
  });
  stream.addEventListener("paper_deleted", ({ detail }) => cells(detail.paper_id)?.remove());
  stream.subscribeTopic("papers");
}
