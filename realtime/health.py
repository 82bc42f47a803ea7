"""Whether this process's fan-out works: a probe message published on the bus comes back through it.

The probe is a member of the fan-out in a group of its own (one per process and event loop), so the round trip
covers what a client's events go through: the PUBLISH on the bus's Redis, this process's pub/sub subscription
and its reader task. It stays a member, so after Redis comes back the fan-out resubscribes it like any group.
"""

import asyncio
import uuid
from typing import Any

from . import bus
from .background import for_this_loop
from .fanout import fanout

PROBE_TYPE = "health.probe"


class FanoutProbe:
    """A fan-out member that only answers probes it sent itself."""

    def __init__(self) -> None:
        self.group = f"health.{uuid.uuid4().hex}"
        self.waiting: dict[str, asyncio.Future] = {}

    async def fanout_message(self, message: dict[str, Any]) -> None:
        """A probe came back: wake whoever sent it."""
        future = self.waiting.pop(message.get("nonce"), None)
        if future is not None and not future.done():
            future.set_result(None)

    def hold_writes(self) -> None:
        """Nothing to hold: the probe writes to no socket."""

    def release_writes(self) -> None:
        """Nothing held."""

    async def round_trip(self) -> None:
        """Publish a probe and wait for it to come back (the caller bounds the wait)."""
        await fanout().join(self.group, self)  # a set add once joined; subscribes the first time
        nonce = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.waiting[nonce] = future
        try:
            await bus.apublish([self.group], {"type": PROBE_TYPE, "nonce": nonce})
            await future
        finally:
            self.waiting.pop(nonce, None)


_by_loop: dict[asyncio.AbstractEventLoop, FanoutProbe] = {}


async def fanout_round_trip() -> None:
    """Send a probe through this event loop's fan-out and wait until it comes back."""
    await for_this_loop(_by_loop, FanoutProbe).round_trip()
