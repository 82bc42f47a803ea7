"""Server-sent events: one paper's stream, and the stream of every paper the user may see, over plain HTTP.

An SSE stream is a fan-out member built of the WebSocket consumer's own parts: the subscriptions, the forwarder
(access rule, each event once, snapshot, hold-and-replay), the delivery policy (coalesce progress, cap, too slow),
the identity (connections per user, revocation) and the control messages. Only the writer differs: it frames each
message as an SSE event of the response body, with the event's text encoded once (docs/protocol.md, "Server-sent
events")."""

import asyncio
import base64
import binascii
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import connections

from . import connlog
from .auth import Identity
from .background import BackgroundTasks
from .control import ControlMessages
from .delivery import Delivery
from .forwarding import Forwarder
from .protocol import TOPIC_PAPERS, TOPIC_SYSTEM, ProtocolError, error_reply, listed, too_slow
from .subscriptions import Subscriptions
from .transport import Outbound

logger = logging.getLogger(__name__)

# Outbound.frames key of an event's SSE form: (paper_id, seq, its `data:` line), built once for every stream.
SSE_FRAME = "sse"
# What waits in a stream's buffer, not yet taken by the server, at which it counts as backed up (as the ASGI writer).
HIGH_WATER = 64 * 1024
# Papers whose position the all-papers stream's id carries; the least recently moved one is dropped beyond this.
CURSOR_LIMIT = 200
MAX_LAST_EVENT_ID = 8192
RETRY_MS = 2000  # how long a browser's EventSource waits before it reconnects by itself
MAX_SEQ = 2**63 - 1
_CURSOR = re.compile(r"[A-Za-z0-9_-]{22}\.[0-9]{1,19}")


class InvalidPosition(ValueError):
    """A Last-Event-ID or `since` that is not a position of this stream."""


def sse_frame(outbound: Outbound) -> tuple[str | None, int | None, bytes]:
    """The event's paper, seq and `data:` line, read once per event for every stream of this process."""
    frame = outbound.frames.get(SSE_FRAME)
    if frame is None:
        payload = json.loads(outbound.text)
        frame = outbound.frames[SSE_FRAME] = (
            payload.get("paper_id"), payload.get("seq"), b"data: " + outbound.text.encode() + b"\n\n"
        )
    return frame


def parse_seq(text: str) -> int:
    """A paper stream's position: the seq up to which the client has every event."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_SEQ:
        raise InvalidPosition("Must be a non-negative integer seq.")
    return int(text)


def encode_cursors(cursors: dict[str, int]) -> str:
    """The all-papers stream's position: `<paper as 22 base64url chars>.<seq>` per paper, comma-separated."""
    return ",".join(
        f"{base64.urlsafe_b64encode(uuid.UUID(paper_id).bytes).rstrip(b'=').decode()}.{seq}"
        for paper_id, seq in cursors.items()
    )


def parse_cursors(text: str) -> OrderedDict[str, int]:
    """Read an all-papers position (capped in size and entries); an empty one names no paper."""
    if len(text) > MAX_LAST_EVENT_ID:
        raise InvalidPosition(f"At most {MAX_LAST_EVENT_ID} characters.")
    cursors: OrderedDict[str, int] = OrderedDict()
    entries = [entry for entry in text.split(",") if entry]
    if len(entries) > CURSOR_LIMIT:
        raise InvalidPosition(f"At most {CURSOR_LIMIT} papers.")
    for entry in entries:
        if not _CURSOR.fullmatch(entry):
            raise InvalidPosition("Not a position of this stream (paper.seq, comma-separated).")
        key, seq = entry.split(".")
        try:
            paper_id = str(uuid.UUID(bytes=base64.urlsafe_b64decode(key + "==")))
        except (binascii.Error, ValueError):
            raise InvalidPosition("Not a position of this stream (paper.seq, comma-separated).") from None
        cursors[paper_id] = parse_seq(seq)
    return cursors


