"""Celery workers report themselves alive: a Redis entry that expires, and optionally a file a supervisor checks.

Every WORKER_HEARTBEAT_INTERVAL seconds, from the worker's own timer (so a worker whose main loop is stuck stops
reporting), the worker's main process
- scores its node name in the sorted set `<REALTIME_BUS_PREFIX>:workers` of the broker's Redis with the time its
  report expires (three intervals on, by the Redis server's clock, so hosts' clocks never matter); /readyz counts
  the unexpired ones (`live_workers`);
- touches WORKER_HEARTBEAT_FILE when it is set (`%n` in it becomes the node name, as in Celery's --pidfile).
A worker that stops cleanly removes both.

A supervisor on the worker's host checks the file: `python -m paperpipeline.heartbeat FILE [--max-age S]` exits 0
when it was touched within S seconds (default three intervals), 1 otherwise. No Django is loaded for that.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# KEYS[1]: the set; ARGV: node name, seconds its report lasts. Stale reports are dropped on the way.
_REPORT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""
_COUNT = "return redis.call('ZCOUNT', KEYS[1], '(' .. redis.call('TIME')[1], '+inf')"


def workers_key() -> str:
    """The sorted set of worker reports."""
    from django.conf import settings

    return f"{settings.REALTIME_BUS_PREFIX}:workers"


async def live_workers(client) -> int:
    """How many workers reported themselves alive and have not expired (an asyncio Redis client)."""
    return int(await client.eval(_COUNT, 1, workers_key()))


def _bootstep():
    """The worker bootstep (built on first use, so importing this module needs no Celery)."""
    import redis
    from celery import bootsteps
    from celery.utils.nodenames import node_format
    from django.conf import settings

    from . import redis_clients

    class Heartbeat(bootsteps.StartStopStep):
        """Report this worker alive on the worker's timer, and withdraw the report when it stops."""

        requires = {"celery.worker.components:Timer"}

        def __init__(self, worker, **kwargs):
            super().__init__(worker, **kwargs)
            self.timer_ref = None
            self.interval = settings.WORKER_HEARTBEAT_INTERVAL
            self.file = Path(node_format(settings.WORKER_HEARTBEAT_FILE, worker.hostname)) \
                if settings.WORKER_HEARTBEAT_FILE else None
            timeout = min(self.interval, settings.HEALTH_CHECK_TIMEOUT)
            self.redis = redis_clients.client(settings.BROKER_REDIS_URL, socket_timeout=timeout,
                                              socket_connect_timeout=timeout)
            self.report = self.redis.register_script(_REPORT)
            self.healthy = True

        def start(self, worker):
            self.beat(worker)
            self.timer_ref = worker.timer.call_repeatedly(self.interval, self.beat, (worker,), priority=10)

        def stop(self, worker):
            if self.timer_ref is not None:
                self.timer_ref.cancel()
                self.timer_ref = None
            if self.file is not None:
                self.file.unlink(missing_ok=True)
            try:
                self.redis.zrem(workers_key(), worker.hostname)
            except (OSError, redis.RedisError):
                pass  # it expires on its own
            self.redis.close()

        def beat(self, worker):
            """One report; a failed one is logged once, until reports succeed again."""
            if self.file is not None:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                self.file.touch()
            try:
                self.report(keys=[workers_key()], args=[worker.hostname, int(self.interval * 3) + 1])
            except (OSError, redis.RedisError) as exc:
                if self.healthy:
                    logger.warning("worker.heartbeat_failed", extra={"error": type(exc).__name__})
                self.healthy = False
                return
            if not self.healthy:
                logger.info("worker.heartbeat_resumed")
            self.healthy = True

    return Heartbeat


def install(app) -> None:
    """Add the heartbeat to every worker of a Celery app."""
    app.steps["worker"].add(_bootstep())


def file_is_fresh(path: Path, max_age: float) -> bool:
    """Whether a heartbeat file exists and was touched within max_age seconds."""
    try:
        return time.time() - path.stat().st_mtime <= max_age
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    """The supervisor's check: exit 0 if the worker touched its file recently, else 1."""
    interval = float(os.environ.get("WORKER_HEARTBEAT_INTERVAL", "5"))
    parser = argparse.ArgumentParser(prog="python -m paperpipeline.heartbeat", description=main.__doc__)
    parser.add_argument("file", type=Path, help="the worker's WORKER_HEARTBEAT_FILE, %%n expanded")
    parser.add_argument("--max-age", type=float, default=interval * 3, help="seconds (default: three intervals)")
    args = parser.parse_args(argv)
    if file_is_fresh(args.file, args.max_age):
        return 0
    print(f"{args.file}: no heartbeat within {args.max_age:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
