"""Process-local fan-out: one Redis pub/sub reader per process handing each message to its group's local members.

Each message is decoded once and handed to every local member in one loop, with no channel-layer hop per
recipient.

Publishers (realtime.broadcast) and this reader meet only through realtime/bus.py: the channel of each group,
the message encoding and the Redis to use.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from paperpipeline import metrics

from . import bus
from .background import for_this_loop
from .broadcast import SUBSCRIPTION_KINDS, group_kind
from .transport import Outbound

logger = logging.getLogger(__name__)
# Series that exist from the start, at 0, so a dashboard has them before anything happened.
metrics.REDIS_RECONNECTS.labels("fanout")
for _kind in SUBSCRIPTION_KINDS:
    metrics.WS_SUBSCRIPTIONS.labels(_kind)


# Messages read from Redis in one go and handed out as one batch: under load a socket then gets several
# events in one write instead of one write each; when idle a batch is a single event.
BATCH_LIMIT = 100


class Member(Protocol):
    def fanout_message(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Take one message; return None, or what must be awaited before the next member's turn."""

    def hold_writes(self) -> None: ...

    def release_writes(self) -> None: ...


class Fanout:
    """The members of each group in this process, and the one reader that feeds them.

    One Redis pub/sub connection per process. redis-py's PubSub opens and reopens its connection lazily, with
    awaits in between and no lock of its own: concurrent first subscribers would each open one and all but
    the last would be orphaned, subscribed and never read. So every SUBSCRIBE, UNSUBSCRIBE and (re)connect
    here runs under one lock, redis-py never reconnects on its own (its retries are off), and a group is
    registered only once its SUBSCRIBE was sent.
    """

    def __init__(self):
        # The bus's subscriber never retries: a failed call raises at once, and only _reconnect (under the
        # lock) connects again.
        self.redis = bus.subscriber()
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.lock = asyncio.Lock()
        # Invariant: a group is a key here (with at least one member) only while its channel is subscribed.
        self.members: dict[str, set[Member]] = {}
        # The one reader task, kept here (the loop keeps only a weak reference) and cancelled by aclose().
        self.reader: asyncio.Task | None = None
        # For the metrics, counted once per batch by _hand_out: messages handed to members so far in the batch,
        # and when its oldest message was published.
        self.handed = 0
        self.oldest_published_at: float | None = None
        self.last_batch_at = float("-inf")  # time.monotonic() of the last batch handed out (realtime.gctune)

    async def join(self, group: str, member: Member) -> None:
        """Add a member; the first one of a group subscribes this process to it. If that fails, this raises
        and nothing is registered, so the next join tries again."""
        members = self.members.get(group)
        if members is None:
            async with self.lock:
                members = self.members.get(group)
                if members is None:
                    await self.pubsub.subscribe(bus.channel(group))
                    members = self.members[group] = set()
                _add(members, group, member)
        else:
            _add(members, group, member)  # already subscribed: no await between the check and the add
        if self.reader is None:
            self.reader = asyncio.get_running_loop().create_task(self._read(), name="fanout-reader")

    async def leave(self, group: str, member: Member) -> None:
        """Remove a member; the last one out unsubscribes (a Redis error is logged: the reconnect drops it)."""
        members = self.members.get(group)
        if not members or member not in members:
            return
        members.discard(member)
        _count_membership(group, -1)
        if members:
            return
        # Unregistered before any await, so a join from now on subscribes again, after this UNSUBSCRIBE.
        del self.members[group]
        async with self.lock:
            if group in self.members:
                return  # joined and subscribed again meanwhile
            try:
                await self.pubsub.unsubscribe(bus.channel(group))
            except (OSError, RedisError):
                logger.warning("unsubscribing from %s failed; the next reconnect drops it", group, exc_info=True)

    async def _reconnect(self) -> None:
        """Connect again, subscribed to the groups that have members (under the lock: never two connections)."""
        async with self.lock:
            connection = self.pubsub.connection
            if connection.is_connected:
                return
            try:
                await self.pubsub.connect()  # redis-py's connect callback subscribes to its channels again
                metrics.REDIS_RECONNECTS.labels("fanout").inc()
                wanted = {bus.channel(group).encode() for group in self.members}
                stale = [channel for channel in self.pubsub.channels if channel not in wanted]
                if stale:  # left while Redis was away, when their UNSUBSCRIBE failed
                    await self.pubsub.unsubscribe(*stale)
            except BaseException:
                await connection.disconnect(nowait=True)  # half set up: start over next time
                raise

    async def _disconnect(self) -> None:
        """Drop the connection after an error (under the lock, like every other use of it)."""
        async with self.lock:
            await self.pubsub.connection.disconnect(nowait=True)

    async def _next_message(self, wait: float) -> dict[str, Any] | None:
        """Read one message; a lost connection raises instead of letting redis-py reconnect outside the lock."""
        if not self.pubsub.connection.is_connected:  # dropped by a failed SUBSCRIBE meanwhile
            raise RedisConnectionError("fan-out connection lost")
        # No await between that check and get_message's own, so get_message never connects by itself.
        return await self.pubsub.get_message(timeout=wait)

    async def _read(self) -> None:
        """Decode each message once and hand it to its group's members; what arrived together is one batch."""
        while True:
            if not self.pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            batch: list[dict[str, Any]] = []
            try:
                if not self.pubsub.connection.is_connected:
                    await self._reconnect()
                message = await self._next_message(wait=1.0)
                while message is not None:
                    batch.append(message)
                    if len(batch) == BATCH_LIMIT:
                        break
                    message = await self._next_message(wait=0)  # already received: no wait
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: reconnect (and resubscribe) on the next turn. What was read before is
                # still handed out.
                logger.warning("fan-out reader lost Redis; retrying", exc_info=True)
                await self._hand_out(batch)
                await self._disconnect()
                await asyncio.sleep(1)
                continue
            await self._hand_out(batch)

    async def _hand_out(self, batch: list[dict[str, Any]]) -> None:
        """Deliver a batch, then count it: its messages, their handing to members, and its oldest message's
        latency from the PUBLISH to the socket writes (one observation per batch, never per delivery)."""
        if not batch:
            return
        self.last_batch_at = time.monotonic()
        try:
            await self._deliver(batch)
        finally:
            self.last_batch_at = time.monotonic()  # a batch that awaited (slow clients closed) was busy throughout
        metrics.fanout_batch(len(batch), self.handed, self.oldest_published_at)
        self.handed, self.oldest_published_at = 0, None

    def _note(self, group: str, decoded: dict[str, Any]) -> None:
        """Note a message for the batch's metrics, and take its publish time off (members never see it)."""
        self.handed += len(self.members.get(group, ()))
        published_at = decoded.pop("published_at", None)
        if self.oldest_published_at is None and isinstance(published_at, float):
            self.oldest_published_at = published_at

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Hand out a batch in order; each member writes its share of a batch of several messages to its socket
        at once at the end (a batch of one is written as it is handed out)."""
        holding: set[Member] | None = set() if len(batch) > 1 else None
        try:
            for message in batch:
                try:
                    group, decoded = bus.group_of(message["channel"]), bus.decode(message["data"])
                except ValueError:
                    # Only this project publishes on its channels; a stray message must not stop the reader.
                    logger.warning("dropped a message on %r that is not a bus message", message["channel"])
                    continue
                self._note(group, decoded)  # per message, never per member: the metrics count per batch
                if "text" in decoded:
                    decoded["prepared"] = Outbound(decoded["text"])  # framed once, for all members
                # A copy: a member that must be awaited lets others join and leave meanwhile.
                for member in list(self.members.get(group, ())):
                    if holding is not None and member not in holding:
                        member.hold_writes()
                        holding.add(member)
                    try:
                        # Most members take a message without waiting: no coroutine per member and message.
                        pending = member.fanout_message(decoded)
                        if pending is not None:
                            await pending
                    except Exception:
                        logger.exception("delivering to one member failed")
        finally:
            for member in holding or ():
                member.release_writes()

    async def aclose(self) -> None:
        """Cancel the reader and close the pub/sub connection; this loop's next fanout() starts afresh."""
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])  # returns once it ended; a cancellation of the caller still propagates
        await self.pubsub.aclose()
        await self.redis.aclose()
        loop = asyncio.get_running_loop()
        if _by_loop.get(loop) is self:
            del _by_loop[loop]


_by_loop: dict[asyncio.AbstractEventLoop, Fanout] = {}


def fanout() -> Fanout:
    """This event loop's fan-out (one per Daphne process; one per test loop)."""
    return for_this_loop(_by_loop, Fanout)


def quiet_seconds() -> float:
    """Seconds since this process's fan-out last handed out a batch (infinite before the first)."""
    latest = max((instance.last_batch_at for instance in _by_loop.values()), default=float("-inf"))
    return time.monotonic() - latest


async def aclose_fanout() -> None:
    """Close this event loop's fan-out, if it has one (at shutdown, or when a test's loop ends)."""
    instance = _by_loop.get(asyncio.get_running_loop())
    if instance is not None:
        await instance.aclose()


def _add(members: set[Member], group: str, member: Member) -> None:
    """Add a member to a group's set, counting it once as a subscription of the group's kind."""
    if member not in members:
        members.add(member)
        _count_membership(group, 1)


def _count_membership(group: str, change: int) -> None:
    """Follow the subscriptions metric as a group that stands for a subscription gains or loses a member."""
    kind = group_kind(group)
    if kind is not None:
        metrics.WS_SUBSCRIPTIONS.labels(kind).inc(change)
