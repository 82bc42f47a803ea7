// Paper actions on the list and the detail page: cancel, reprocess and delete (after a confirmation) through
// the API with the session's CSRF token; download is a plain link to the API's authorized download. What an
// action changes comes back as events, to this page and to every other page of the user.
import { errorText } from "./format.js";
import { announce, csrfToken } from "./ui.js";

const REQUESTS = {
  cancel: (id) => ["POST", `/api/papers/${encodeURIComponent(id)}/cancel/`],
  reprocess: (id) => ["POST", `/api/papers/${encodeURIComponent(id)}/reprocess/`],
  delete: (id) => ["DELETE", `/api/papers/${encodeURIComponent(id)}/`],
};

// Show an error as an alert, in words from the shared table (the server's message for a code it lacks).
export function showError(alert, code, detail = "") {
  if (!alert) return;
  alert.textContent = errorText(code, detail);
  alert.hidden = false;
}

export function hideError(alert) {
  if (alert) alert.hidden = true;
}

// Answer null when done, or the error's {code, detail}.
async function request(action, paperId) {
  const [method, url] = REQUESTS[action](paperId);
  let response;
  try {
    response = await fetch(url, { method, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } });
  } catch {
    return { code: "network" };
  }
  if (response.ok) return null;
  const body = await response.json().catch(() => ({}));
  return { code: body.code || "unknown", detail: body.detail || "" };
}

// Ask before deleting, in the page's <dialog>; true when confirmed.
function confirmDelete(title) {
  const dialog = document.getElementById("confirm-delete");
  dialog.querySelector("[data-field=title]").textContent = title;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    dialog.showModal();
  });
}

// Handle every action button of the page: `titleOf(scope)` names the paper, `onDeleted(id)` follows a deletion.
export function enableActions({ alert, titleOf, onDeleted }) {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    const scope = button?.closest("[data-paper-id]");
    if (!scope || button.disabled) return;
    const { action } = button.dataset;
    const title = titleOf(scope);
    if (action === "delete" && !(await confirmDelete(title))) return;
    button.disabled = true;
    hideError(alert);
    const error = await request(action, scope.dataset.paperId);
    button.disabled = false;
    if (error) return showError(alert, error.code, error.detail);
    announce(`${title}: ${{ cancel: "cancelled", reprocess: "queued again", delete: "deleted" }[action]}`);
    if (action === "delete") onDeleted(scope.dataset.paperId);
  });
}