async def leave_request_thread() -> None:
    """Give back the thread Django keeps for this request's thread-sensitive sync calls (its middleware's), and run
    the stream's own (database_sync_to_async) on asgiref's process-wide thread, as WebSocket consumers do.

    Django runs each ASGI request in a ThreadSensitiveContext whose one-thread executor lives until the response
    ends: a stream would hold an idle thread per client for its whole life. The middleware ran before the body
    starts, so the executor is idle here. Tasks the stream starts (its heartbeat, control messages, and the fan-out
    reader if this stream starts it) no longer inherit the request's context either."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None:
        return
    SyncToAsync.thread_sensitive_context.set(None)  # this task's copy of the context only: Django's exit still resets
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is not None:
        # The middleware's queries (the session, request.auser()) opened a connection on that thread, which Django
        # would close there when the response ends; closed here instead, or a pooled connection is never returned.
        await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
        executor.shutdown(wait=False)


class SseWriter:
    """The writer (realtime.transport.Writer) of one SSE response: frames queued here, taken by the response's body
    iterator; backed up while the server reports the socket's buffer full (Daphne) or more than HIGH_WATER waits
    here behind a send the server has not finished (any other ASGI server)."""

    def __init__(self, event_id: Callable[[str, int], str], watch: Callable | None = None):
        self.event_id = event_id  # the stream's id of a paper's event (its position after that event)
        self.queued: list[bytes] = []
        self.size = 0
        self.wakeup = asyncio.Event()
        self.changed = asyncio.Event()
        self.socket_paused = False
        self.ended = False
        self.unwatch = watch(self) if watch is not None else None

    @property
    def paused(self) -> bool:
        return self.socket_paused or self.size > HIGH_WATER

    def send_event(self, outbound: Outbound) -> None:
        """Queue an event with the stream's id for it (none for system_status); never waits."""
        paper_id, seq, data = sse_frame(outbound)
        self._queue(data if seq is None else b"id: " + self.event_id(paper_id, seq).encode() + b"\n" + data)

    async def send_message(self, message: dict[str, Any], event_id: str | None = None) -> None:
        """Queue a reply or notice as an event, after the events before it."""
        head = b"id: " + event_id.encode() + b"\n" if event_id is not None else b""
        self._queue(head + b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n")

    def comment(self, text: str) -> None:
        """Queue an SSE comment line (the heartbeat)."""
        self._queue(f": {text}\n\n".encode())

    def hold(self) -> None:
        """Nothing to collect: the body iterator takes everything queued in one chunk."""

    def release(self) -> None:
        """Nothing was collected."""

    async def drained(self) -> None:
        """Return once the stream is no longer backed up."""
        while self.paused and not self.ended:
            self.changed.clear()
            await self.changed.wait()

    def discard_events(self) -> None:
        """Closing while backed up: drop what the server has not taken, so the closing error goes next."""
        self.queued.clear()
        self.size = 0

    def end(self) -> None:
        """Nothing more is queued; the body ends once what is queued was taken."""
        self.ended = True
        self.wakeup.set()
        self.changed.set()

    def stop(self) -> None:
        """The response ended: stop hearing of the socket."""
        self.end()
        unwatch, self.unwatch = self.unwatch, None
        if unwatch is not None:
            unwatch()

    def _queue(self, data: bytes) -> None:
        if not self.ended:
            self.queued.append(data)
            self.size += len(data)
            self.wakeup.set()

    # The backpressure extension's producer interface (realtime.transport.HTTP_BACKPRESSURE_EXTENSION).

    def pause_producing(self) -> None:
        self.socket_paused = True

    def resume_producing(self) -> None:
        self.socket_paused = False
        self.changed.set()

    def stop_producing(self) -> None:
        self.resume_producing()


class EventStream:
    """One SSE client: a member of the process's fan-out, like a WebSocket consumer, with one fixed subscription:
    a paper (`paper_id`) or topic "papers" (with `system`: also topic "system")."""

    def __init__(self, *, user, address: Any, token: str | None = None, session_key: str | None = None,
                 paper_id: str | None = None, since: int | None = None, cursors: dict[str, int] | None = None,
                 event_types: frozenset[str] | None = None, system: bool = False, watch: Callable | None = None):
        self.user, self.token, self.session_key = user, token, session_key
        self.paper_id, self.since, self.event_types, self.system = paper_id, since, event_types, system
        self.cursors: OrderedDict[str, int] = OrderedDict(cursors or {})
        self.high = since or 0  # a paper stream's position: the newest seq sent
        self.tasks = BackgroundTasks()
        self.writer = SseWriter(self._event_id, watch)
        self.delivery = Delivery(self.writer, settings.WS_SLOW_CLIENT_MAX_BYTES, self._too_slow)
        self.identity = Identity(self, address, self.tasks, send=self._send, fail=self._fail)
        self.subscriptions = Subscriptions(self)
        self.control = ControlMessages(self.subscriptions, self.identity, self.tasks,
                                       fail=self._fail, send=self._send, guarded=self._guarded)
        self.forwarder = Forwarder(self.subscriptions, self.delivery, self.identity, self.control.take)
        self.address = address
        self.end_reason: str | None = None  # the error code the stream ended with (logged)

    async def body(self) -> AsyncIterator[bytes]:
        """The response body: subscribe (snapshot, replay), then live events and heartbeats until the stream ends
        (the client went away, or an error that closes a WebSocket ended it)."""
        try:
            await leave_request_thread()
            target = {"paper_id": self.paper_id} if self.paper_id else {"topic": TOPIC_PAPERS}
            connlog.stream_opened(self.address, target, self.since if self.paper_id else len(self.cursors) or None)
            yield b"retry: %d\n\n" % RETRY_MS  # headers and a first byte out at once
            await self._guarded(self._start())
            while True:
                if self.writer.queued:
                    chunk, self.writer.queued, self.writer.size = b"".join(self.writer.queued), [], 0
                    self.writer.changed.set()
                    yield chunk
                elif self.writer.ended:
                    return
                else:
                    self.writer.wakeup.clear()
                    await self.writer.wakeup.wait()
        finally:
            await asyncio.shield(self._stop())

    # --- the fan-out's member interface ---

    def fanout_message(self, message: dict[str, Any]):
        return self.forwarder.take(message)

    def hold_writes(self) -> None:
        self.delivery.hold()

    def release_writes(self) -> None:
        self.delivery.release()

    # --- life ---

    async def _start(self) -> None:
        if self.token is not None:
            await self.identity.authenticate(self.token, self.identity.switch)
        else:
            await self.identity.switch_to_session(self.user, self.session_key)
        connlog.authenticated(self.identity.user, "token" if self.token is not None else "session")
        self.tasks.start(self._heartbeat())
        if self.paper_id is not None:
            await self.forwarder.subscribe_paper(self.paper_id, self.event_types, self.since, self._paper_reply)
        else:
            await self._start_topic()

    async def _start_topic(self) -> None:
        """Resume each paper the position names as a paper subscription with `since` (snapshot, replay, and a floor
        that drops live events the replay covered), then join topic "papers" (and "system")."""
        user = self.identity.user
        for paper_id, since in list(self.cursors.items()):
            try:
                await self.forwarder.subscribe_paper(paper_id, self.event_types, since, self._paper_reply)
            except ProtocolError as exc:
                if exc.code != "not_found":
                    raise
                del self.cursors[paper_id]  # gone, or no longer visible: said exactly as for a missing paper
        await self.subscriptions.add_topic(TOPIC_PAPERS, self.event_types, user)
        if self.system:
            await self.subscriptions.add_topic(TOPIC_SYSTEM, None, user)
        await self._send({"type": "subscribed", "topic": TOPIC_PAPERS, "event_types": listed(self.event_types)})

    async def _paper_reply(self, reply: dict[str, Any]) -> None:
        """A paper's subscribed reply; when nothing is replayed after it, its snapshot is the stream's position."""
        replaying = bool(reply.get("recovery") and reply["recovery"].get("replayed"))
        position = None if replaying else self._event_id(reply["paper_id"], reply["snapshot"]["seq"], moved=True)
        await self.writer.send_message(reply, position)

    def _event_id(self, paper_id: str, seq: int, moved: bool = False) -> str:
        """The stream's position once this event (or a snapshot, `moved`) is sent: the newest seq per paper."""
        if self.paper_id is not None:
            self.high = seq if moved else max(self.high, seq)
            return str(self.high)
        newest = seq if moved else max(self.cursors.get(paper_id, 0), seq)
        self.cursors.pop(paper_id, None)
        self.cursors[paper_id] = newest
        if len(self.cursors) > CURSOR_LIMIT:
            self.cursors.popitem(last=False)
        return encode_cursors(self.cursors)

    async def _heartbeat(self) -> None:
        """A comment every WS_PING_INTERVAL seconds: proxies keep the response open, clients see it is alive."""
        while not self.writer.ended:
            await asyncio.sleep(settings.WS_PING_INTERVAL)
            self.writer.comment("ping")

    async def _stop(self) -> None:
        """Leave every group, stop the timers and release the connection's counts."""
        connlog.stream_closed(self.end_reason)
        self.tasks.close()
        self.delivery.stop()
        self.identity.forget()
        try:
            if self.identity.user is not None:
                await self.subscriptions.drop_all(self.identity.user)
            await self.identity.switch(None)
        except Exception:
            logger.exception("leaving the fan-out groups of an event stream failed")

    # --- what the consumer's parts call back ---

    async def _send(self, message: dict[str, Any]) -> None:
        """A notice (reauthenticate, unsubscribed); a paper stream whose paper ended ends with it."""
        await self.delivery.send_message(message)
        if message.get("type") == "unsubscribed" and message.get("paper_id") == self.paper_id:
            self.writer.end()

    async def _fail(self, exc: ProtocolError, request_id: Any = None) -> None:
        """An error; one that closes a WebSocket is the stream's last event, and ends it."""
        connlog.error(exc.code, exc.close)
        if exc.close is not None:
            self.delivery.closing = True
            self.end_reason = self.end_reason or exc.code
        await self.delivery.send_message(error_reply(exc.code, exc.message))
        if exc.close is not None:
            self.writer.end()

    async def _guarded(self, step) -> None:
        try:
            await step
        except ProtocolError as exc:
            await self._fail(exc)
            self.writer.end()
        except Exception:
            logger.exception("an event stream failed")
            await self.delivery.send_message(error_reply("internal_error", "The server failed; reconnect."))
            self.writer.end()

    async def _too_slow(self) -> None:
        await self._fail(too_slow())
