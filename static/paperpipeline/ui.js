// Small DOM helpers shared by the pages; all live updates go through PaperStream (client.js).
import { PaperStream } from "./client.js";
import { formatAll } from "./format.js";

// Server-rendered bars carry their value in aria-valuenow only: the Content Security Policy refuses inline
// style attributes, while a width set from script (CSSOM) is allowed.
for (const bar of document.querySelectorAll(".bar[aria-valuenow]")) {
  bar.firstElementChild.style.width = `${bar.getAttribute("aria-valuenow")}%`;
}

formatAll(); // times in the viewer's zone, and every value through the same formatter as live updates

export function startStream() {
  const stream = new PaperStream().connect();
  const badge = document.getElementById("conn-state");
  const transport = document.getElementById("conn-transport");
  stream.addEventListener("state", ({ detail }) => {
    if (!badge) return;
    badge.hidden = false;
    badge.textContent = detail.state;
    badge.className = `conn conn-${detail.state === "connecting" ? "reconnecting" : detail.state}`;
    if (!transport) return;
    // Which way live data comes: the WebSocket, or server-sent events when a proxy blocks WebSockets.
    transport.hidden = false;
    transport.dataset.transport = detail.transport;
    transport.textContent = detail.transport === "sse" ? "via SSE" : "via WebSocket";
    transport.title = detail.transport === "sse"
      ? "The WebSocket could not open; live updates come as server-sent events."
      : "Live updates come over a WebSocket.";
  });
  window.paperStream = stream; // for the browser tests and for poking at it from the console
  return stream;
}

export function setBar(bar, fraction, status) {
  if (!bar) return;
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  bar.setAttribute("aria-valuenow", String(percent));
  bar.firstElementChild.style.width = `${percent}%`;
  bar.classList.toggle("done", status === "completed");
  bar.classList.toggle("failed", status === "failed");
}

export function setStatus(badge, status) {
  if (!badge) return;
  badge.textContent = status;
  badge.className = `badge ${status}`;
}

export function announce(text) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = text;
}

export function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}
