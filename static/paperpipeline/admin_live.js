// Live status and progress in the Paper admin: the changelist (topic "papers") and a change page (its paper).
import { startStream } from "./ui.js";

const paperId = document.querySelector("script[data-paper-id]")?.dataset.paperId; // set on a change page
const stream = startStream();

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
  put(scope, "status", detail.new_status[0].toUpperCase() + detail.new_status.slice(1)); // the choice label
  if (detail.new_status === "completed") {
    put(scope, "progress_percent", "100%");
    put(scope, "progress", "1.0");
  }
});

stream.addEventListener("progress_updated", ({ detail }) => {
  const scope = cells(detail.paper_id);
  if (!scope) return;
  put(scope, "progress_percent", `${Math.round(detail.progress * 100)}%`);
  put(scope, "progress", String(detail.progress));
  put(scope, "current_step", detail.step);
  put(scope, "step_progress", String(detail.step_progress));
});

if (paperId) stream.subscribePaper(paperId);
else stream.subscribeTopic("papers");
