"""Delivery policy of one connection: what is sent through its writer, and when.

Events are written in order; while the socket is backed up progress is coalesced (latest wins) and everything
else capped, then the connection is closed as too slow."""

import asyncio
from collections.abc import Awaitable, Callable

from .events import PROGRESS_UPDATED
from .transport import Outbound, Writer


class Delivery:
    """What one connection sends, and when, given its writer's backpressure."""

    __slots__ = ("writer", "max_backlog_bytes", "on_too_slow", "held_progress", "backlog", "flusher", "too_slow",
                 "closing")

    def __init__(self, writer: Writer, max_backlog_bytes: int, on_too_slow: Callable[[], Awaitable[None]]):
        self.writer = writer
        self.max_backlog_bytes = max_backlog_bytes  # WS_SLOW_CLIENT_MAX_BYTES
        self.on_too_slow = on_too_slow  # sends the too_slow error and closes (the consumer's protocol)
        self.held_progress: dict[str, Outbound] = {}  # the latest progress per paper, while backed up
        self.backlog = 0  # bytes sent during the current backed-up stretch
        self.flusher: asyncio.Task | None = None  # sends the held progress once the socket drained
        self.too_slow = False
        self.closing = False  # an error that closes the connection was sent: it is the last message

    def deliver(self, paper_id: str, event_type: str, event: Outbound) -> Awaitable[None] | None:
        """Send now if the socket keeps up; else coalesce progress (latest wins) and cap everything else. Returns
        None, or the close of a client found too slow for the caller to await."""
        # A plain call, not a coroutine: it runs once per delivery, and only the close has to wait.
        if self.too_slow:
            return None
        if not self.writer.paused:
            self.backlog = 0  # the socket drained: the cap counts one backed-up stretch, not a lifetime
            if self.held_progress:
                self._send_held(paper_id)
            if not self.closing:
                self.writer.send_event(event)
            return None
        if event_type == PROGRESS_UPDATED:
            self.held_progress[paper_id] = event
            if self.flusher is None:
                self.flusher = asyncio.ensure_future(self._flush_when_writable())
            return None
        held = self.held_progress.get(paper_id)
        self.backlog += len(event.text) + (len(held.text) if held else 0)
        if self.backlog > self.max_backlog_bytes:
            # Never drop status, entity, relationship or error events silently: disconnect instead; the
            # client resumes with `since` and gets every one of them from the log.
            self.too_slow = True
            return self.on_too_slow()
        self._send_held(paper_id)
        self.write(event)
        return None

    def _send_held(self, paper_id: str) -> None:
        """Send a held progress event of the paper before its next event, so its events stay in seq order."""
        held = self.held_progress.pop(paper_id, None)
        if held is not None:
            self.write(held)

    def write(self, event: Outbound) -> None:
        """Write an event unless the closing error went out (nothing may follow it); never waits (writers write or
        queue at once, which keeps the per-delivery path free of coroutine frames)."""
        if not self.closing:
            self.writer.send_event(event)

    def hold(self) -> None:
        """The fan-out starts a batch: collect this connection's frames until release()."""
        self.writer.hold()

    def release(self) -> None:
        """The fan-out ended its batch, or another message is about to be sent: write what was collected."""
        self.writer.release()

    async def send_message(self, message: dict) -> None:
        """Send a message other than an event (a reply, an error, the close) after the events sent before it.
        Once the closing error is due while the socket is backed up, events not written yet are dropped first
        (the client resumes with `since`), so the error and the close are not queued behind them."""
        if self.closing and self.writer.paused:
            self.writer.discard_events()
        await self.writer.send_message(message)

    def stop(self) -> None:
        """The connection ended: cancel the flusher and stop the writer (and its task)."""
        if self.flusher is not None:
            self.flusher.cancel()
            self.flusher = None
        self.writer.stop()

    async def _flush_when_writable(self) -> None:
        """Once the socket drained, send the latest held progress of each paper."""
        await self.writer.drained()
        self.flusher = None
        self.backlog = 0
        held, self.held_progress = self.held_progress, {}
        if not self.too_slow:
            for event in held.values():
                self.write(event)
