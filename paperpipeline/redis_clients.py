"""Every Redis client of the project is made here, from one URL: a single server, or a master behind Sentinel.

A URL is either redis-py's own (`redis://[[user]:password@]host:port/db`, `rediss://…`, `unix://…`) or a
Sentinel URL, which names the sentinels and the master they watch:

    redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>][?sentinel_password=…]

The userinfo authenticates with the master (and a replica promoted in its place); `sentinel_password`, when
the sentinels have a `requirepass` of their own, with the sentinels. A port left out is Sentinel's 26379.
Clients of a Sentinel URL ask the sentinels for the master's address on every (re)connect, so after a
failover each reconnect reaches the new master; a connection still open to a demoted master is dropped at its
first READONLY answer (redis-py's `SentinelManagedConnection`).

`client` (sync) and `async_client` (asyncio) take either kind; `celery_broker` gives Celery (kombu) the same
Redis in its own terms. Nothing here reads Django settings: callers pass the URL.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.asyncio.sentinel as aiosentinel
import redis.retry
import redis.sentinel
from redis.backoff import NoBackoff

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
# Seconds a sentinel may take to answer where the master is, unless the caller's own timeouts are shorter.
SENTINEL_TIMEOUT = 2.0
MAX_SENTINELS = 16  # a URL naming more is refused, not parsed at length


@dataclass(frozen=True)
class SentinelTarget:
    """What a Sentinel URL names: the sentinels, the master's name, and how to talk to the master."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel(url: str) -> bool:
    """Whether the URL names a master behind Sentinel."""
    return url.partition("://")[0].lower() == SENTINEL_SCHEME


def sentinel_target(url: str) -> SentinelTarget:
    """Parse a Sentinel URL; a ValueError says what is wrong with it (never repeating the URL: it may hold a
    password)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user) or None, (unquote(secret) if colon else None) or None
    hosts = [each for each in hostlist.split(",") if each]
    if not hosts:
        raise ValueError("a Sentinel URL names at least one sentinel, host:port")
    if len(hosts) > MAX_SENTINELS:
        raise ValueError(f"a Sentinel URL names at most {MAX_SENTINELS} sentinels")
    path = [unquote(each) for each in parts.path.split("/") if each]
    if not path or len(path) > 2:
        raise ValueError("a Sentinel URL's path is /<master name> or /<master name>/<db>")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError("a Sentinel URL's database is a number")
    query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=4)
    unknown = set(query) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"a Sentinel URL takes no parameter {sorted(unknown)[0]!r}, only sentinel_password")
    return SentinelTarget(
        sentinels=tuple(_address(each) for each in hosts),
        master=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
        sentinel_password=query.get("sentinel_password", [None])[-1] or None,
    )


def check_url(url: str) -> None:
    """Refuse a URL no client could be made from (at start-up, before any process depends on it)."""
    if is_sentinel(url):
        sentinel_target(url)
    elif url.partition("://")[0].lower() not in {"redis", "rediss", "unix"}:
        raise ValueError(f"a Redis URL starts with redis://, rediss://, unix:// or {SENTINEL_SCHEME}://")


def client(url: str, **options: Any) -> redis.Redis:
    """A sync client of the Redis the URL names (options: redis-py's connection keywords)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = sentinel_target(url)
    sentinel_options = {**_sentinel_options(target, options), "retry": redis.retry.Retry(NoBackoff(), 0)}
    manager = redis.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_options)
    master = manager.master_for(target.master, redis_class=_SentinelMaster, **_master_options(target, options))
    master.sentinel_manager = manager
    return master


def async_client(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client of the Redis the URL names, on the running loop (options as for `client`)."""
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **options)
    target = sentinel_target(url)
    sentinel_options = {**_sentinel_options(target, options), "retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}
    manager = aiosentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_options)
    master = manager.master_for(target.master, redis_class=_AsyncSentinelMaster, **_master_options(target, options))
    master.sentinel_manager = manager
    return master


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and transport options for the Redis the URL names (kombu spells Sentinel its own way:
    `sentinel://…;sentinel://…` and the master's name among the transport options)."""
    if not is_sentinel(url):
        return url, {}
    target = sentinel_target(url)
    userinfo = ""
    if target.username or target.password:
        userinfo = f"{_quote(target.username or '')}:{_quote(target.password or '')}@"
    broker = ";".join(
        f"sentinel://{userinfo}{f'[{host}]' if ':' in host else host}:{port}/{target.db}"
        for host, port in target.sentinels
    )
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return broker, {"master_name": target.master, "sentinel_kwargs": sentinel_kwargs}


class _SentinelMaster(redis.Redis):
    """A master's client that also closes its sentinels' connections."""

    sentinel_manager: redis.sentinel.Sentinel | None = None

    def close(self) -> None:
        super().close()
        for sentinel in self.sentinel_manager.sentinels if self.sentinel_manager else ():
            sentinel.close()


class _AsyncSentinelMaster(aioredis.Redis):
    """A master's asyncio client that also closes its sentinels' connections."""

    sentinel_manager: aiosentinel.Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.sentinel_manager.sentinels if self.sentinel_manager else ():
            await sentinel.aclose()


def _address(hostport: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`, or a host alone) as a sentinel address."""
    host, port = hostport, str(SENTINEL_PORT)
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif ":" in hostport:
        host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("each sentinel is host:port, with a port from 1 to 65535")
    return unquote(host), int(port)


def _master_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    """The master's connection keywords: the caller's, with the URL's database and credentials."""
    return {**options, "db": target.db, "username": target.username, "password": target.password}


def _sentinel_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    """The sentinels' connection keywords: their own password, and timeouts no longer than the caller's (no
    retries: asking the next sentinel is the retry, so one that is down costs one timeout, not a backoff)."""
    timeouts = {}
    for key in ("socket_timeout", "socket_connect_timeout"):
        given = options.get(key)
        timeouts[key] = min(given, SENTINEL_TIMEOUT) if given else SENTINEL_TIMEOUT
    return {**timeouts, "password": target.sentinel_password}


def _quote(text: str) -> str:
    """Percent-encode a credential for kombu's URL."""
    return quote(text, safe="")
