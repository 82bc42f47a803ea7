"""The writer interface the consumer delivers through, the transport-neutral outbound event, and writer_for().

writer_for() picks the writer of the server the connection runs on.

Under this project's Daphne (realtime/transport/daphne.py) a connection's writer comes in the ASGI scope: it
writes each event's shared frame straight to the socket and reports Twisted's backpressure. Under any other ASGI
server (uvicorn) the ASGI writer (realtime/transport/asgi.py) queues every message of the connection in an
outbox sent in order by one task, and reports backpressure from what waits there. Either way every outgoing
message of the connection goes through its writer, and writing never waits for the socket.
"""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# The ASGI scope extension under which a server hands each WebSocket connection its writer.
WRITER_EXTENSION = "paperpipeline.writer"
# The ASGI scope extension under which a server offers an HTTP request backpressure: a callable taking a push
# producer (pause_producing/resume_producing/stop_producing) to be told when the response's socket backs up and
# drains, returning the callable that stops telling it. Used by the SSE streams (realtime/sse.py).
HTTP_BACKPRESSURE_EXTENSION = "paperpipeline.http_backpressure"


class Outbound:
    """One event's text, made once per event for every connection that receives it; each transport caches
    what it derives from the text (frames, compressed frames) in `frames`, so it is built once, then shared."""

    __slots__ = ("text", "frames")

    def __init__(self, text: str):
        self.text = text
        self.frames: dict[Any, bytes] = {}


class Writer(Protocol):
    """The write side of one WebSocket connection, as the delivery policy (realtime/delivery.py) uses it."""

    paused: bool  # the socket is backed up: the delivery policy holds or caps what it sends

    def send_event(self, outbound: Outbound) -> None:
        """Write one event to the socket, or queue it, in order with everything before; never waits (a plain call,
        not a coroutine: it runs once per delivery)."""

    async def send_message(self, message: dict[str, Any]) -> None:
        """Send any other ASGI message (a reply, an error, the close) after every event written before it."""

    def hold(self) -> None:
        """Start collecting events instead of writing each: the fan-out hands out a batch."""

    def release(self) -> None:
        """Write what was collected since hold(), in order; send_message() does so before its message."""

    def drained(self) -> Awaitable[Any]:
        """Resolves once the socket is no longer backed up."""

    def discard_events(self) -> None:
        """The connection is being closed while backed up: events not written yet may be dropped, so that the
        messages sent next (the error, the close) do not wait behind them; the client resumes with `since`."""

    def stop(self) -> None:
        """The connection ended: stop writing, and end any task the writer keeps."""


ASGISend = Callable[[dict[str, Any]], Awaitable[None]]


def writer_for(scope: dict[str, Any], send: ASGISend) -> Writer:
    """The writer the server put in the scope (this project's Daphne), given the application's ASGI `send` for
    its other messages; else one writing everything through `send`."""
    writer = scope.get("extensions", {}).get(WRITER_EXTENSION)
    if writer is not None:
        writer.bind(send)
        return writer
    from .asgi import AsgiWriter

    return AsgiWriter(send)
