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
  showConnectionProblems(stream);
  window.paperStream = stream; // for the browser tests and for poking at it from the console
  return stream;
}

// Why live updates stopped, by WebSocket close code ("sse": an event stream failed).
const CLOSE_REASONS = {
  1001: "the server is restarting", 1006: "the connection was cut", 1009: "a message was too big",
  4000: "the server stopped answering", 4001: "you are signed out", 4002: "your sign-in expired",
  4003: "signing in took too long", 4004: "your access was withdrawn", 4008: "too many messages were sent",
  4009: "too many connections are open for your account", 4011: "this page fell too far behind",
  4013: "the server is busy", sse: "the event stream failed",
};

// A banner that says what happened to the live connection, counts down to the next try and offers to try now.
function showConnectionProblems(stream) {
  const banner = document.getElementById("conn-banner");
  if (!banner) return;
  const text = document.getElementById("conn-banner-text");
  const countdown = document.getElementById("conn-banner-countdown");
  const retry = document.getElementById("conn-retry");
  let ticker = null;
  let wasConnected = false;
  const tick = () => {
    const seconds = stream.retryAt ? Math.max(0, Math.ceil((stream.retryAt - Date.now()) / 1000)) : null;
    countdown.textContent = seconds === null ? "Reconnecting…" : `Trying again in ${seconds} s.`;
  };
  retry.addEventListener("click", () => stream.reconnectNow());
  stream.addEventListener("state", ({ detail }) => {
    if (detail.state === "connected") wasConnected = true;
    const trouble = detail.state === "offline" || (detail.state === "reconnecting" && (wasConnected || stream.attempt > 1));
    clearInterval(ticker);
    banner.hidden = !trouble;
    if (!trouble) return;
    const why = navigator.onLine === false ? "this device is offline"
      : CLOSE_REASONS[detail.lastClose?.code] || "the server cannot be reached";
    const message = stream.gaveUp ? `Live updates stopped: ${why}. Reload the page to sign in again.`
      : `Live updates paused: ${why}.`;
    if (text.textContent !== message) text.textContent = message; // announced once, not on every tick
    retry.hidden = stream.gaveUp;
    countdown.hidden = stream.gaveUp;
    tick();
    ticker = setInterval(tick, 1000);
  });
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
