"""The writer for any ASGI server other than this project's Daphne (uvicorn, …): events go through ASGI send.

An ASGI server tells the application nothing about its socket's write buffer, so this writer is never paused:
the delivery policy never coalesces progress nor closes a slow client with 4011 (docs/protocol.md, "Slow
clients"); how a client that stops reading is handled is up to the server's own flow control.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from . import Outbound


class AsgiWriter:
    """Writes each event as an ASGI `websocket.send` text message; no batching, no backpressure signal."""

    paused = False

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]):
        self.send = send

    async def send_event(self, outbound: Outbound) -> None:
        """Send the event's text through the server."""
        await self.send({"type": "websocket.send", "text": outbound.text})

    def hold(self) -> None:
        """Nothing to collect: every send goes through ASGI at once, in order."""

    def release(self) -> None:
        """Nothing was collected."""

    def drained(self) -> Awaitable[Any]:
        """Never backed up, as far as the application can tell."""
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
