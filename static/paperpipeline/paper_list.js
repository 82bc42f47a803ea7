// The paper list: live status and progress of every paper (topic "papers"), the system panel (topic
// "system"), and uploads by file picker or drag and drop, several at once.
import { announce, csrfToken, el, setBar, setStatus, startStream } from "./ui.js";

const rows = document.getElementById("paper-rows");
const stream = startStream();
stream.subscribeTopic("papers");
stream.subscribeTopic("system");

function rowFor(paperId) {
  return rows.querySelector(`tr[data-paper-id="${paperId}"]`);
}

async function addRow(paperId) {
  const response = await fetch(`/api/papers/${paperId}/`, { credentials: "same-origin" });
  if (!response.ok || rowFor(paperId)) return rowFor(paperId);
  const paper = await response.json();
  document.getElementById("no-papers")?.remove();
  const bar = el("div", { class: "bar small", role: "progressbar", "aria-label": `Progress of ${paper.title}`,
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "data-field": "progress" }, el("span"));
  const row = el("tr", { "data-paper-id": paper.id },
    el("td", {}, el("a", { href: `/papers/${paper.id}/` }, paper.title)),
    el("td", {}, el("span", { class: `badge ${paper.status}`, "data-field": "status" }, paper.status)),
    el("td", {}, bar),
    el("td", { "data-field": "step", class: "small" }, paper.step || "—"),
    el("td", { class: "small muted" }, paper.created_at.slice(0, 16).replace("T", " ")));
  rows.prepend(row);
  setBar(bar, paper.progress, paper.status);
  return row;
}

stream.addEventListener("status_changed", async ({ detail }) => {
  const row = rowFor(detail.paper_id) || (await addRow(detail.paper_id));
  if (!row) return;
  setStatus(row.querySelector("[data-field=status]"), detail.new_status);
  const bar = row.querySelector("[data-field=progress]");
  if (detail.new_status === "queued") setBar(bar, 0, "queued");
  if (detail.new_status === "completed") {
    setBar(bar, 1, "completed");
    row.querySelector("[data-field=step]").textContent = "done";
  }
  if (detail.new_status === "failed") setBar(bar, Number(bar.getAttribute("aria-valuenow")) / 100, "failed");
  announce(`${row.querySelector("a").textContent}: ${detail.new_status}`);
});

stream.addEventListener("progress_updated", ({ detail }) => {
  const row = rowFor(detail.paper_id);
  if (!row) return;
  setBar(row.querySelector("[data-field=progress]"), detail.progress);
  row.querySelector("[data-field=step]").textContent = detail.step.replace("_", " ");
});

stream.addEventListener("system_status", ({ detail }) => {
  for (const node of document.querySelectorAll("#system-panel [data-stat]")) {
    node.textContent = String(detail[node.dataset.stat]);
  }
});

// After a reconnect the topic has no `since`: resync every row from the API.
let firstTopicReply = true;
stream.addEventListener("subscribed", async ({ detail }) => {
  if (detail.topic !== "papers") return;
  if (firstTopicReply) return void (firstTopicReply = false);
  const response = await fetch("/api/papers/?limit=200", { credentials: "same-origin" });
  if (!response.ok) return;
  for (const paper of (await response.json()).results) {
    const row = rowFor(paper.id) || (await addRow(paper.id));
    setStatus(row.querySelector("[data-field=status]"), paper.status);
    setBar(row.querySelector("[data-field=progress]"), paper.progress, paper.status);
    row.querySelector("[data-field=step]").textContent = paper.step || "—";
  }
});

// Uploads: the form works without JavaScript; with it, files upload in parallel and the page stays.
const form = document.getElementById("upload-form");
const input = document.getElementById("id_file");
const zone = document.getElementById("dropzone");
const status = document.getElementById("upload-status");

async function upload(files) {
  const title = files.length === 1 ? document.getElementById("id_title").value : "";
  status.textContent = `Uploading ${files.length} file(s)…`;
  const results = await Promise.all([...files].map(async (file) => {
    const body = new FormData();
    body.append("file", file);
    if (title) body.append("title", title);
    const response = await fetch("/api/papers/", { method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() } });
    const data = await response.json();
    if (response.ok) await addRow(data.id);
    return response.ok ? `${file.name}: queued` : `${file.name}: ${(data.file || [data.detail])[0]}`;
  }));
  status.textContent = results.join(" · ");
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
