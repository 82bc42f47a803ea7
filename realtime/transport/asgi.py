"""The writer for any ASGI server other than this project's Daphne (uvicorn, …): a per-connection outbox.

The outbox is drained in order through the ASGI send by one kept task, and reports backpressure from what it
holds unsent.

Every message of the connection (events, replies, errors, the close) goes through the outbox, so they reach the
client in the order they were sent, and nothing the consumer or the fan-out does ever waits for the socket.
The server says nothing of its socket's write buffer through ASGI, but its send does not return while that
buffer is full (uvicorn's sends wait until the transport is writable again): so the writer counts what it holds
unsent — queued, or in a send the server has not finished — and is `paused` once that passes HIGH_WATER while
a send is waiting, until it is back to LOW_WATER. The delivery policy (realtime/delivery.py) then coalesces
progress, caps the rest and closes a client that cannot keep up with 4011, as under Daphne.

Closing a backed-up connection: realtime.delivery calls discard_events() before the closing error, so the error
and the close are the next messages the server gets. The events still queued are dropped (the client resumes
with `since`; the log has them) and a send of an event that is waiting is cancelled. That is safe on each of
uvicorn's WebSocket implementations (read in uvicorn 0.54): websockets-sansio and wsproto wait for the
transport to be writable *before* writing anything of the message (the cancelled event is not sent at all),
the legacy websockets one waits after writing the whole frame (the cancelled event was sent whole); none
leaves half a frame. The error and the close then still go out only once the socket takes data again
(websockets-sansio and wsproto wait for that on every send, the close too): a client that reads again gets the
events written before, the error `too_slow` and the close 4011; one that never reads again is left to the
server's keepalive and TCP, as any ASGI application's would be.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from . import Outbound

logger = logging.getLogger(__name__)

# Characters held unsent (text frames; the bytes of a binary one) at which the writer is paused, and to which
# it must fall to resume: Twisted's 64 KiB, and asyncio's default low-water mark of a quarter of it.
HIGH_WATER = 64 * 1024
LOW_WATER = HIGH_WATER // 4


class Queued:
    """One ASGI message in the outbox: its size as backpressure counts it, and whether it is an event."""

    __slots__ = ("message", "size", "event")

    def __init__(self, message: dict[str, Any], size: int, event: bool):
        self.message = message
        self.size = size
        self.event = event


def size_of(message: dict[str, Any]) -> int:
    """What a message adds to the socket's buffer, as counted here: its text or bytes (0 for accept, close)."""
    data = message.get("text")
    if data is None:
        data = message.get("bytes")
    return len(data) if data else 0


class AsgiWriter:
    """Write side of one WebSocket on any ASGI server: one outbox, one kept task sending it through ASGI `send`."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]):
        self.send = send
        self.outbox: deque[Queued] = deque()
        self.unsent = 0  # the sizes of the queued messages and of the one in flight
        self.in_flight: Queued | None = None  # the message whose send the task awaits
        self.task: asyncio.Task | None = None  # the one writer task, kept here; cancelled by stop()
        self.wakeup = asyncio.Event()  # something was queued
        self.resumed = asyncio.Event()
        self.resumed.set()
        self._paused = False
        self.abandoning = False  # discard_events() cancelled the send in flight; the task carries on
        self.closed = False  # the close was queued, or the connection ended: nothing more is sent

    # --- the writer interface (realtime/transport/__init__.py) ---

    @property
    def paused(self) -> bool:
        """Whether more than HIGH_WATER waits unsent behind a send the server has not finished (until the
        outbox is back to LOW_WATER). Read by others only, so a message in flight here is a send that waits:
        the writer task is suspended in it."""
        if not self._paused and self.in_flight is not None and self.unsent > HIGH_WATER:
            self._paused = True
            self.resumed.clear()
        return self._paused

    def send_event(self, outbound: Outbound) -> None:
        """Queue the event's text; it is sent in order with everything queued before. Never waits."""
        self._queue({"type": "websocket.send", "text": outbound.text}, len(outbound.text), event=True)

    async def send_message(self, message: dict[str, Any]) -> None:
        """Queue another ASGI message (a reply, an error, the close) behind the events queued before it."""
        self._queue(message, size_of(message), event=False)
        if message["type"] == "websocket.close":
            self.closed = True  # ASGI allows nothing after the close

    def hold(self) -> None:
        """Nothing to collect: queueing is already one append per event, sent by the task once the batch yields."""

    def release(self) -> None:
        """Nothing was collected: every message is queued in order as it comes."""

    def drained(self) -> Awaitable[Any]:
        """Resolves once the writer is no longer paused."""
        return self.resumed.wait()

    def discard_events(self) -> None:
        """The connection is being closed while backed up: drop the events not sent yet, and abandon the send of
        one in flight (safe on uvicorn: see the module docstring), so the messages queued next go out first."""
        if any(queued.event for queued in self.outbox):
            self.unsent -= sum(queued.size for queued in self.outbox if queued.event)
            self.outbox = deque(queued for queued in self.outbox if not queued.event)
        if self.in_flight is not None and self.in_flight.event and self.task is not None and not self.abandoning:
            self.abandoning = True
            self.task.cancel()
        self._resume_if_drained()

    def stop(self) -> None:
        """The connection ended: drop what is queued and cancel the writer task."""
        self.closed = True
        self._drop_queued()
        task, self.task = self.task, None
        if task is not None:
            task.cancel()

    # --- the outbox ---

    def _queue(self, message: dict[str, Any], size: int, event: bool) -> None:
        if self.closed:
            return  # after the close, or the connection is gone
        self.outbox.append(Queued(message, size, event))
        self.unsent += size
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._write(), name="asgi-writer")
        self.wakeup.set()

    def _drop_queued(self) -> None:
        """Forget every queued message (the one in flight is counted until its send ends)."""
        self.unsent -= sum(queued.size for queued in self.outbox)
        self.outbox.clear()
        self._resume_if_drained()

    def _resume_if_drained(self) -> None:
        if self._paused and self.unsent <= LOW_WATER:
            self._paused = False
            self.resumed.set()

    async def _write(self) -> None:
        """Send the outbox in order, one message at a time, each awaited before the next."""
        while True:
            if not self.outbox:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            queued = self.in_flight = self.outbox.popleft()
            try:
                await self.send(queued.message)
            except asyncio.CancelledError:
                if not self.abandoning or self.task is not asyncio.current_task():
                    raise  # stop(): the connection ended
                asyncio.current_task().uncancel()  # only the event's send was abandoned
            except Exception as exc:
                # The server refuses to send any more (uvicorn: the client disconnected); the consumer hears of
                # the disconnect through receive.
                log = logger.debug if isinstance(exc, OSError) else logger.exception
                log("the ASGI send failed; nothing more is written to this connection", exc_info=True)
                self.closed = True
                self._drop_queued()
                return
            finally:
                self.abandoning = False
                self.in_flight = None
                self.unsent -= queued.size
                self._resume_if_drained()
