// The progress page of one paper: bars, step, ETA, entities by type, relationships, errors and the
// status timeline, all live; it subscribes with `since` = the seq the page was rendered at. Values go through
// format.js, as on load, so the live page and a reload read alike.
import { enableActions, hideError } from "./actions.js";
import { confidenceText, formatNode, insertSorted, rowOrder, timeNode } from "./format.js";
import { startGraph } from "./graph.js";
import { announce, el, setBar, setStatus, startStream } from "./ui.js";

const root = document.getElementById("paper");
const paperId = root.dataset.paperId;
const names = new Map(); // entity_id → name, for relationship rows
for (const row of document.querySelectorAll("[data-entity-id]")) names.set(row.dataset.entityId, row.dataset.entityName);

// Rows in the one order (format.js), whatever order the server's database gave.
for (const body of document.querySelectorAll("tbody[data-entity-type], #relationships")) {
  body.append(...[...body.children].sort(rowOrder));
}

const stream = startStream();
startGraph(stream, paperId); // before subscribing: the graph hears every event from the first
stream.subscribePaper(paperId, { since: Number(root.dataset.seq) });

const $ = (id) => document.getElementById(id);
const counts = () => {
  $("entity-count").textContent = `(${document.querySelectorAll("[data-entity-id]").length})`;
  $("relationship-count").textContent = `(${document.querySelectorAll("[data-relationship-id]").length})`;
};

enableActions({
  alert: $("action-error"),
  titleOf: () => $("paper-title").textContent,
  onDeleted: () => window.location.assign("/"),
});

function setPaperStatus(status) {
  root.dataset.status = status; // which actions show (app.css)
  setStatus($("status"), status);
  $("step").dataset.status = status;
  formatNode($("step"));
}

function setStep(step) {
  $("step").dataset.step = step;
  formatNode($("step"));
}

function setEta(iso) {
  $("eta").setAttribute("datetime", iso || "");
  formatNode($("eta"));
}

function setError(code, message) {
  $("error-text").dataset.code = code;
  formatNode($("error-text"));
  $("error-code").textContent = code;
  $("error-message").textContent = message;
  $("error-panel").hidden = !(code || message);
}

function clearResults() {
  for (const row of document.querySelectorAll("[data-entity-id], [data-relationship-id]")) row.remove();
  names.clear();
  counts();
}

function confidenceCell(confidence) {
  return el("td", { class: "conf", "data-format": "confidence", "data-value": String(confidence) },
    confidenceText(confidence));
}

function addEntity({ entity_id, entity_type, entity_name, confidence, key }) {
  if (document.querySelector(`[data-entity-id="${entity_id}"]`)) return;
  names.set(entity_id, entity_name);
  const body = document.querySelector(`tbody[data-entity-type="${entity_type}"]`);
  const marker = key ? [" ", el("span", { class: "badge key", title: "One of the paper's key entities" }, "key")] : [];
  if (body) {
    insertSorted(body, el("tr", { "data-entity-id": entity_id, "data-entity-name": entity_name,
      "data-confidence": String(confidence), "data-sort-key": entity_name },
    el("td", { class: "name" }, entity_name, ...marker), confidenceCell(confidence)));
  }
  counts();
}

function addRelationship({ relationship_id, relationship_type, source_id, target_id, confidence }) {
  if (document.querySelector(`[data-relationship-id="${relationship_id}"]`)) return;
  const [source, target] = [names.get(source_id) || source_id, names.get(target_id) || target_id];
  insertSorted($("relationships"), el("tr", { "data-relationship-id": relationship_id,
    "data-confidence": String(confidence), "data-sort-key": `${source} ${relationship_type} ${target}` },
  el("td", {}, source), el("td", {}, relationship_type), el("td", {}, target), confidenceCell(confidence)));
  counts();
}

stream.addEventListener("progress_updated", ({ detail }) => {
  setBar($("overall"), detail.progress);
  setBar($("step-bar"), detail.step_progress);
  setStep(detail.step);
  setEta(detail.estimated_completion);
});

stream.addEventListener("status_changed", ({ detail }) => {
  setPaperStatus(detail.new_status);
  // Queued again (reprocess, or retry after a lost worker): earlier results are gone on the server too.
  if (detail.new_status === "queued") {
    clearResults();
    setBar($("overall"), 0);
    setError("", "");
    hideError($("action-error"));
  }
  if (detail.new_status === "processing") setStep("text_extraction");
  if (detail.new_status !== "processing") {
    setEta(null);
    setBar($("step-bar"), 0);
  }
  if (detail.new_status === "completed") setBar($("overall"), 1, "completed");
  if (detail.new_status === "failed") $("overall").classList.add("failed");
  $("timeline").append(el("li", {}, el("span", { class: `badge ${detail.new_status}` }, detail.new_status), " ",
    timeNode(detail.timestamp, "datetime", "small muted"), el("br"), el("span", { class: "small" }, detail.message)));
  announce(`Status: ${detail.new_status}. ${detail.message}`);
});

stream.addEventListener("entity_extracted", ({ detail }) => addEntity(detail));
stream.addEventListener("relationship_extracted", ({ detail }) => addRelationship(detail));
stream.addEventListener("error", ({ detail }) => setError(detail.error_code, detail.error_message));

// Deleted here or on another page: say so, and offer no more actions.
stream.addEventListener("unsubscribed", ({ detail }) => {
  if (detail.paper_id !== paperId || detail.reason !== "deleted") return;
  root.dataset.status = "deleted";
  $("deleted-alert").hidden = false;
});

// When the log could not close the gap (pruned), the snapshot is the truth: reload the results.
stream.addEventListener("subscribed", async ({ detail }) => {
  if (detail.paper_id !== paperId || !detail.recovery || detail.recovery.complete) return;
  const get = async (part) => (await fetch(`/api/papers/${paperId}/${part}/`, { credentials: "same-origin" })).json();
  clearResults();
  for (const e of await get("entities")) addEntity({ entity_id: e.id, entity_type: e.entity_type, entity_name: e.name, confidence: e.confidence, key: e.key });
  for (const r of await get("relationships")) addRelationship({ ...r, relationship_id: r.id });
  const { snapshot } = detail;
  setPaperStatus(snapshot.status);
  setStep(snapshot.step);
  setEta(snapshot.status === "processing" ? snapshot.estimated_completion : null);
  setError(snapshot.error_code, snapshot.error_message);
  setBar($("overall"), snapshot.progress, snapshot.status);
});
