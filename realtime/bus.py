"""The realtime bus: the project's wire contract on Redis pub/sub, between publishers and every fan-out.

The contract, which nothing else in the project restates:

- **Which Redis**: `settings.REALTIME_REDIS_URL` (defaults to `REDIS_URL`), one server. Publishers and readers
  read the same setting, so they can never be split across servers.
- **Channel**: one pub/sub channel per group, `<REALTIME_BUS_PREFIX>:<group>` (`channel`, `group_of`).
- **Message**: a dict with a `"type"` key, encoded as MessagePack (`encode`, `decode`). A paper or system event
  carries its client JSON, encoded once by the publisher, in `"text"`; MessagePack stores that string as
  length-prefixed UTF-8, so it is neither escaped on publish nor unescaped per process on read, as a JSON
  envelope around JSON would be.
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
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

# Seconds: a publisher waits no longer than this for Redis (it never holds up a commit for long).
TIMEOUT = 5
# Connections of a process's (a loop's) client for plain keys.
KEY_CONNECTIONS = 20


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


def publish(groups: Iterable[str], message: dict[str, Any]) -> None:
    """Publish a message to groups from sync code, in one round trip on the process's pooled connection."""
    data = encode(message)
    try:
        pipe = _sync_client().pipeline(transaction=False)
        for group in groups:
            pipe.publish(channel(group), data)
        pipe.execute()
    except (OSError, redis.RedisError):
        # The event log keeps the event; clients recover it with `since`.
        logger.warning("publishing %s failed", _label(message), exc_info=True)


async def apublish(groups: Iterable[str], message: dict[str, Any]) -> None:
    """Publish a message to groups from async code, in one round trip on the running loop's pooled connection."""
    data = encode(message)
    try:
        async with _async_client().pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.publish(channel(group), data)
            await pipe.execute()
    except (OSError, redis.RedisError):
        logger.warning("publishing %s failed", _label(message), exc_info=True)


def subscriber() -> aioredis.Redis:
    """A client for the fan-out's one pub/sub connection, on the running loop.

    It never retries or reconnects by itself (a failed call raises at once): the fan-out reconnects under its
    own lock, so a process never holds two pub/sub connections."""
    no_retries = Retry(NoBackoff(), 0, supported_errors=())
    return aioredis.Redis.from_url(url(), retry=no_retries, socket_connect_timeout=TIMEOUT)


async def aclose() -> None:
    """Close the running loop's publishing and key connections (at shutdown, or when a test's loop ends)."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        clients = [registry.pop(loop, None) for registry in (_async_clients, _key_clients)]
    for client in clients:
        if client is not None:
            await client.aclose()


def _label(message: dict[str, Any]) -> str:
    """What a log line calls a message."""
    return message.get("event_type") or message.get("type", "a message")


_clients_lock = threading.Lock()
_client: redis.Redis | None = None
_async_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}
_key_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def client() -> redis.Redis:
    """The process's pooled client of the bus's Redis, for sync code."""
    return _sync_client()


def aclient() -> aioredis.Redis:
    """The running loop's client for plain keys: at most KEY_CONNECTIONS connections, for which callers wait
    (a reconnect storm's thousand lookups at once queue for them instead of failing past redis-py's cap)."""
    return _loop_client(_key_clients, lambda: aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        url(), max_connections=KEY_CONNECTIONS, timeout=TIMEOUT, socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT, health_check_interval=30)))


def _sync_client() -> redis.Redis:
    """The process's client for sync publishing; its pool reconnects, and starts afresh in a forked child."""
    global _client
    with _clients_lock:
        if _client is None:
            _client = redis.Redis.from_url(url(), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                                           health_check_interval=30)
        return _client


def _async_client() -> aioredis.Redis:
    """The running loop's client for async publishing."""
    return _loop_client(_async_clients, lambda: aioredis.Redis.from_url(
        url(), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, health_check_interval=30))


def _loop_client(registry: dict[asyncio.AbstractEventLoop, aioredis.Redis],
                 make: Callable[[], aioredis.Redis]) -> aioredis.Redis:
    """The running loop's client in `registry`, made on first use (an asyncio connection belongs to one loop)."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        client = registry.get(loop)
        if client is None:
            for stale in [other for other in registry if other.is_closed()]:
                del registry[stale]
            client = registry[loop] = make()
        return client
