// The progress page of one paper: bars, step, ETA, entities by type, relationships, errors and the
// status timeline, all live; it subscribes with `since` = the seq the page was rendered at.
import { startGraph } from "./graph.js";
import { announce, el, setBar, setStatus, startStream } from "./ui.js";

const root = document.getElementById("paper");
const paperId = root.dataset.paperId;
const names = new Map(); // entity_id → name, for relationship rows
for (const row of document.querySelectorAll("[data-entity-id]")) names.set(row.dataset.entityId, row.dataset.entityName);

const stream = startStream();
startGraph(stream, paperId); // before subscribing: the graph hears every event from the first
stream.subscribePaper(paperId, { since: Number(root.dataset.seq) });

const $ = (id) => document.getElementById(id);
const counts = () => {
  $("entity-count").textContent = `(${document.querySelectorAll("[data-entity-id]").length})`;
  $("relationship-count").textContent = `(${document.querySelectorAll("[data-relationship-id]").length})`;
};

function clearResults() {
  for (const row of document.querySelectorAll("[data-entity-id], [data-relationship-id]")) row.remove();
  names.clear();
  counts();
}

function addEntity({ entity_id, entity_type, entity_name, confidence, key }) {
  if (document.querySelector(`[data-entity-id="${entity_id}"]`)) return;
  names.set(entity_id, entity_name);
  const body = document.querySelector(`tbody[data-entity-type="${entity_type}"]`);
  const marker = key ? [" ", el("span", { class: "badge key", title: "One of the paper's key entities" }, "key")] : [];
  body?.append(el("tr", { "data-entity-id": entity_id, "data-entity-name": entity_name }, el("td", {}, entity_name, ...marker),
    el("td", { class: "conf" }, confidence.toFixed(2))));
  counts();
}

function addRelationship({ relationship_id, relationship_type, source_id, target_id, confidence }) {
  if (document.querySelector(`[data-relationship-id="${relationship_id}"]`)) return;
  $("relationships").append(el("tr", { "data-relationship-id": relationship_id },
    el("td", {}, names.get(source_id) || source_id), el("td", {}, relationship_type),
    el("td", {}, names.get(target_id) || target_id), el("td", { class: "conf" }, confidence.toFixed(2))));
  counts();
}

stream.addEventListener("progress_updated", ({ detail }) => {
  setBar($("overall"), detail.progress);
  setBar($("step-bar"), detail.step_progress);
  $("step").textContent = detail.step.replace("_", " ");
  $("eta").textContent = new Date(detail.estimated_completion).toLocaleTimeString();
});

stream.addEventListener("status_changed", ({ detail }) => {
  setStatus($("status"), detail.new_status);
  // Queued again (reprocess, or retry after a lost worker): earlier results are gone on the server too.
  if (detail.new_status === "queued") {
    clearResults();
    setBar($("overall"), 0);
    setBar($("step-bar"), 0);
    $("error-panel").hidden = true;
  }
  if (detail.new_status === "completed") setBar($("overall"), 1, "completed");
  if (detail.new_status !== "processing") $("eta").textContent = "—";
  if (detail.new_status === "failed") $("overall").classList.add("failed");
  $("timeline").append(el("li", {}, el("span", { class: `badge ${detail.new_status}` }, detail.new_status), " ",
    el("span", { class: "small muted" }, detail.timestamp), el("br"), el("span", { class: "small" }, detail.message)));
  announce(`Status: ${detail.new_status}. ${detail.message}`);
});

stream.addEventListener("entity_extracted", ({ detail }) => addEntity(detail));
stream.addEventListener("relationship_extracted", ({ detail }) => addRelationship(detail));
stream.addEventListener("error", ({ detail }) => {
  $("error-code").textContent = detail.error_code;
  $("error-message").textContent = detail.error_message;
  $("error-panel").hidden = false;
});

// When the log could not close the gap (pruned), the snapshot is the truth: reload the results.
stream.addEventListener("subscribed", async ({ detail }) => {
  if (detail.paper_id !== paperId || !detail.recovery || detail.recovery.complete) return;
  const get = async (part) => (await fetch(`/api/papers/${paperId}/${part}/`, { credentials: "same-origin" })).json();
  clearResults();
  for (const e of await get("entities")) addEntity({ entity_id: e.id, entity_type: e.entity_type, entity_name: e.name, confidence: e.confidence, key: e.key });
  for (const r of await get("relationships")) addRelationship({ ...r, relationship_id: r.id });
  setStatus($("status"), detail.snapshot.status);
  setBar($("overall"), detail.snapshot.progress, detail.snapshot.status);
});
