// The browser client of /ws/papers (docs/browser-client.md): one small ES module, no build step.
// Connect, authenticate (Django session or JWT), subscribe, reconnect with exponential backoff and
// jitter, resume every paper with `since`, app-level heartbeat, token refresh, and a connection state.
// When the WebSocket cannot open (a proxy that blocks it), a session-authenticated page falls back to
// server-sent events on the same log (`transport` says which one is in use).

const RESUMABLE = "paper";

export class PaperStream extends EventTarget {
  constructor({
    url = defaultUrl(),
    access = null, // a SimpleJWT access token; omit to use the Django session cookie
    refresh = null, // a refresh token, to renew `access` when the server asks
    refreshUrl = "/api/token/refresh/",
    heartbeatMs = 15000,
    backoff = { initialMs: 500, maxMs: 15000 },
    sseAfterFailures = 2, // WebSocket attempts that never opened before falling back to SSE (0: never)
    sseUrl = "/api/papers/",
  } = {}) {
    super();
    Object.assign(this, { url, access, refresh, refreshUrl, heartbeatMs, backoff, sseAfterFailures, sseUrl });
    this.state = "offline";
    this.transport = "websocket";
    this.failedOpens = 0; // WebSocket attempts that closed before reaching "connected", while none ever did
    this.socketWorked = false; // a WebSocket reached "connected" once: later drops are outages, not a block
    this.sources = new Map(); // SSE: URL → EventSource
    this.socket = null;
    this.attempt = 0;
    this.wanted = new Map(); // key → subscribe message, replayed on every (re)connect
    this.papers = new Map(); // paper_id → {upTo: contiguous high-water seq, seen: Set of seqs above it}
    this.nextId = 1;
    this.pending = new Map();
    this.closedByUser = false;
    this.gaveUp = false; // credentials refused or revoked: retrying cannot help
    this.retryTimer = null; // set while waiting out the backoff before the next attempt
    this.retryAt = null; // when that attempt starts (ms since the epoch)
    this.lastClose = null; // {code, reason} of the last WebSocket close, or {code: "sse"} for a stream error
    this.closing = null; // the close the client itself started, until its close event
    this.listening = false;
  }

  connect() {
    this.closedByUser = false;
    this.gaveUp = false;
    if (!this.listening && typeof window !== "undefined") {
      this.listening = true;
      // Back online, or the tab shown again: try at once instead of waiting out the backoff.
      window.addEventListener("online", () => this.reconnectNow());
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }
    this.#open();
    return this;
  }

  // Skip the rest of the backoff and try now; false when connected, already trying, or when retrying cannot help.
  reconnectNow() {
    if (this.closedByUser || this.gaveUp || this.retryTimer === null) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    this.#open();
    return true;
  }

  close() {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.close(1000);
    this.#closeSources();
    this.#setState("offline");
  }

  // `since`: the seq the page was rendered at, so nothing between render and subscribe is missed.
  subscribePaper(paperId, { eventTypes = null, since = null } = {}) {
    const message = { type: "subscribe", paper_id: paperId };
    if (eventTypes) message.event_types = eventTypes;
    this.wanted.set(`${RESUMABLE}:${paperId}`, message);
    if (!this.papers.has(paperId)) this.papers.set(paperId, { upTo: since, seen: new Set() });
    return this.#sendIfOpen(this.#withSince(message));
  }

  subscribeTopic(topic, { eventTypes = null } = {}) {
    const message = { type: "subscribe", topic };
    if (eventTypes) message.event_types = eventTypes;
    this.wanted.set(`topic:${topic}`, message);
    return this.#sendIfOpen(message);
  }

  unsubscribePaper(paperId) {
    this.wanted.delete(`${RESUMABLE}:${paperId}`);
    this.papers.delete(paperId);
    return this.#sendIfOpen({ type: "unsubscribe", paper_id: paperId });
  }

  // --- internals ---

