"""The realtime bus: the project's wire contract on Redis pub/sub, between publishers and every fan-out.

The contract, which nothing else in the project restates:

- **Which Redis**: `settings.REALTIME_REDIS_URL` (defaults to `REDIS_URL`), one server, or one master behind
  Sentinel (the clients come from paperpipeline/redis_clients.py). Publishers and readers read the same setting,
  so they can never be split across servers.
- **Channel**: one pub/sub channel per group, `<REALTIME_BUS_PREFIX>:<group>` (`channel`, `group_of`).
- **Message**: a dict with a `"type"` key, encoded as MessagePack (`encode`, `decode`), and `"published_at"`,
  the publisher's clock (Unix seconds) when it was published, for the delivery latency metric (the fan-out takes
  it off before members see the message).
  A paper or system event carries its client JSON, encoded once by the publisher, in `"text"`; MessagePack
  stores that string as length-prefixed UTF-8, so it is neither escaped on publish nor unescaped per process on
  read, as a JSON envelope around JSON would be.
- **Delivery**: at most once, to the processes subscribed at the moment of the PUBLISH. Nothing is stored:
  the event log in the database is the record, and clients recover missed paper events with `since`.

`publish` (sync code: Celery tasks, signal handlers) and `apublish` (async code) send one message to several
groups in one pipelined round trip; a failure is logged, never raised. `subscriber` makes the client of the
fan-out's one pub/sub connection (realtime/fanout.py).

Plain keys beside the channels (realtime/accounts.py caches account facts there) are named by `key`, under the
same prefix, and reached through the same pooled clients (`client`, `aclient`).
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import msgpack
import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from paperpipeline import metrics, redis_clients

from .background import for_this_loop

logger = logging.getLogger(__name__)

# Seconds: a publisher waits no longer than this for Redis (it never holds up a commit for long).
TIMEOUT = 5


def url() -> str:
    """The URL of the bus's Redis."""
    return settings.REALTIME_REDIS_URL


def channel(group: str) -> str:
    """The pub/sub channel of a group."""
    return f"{settings.REALTIME_BUS_PREFIX}:{group}"


def key(name: str) -> str:
    """A plain Redis key of the realtime layer (not a channel): `<prefix>:key:<name>`."""
    return f"{settings.REALTIME_BUS_PREFIX}:key:{name}"


def group_of(channel_name: bytes | str) -> str:
    """The group of a pub/sub channel (the inverse of `channel`), as Redis names it in a message."""
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    prefix = f"{settings.REALTIME_BUS_PREFIX}:"
    if not name.startswith(prefix):
        raise ValueError(f"{name!r} is not a channel of this bus")
    return name[len(prefix):]


def encode(message: dict[str, Any]) -> bytes:
    """Encode a bus message (strings stay strings, bytes stay bytes)."""
    return msgpack.packb(message, use_bin_type=True)


def decode(data: bytes) -> dict[str, Any]:
    """Decode a bus message; raise ValueError for anything that is not one."""
    try:
        message = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise ValueError("not a bus message") from error
    if not isinstance(message, dict) or "type" not in message:
        raise ValueError("not a bus message")
    return message


def _stamped(message: dict[str, Any]) -> bytes:
    """A message encoded with its publish time."""
    return encode({**message, "published_at": time.time()})


def publish(groups: Iterable[str], message: dict[str, Any]) -> None:
    """Publish a message to groups from sync code, in one round trip on the process's pooled connection."""
    data = _stamped(message)
    try:
        pipe = _sync_client().pipeline(transaction=False)
        for group in groups:
            pipe.publish(channel(group), data)
        pipe.execute()
    except (OSError, redis.RedisError):
        # The event log keeps the event; clients recover it with `since`.
        metrics.BUS_PUBLISH_FAILURES.inc()
        logger.warning("publishing %s failed", _label(message), exc_info=True)


def remember(key: str, data: str, ttl: float) -> None:
    """Keep a small value under a key for `ttl` seconds (a failure is logged: it is only a convenience)."""
    try:
        _sync_client().set(key, data, px=max(1, int(ttl * 1000)))
    except (OSError, redis.RedisError):
        logger.warning("storing %s failed", key, exc_info=True)


def recall(key: str) -> str | None:
    """A value kept by remember(), or None when it is gone or Redis cannot be reached."""
    try:
        data = _sync_client().get(key)
    except (OSError, redis.RedisError):
        logger.warning("reading %s failed", key, exc_info=True)
        return None
    return data.decode() if isinstance(data, bytes) else data


async def apublish(groups: Iterable[str], message: dict[str, Any]) -> None:
    """Publish a message to groups from async code, in one round trip on the running loop's pooled connection."""
    data = _stamped(message)
    try:
        async with _async_client().pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.publish(channel(group), data)
            await pipe.execute()
    except (OSError, redis.RedisError):
        metrics.BUS_PUBLISH_FAILURES.inc()
        logger.warning("publishing %s failed", _label(message), exc_info=True)


def subscriber() -> aioredis.Redis:
    """A client for the fan-out's one pub/sub connection, on the running loop.

    It never retries or reconnects by itself (a failed call raises at once): the fan-out reconnects under its
    own lock, so a process never holds two pub/sub connections."""
    no_retries = Retry(NoBackoff(), 0, supported_errors=())
    return redis_clients.async_client(url(), retry=no_retries, socket_connect_timeout=TIMEOUT)


async def aclose() -> None:
    """Close the running loop's publishing connections (at shutdown, or when a test's loop ends)."""
    with _clients_lock:
        client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _label(message: dict[str, Any]) -> str:
    """What a log line calls a message."""
    return message.get("event_type") or message.get("type", "a message")


_clients_lock = threading.Lock()
_client: redis.Redis | None = None
_async_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def client() -> redis.Redis:
    """The process's pooled client of the bus's Redis, for sync code."""
    return _sync_client()


def aclient() -> aioredis.Redis:
    """The running loop's pooled client of the bus's Redis, for async code."""
    return _async_client()


def _sync_client() -> redis.Redis:
    """The process's client for sync publishing; its pool reconnects, and starts afresh in a forked child."""
    global _client
    with _clients_lock:
        if _client is None:
            _client = redis_clients.client(url(), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                           health_check_interval=30)
        return _client


def _async_client() -> aioredis.Redis:
    """The running loop's client for async publishing (an asyncio connection belongs to one loop)."""
    with _clients_lock:
        return for_this_loop(_async_clients, lambda: redis_clients.async_client(
            url(), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, health_check_interval=30
        ))
