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

if (paperId) stream.subscribePaper(paperId);
else stream.subscribeTopic("papers");