  #open() {
    if (this.transport === "sse") return this.#openSse();
    this.#setState(this.attempt === 0 ? "connecting" : "reconnecting", true); // an attempt under way: no retry time
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => this.#onOpen();
    socket.onmessage = (frame) => this.#onMessage(JSON.parse(frame.data));
    socket.onclose = (event) => this.#onClose(event);
  }

  async #onOpen() {
    try {
      if (this.access) {
        const reply = await this.#request({ type: "authenticate", token: this.access });
        if (reply.type === "error") throw new Error(reply.message);
      }
      for (const message of this.wanted.values()) {
        const reply = await this.#request(message.paper_id ? this.#withSince(message) : message);
        if (reply.type === "error") this.#emit("protocol_error", reply);
      }
      this.attempt = 0;
      this.socketWorked = true;
      this.#setState("connected");
      this.#startHeartbeat();
    } catch (error) {
      this.#emit("protocol_error", { code: "client", message: String(error) });
      this.#closeSocket(4000);
    }
  }

  #withSince(message) {
    const track = this.papers.get(message.paper_id);
    return track && track.upTo !== null ? { ...message, since: track.upTo } : message;
  }

  #onMessage(message) {
    if (message.event_type) return this.#onEvent(message);
    const waiter = message.id !== undefined && this.pending.get(message.id);
    if (waiter) {
      this.pending.delete(message.id);
      waiter(message);
    }
    if (message.type === "subscribed" && message.paper_id) this.#onSnapshot(message);
    if (message.type === "reauthenticate") this.#renewToken();
    if (message.type === "unsubscribed" && message.reason) {
      this.wanted.delete(`${RESUMABLE}:${message.paper_id}`);
      this.papers.delete(message.paper_id);
    }
    // Paper "error" events keep their name; error replies to client messages are "protocol_error".
    this.#emit(message.type === "error" ? "protocol_error" : message.type, message);
  }

  #onSnapshot(reply) {
    const track = this.papers.get(reply.paper_id) || { upTo: null, seen: new Set() };
    // Without a complete recovery the snapshot is the new starting point: render from it.
    if (track.upTo === null || !reply.recovery || !reply.recovery.complete) {
      track.upTo = reply.snapshot.seq;
      track.seen.clear();
    }
    this.papers.set(reply.paper_id, track);
  }

  #onEvent(event) {
    if (event.seq !== undefined) {
      const track = this.papers.get(event.paper_id);
      if (track) {
        if (event.seq <= track.upTo || track.seen.has(event.seq)) return; // already delivered once
        track.seen.add(event.seq);
        while (track.seen.has(track.upTo + 1)) track.seen.delete(++track.upTo);
        if (track.seen.size) this.#fillGapLater(event.paper_id);
      }
    }
    this.#emit("event", event);
    this.#emit(event.event_type, event);
  }

  // A gap that is still open after a moment (events lost live, or progress coalesced for a slow
  // socket) is filled from the server's log by subscribing again with `since`.
  #fillGapLater(paperId) {
    const track = this.papers.get(paperId);
    if (track.gapTimer) return;
    track.gapTimer = setTimeout(() => {
      track.gapTimer = null;
      const message = this.wanted.get(`${RESUMABLE}:${paperId}`);
      if (!track.seen.size || !message || this.state !== "connected") return;
      if (this.transport === "sse") this.#openSse(); // reopened with `since`: the log fills the gap
      else this.#request(this.#withSince(message));
    }, 2000);
  }

  #onClose(event) {
    clearInterval(this.heartbeat);
    for (const waiter of this.pending.values()) waiter({ type: "error", code: "disconnected" });
    this.pending.clear();
    if (this.closedByUser) return;
    // A close the client started reports its own code: the browser may report another (1005, 1006).
    this.lastClose = this.closing || { code: event.code, reason: event.reason };
    this.closing = null;
    if (event.code === 4001 || event.code === 4004) {
      this.gaveUp = true;
      this.#setState("offline"); // credentials rejected or revoked: retrying cannot help
      this.#emit("protocol_error", { code: event.code === 4001 ? "authentication_failed" : "access_revoked" });
      return;
    }
    if (!this.socketWorked && this.state !== "connected") this.failedOpens += 1;
    if (this.#shouldFallBack()) {
      this.transport = "sse";
      return this.#openSse();
    }
    this.#retryLater();
  }

  // EventSource sends no headers: only a page authenticated by its session cookie can fall back.
  #shouldFallBack() {
    return this.sseAfterFailures > 0 && this.failedOpens >= this.sseAfterFailures && !this.access
      && typeof EventSource !== "undefined";
  }

  #retryLater() {
    this.attempt += 1;
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.attempt - 1));
    const delay = Math.random() * ceiling; // full jitter: a restarted server is not hit by every client at once
    clearTimeout(this.retryTimer);
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = null;
      this.#open();
    }, delay);
    this.#setState(navigator.onLine === false ? "offline" : "reconnecting", true);
  }

  // Close the socket for a reason of the client's own (4000: the server stopped answering), remembered for onClose.
  #closeSocket(code) {
    this.closing = { code, reason: "" };
    this.socket?.close(code);
  }

  #startHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(async () => {
      const reply = await Promise.race([
        this.#request({ type: "ping" }),
        new Promise((resolve) => setTimeout(() => resolve(null), this.heartbeatMs)),
      ]);
      if (!reply) this.#closeSocket(4000); // no pong: the link is dead even if the socket looks open
    }, this.heartbeatMs);
  }

  async #renewToken() {
    if (!this.refresh) return;
    const response = await fetch(this.refreshUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh: this.refresh }),
    });
    if (!response.ok) return this.#emit("protocol_error", { code: "token_refresh_failed" });
    const body = await response.json();
    this.access = body.access;
    if (body.refresh) this.refresh = body.refresh;
    await this.#request({ type: "authenticate", token: this.access });
    this.#emit("token", { access: this.access });
  }

  #request(message) {
    const id = `c${this.nextId++}`;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.socket.send(JSON.stringify({ ...message, id }));
    });
  }

  #sendIfOpen(message) {
    if (this.transport === "sse") {
      if (this.state !== "offline" || this.sources.size) this.#openSse(); // the streams are fixed: open them anew
      return Promise.resolve(null);
    }
    if (this.socket?.readyState === WebSocket.OPEN && this.state === "connected") return this.#request(message);
    return Promise.resolve(null); // sent on connect, with everything else wanted
  }

  // --- the SSE fallback: one stream for the topics, one per paper (docs/browser-client.md) ---

  #openSse() {
    this.#closeSources();
    this.#setState(this.attempt === 0 && this.state !== "reconnecting" ? "connecting" : "reconnecting", true);
    const topics = [...this.wanted.values()].filter((m) => m.topic);
    const urls = [];
    if (topics.length) {
      const query = new URLSearchParams();
      if (topics.some((m) => m.topic === "system")) query.set("system", "1");
      const papersTopic = topics.find((m) => m.topic === "papers");
      if (papersTopic?.event_types) query.set("event_types", papersTopic.event_types.join(","));
      urls.push(`${this.sseUrl}stream/?${query}`);
    }
    for (const message of this.wanted.values()) {
      if (!message.paper_id) continue;
      const query = new URLSearchParams();
      const { since } = this.#withSince(message);
      if (since !== undefined) query.set("since", String(since));
      if (message.event_types) query.set("event_types", message.event_types.join(","));
      urls.push(`${this.sseUrl}${message.paper_id}/stream/?${query}`);
    }
    for (const url of urls) this.#openSource(url);
  }

  #openSource(url) {
    const source = new EventSource(url, { withCredentials: true });
    this.sources.set(url, source);
    source.onopen = () => {
      if ([...this.sources.values()].every((s) => s.readyState === EventSource.OPEN)) {
        this.attempt = 0;
        this.#setState("connected");
      }
    };
    source.onmessage = (message) => this.#onMessage(JSON.parse(message.data));
    source.onerror = () => {
      if (this.sources.get(url) !== source) return;
      if (source.readyState === EventSource.CONNECTING) return this.#setState("reconnecting"); // it retries itself
      // Refused (401, 404, 429) or not an event stream: try again later, from the positions we hold.
      this.lastClose = { code: "sse" };
      this.#closeSources();
      this.#setState(navigator.onLine === false ? "offline" : "reconnecting");
      this.#retryLater();
    };
  }

  #closeSources() {
    for (const source of this.sources.values()) source.close();
    this.sources.clear();
  }

  // `force`: tell listeners even when the state is the same (a new retry time while still reconnecting).
  #setState(state, force = false) {
    if (state === this.state && !force) return;
    this.state = state;
    this.#emit("state", { state, transport: this.transport, retryAt: this.retryAt, lastClose: this.lastClose });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/papers`;
}
