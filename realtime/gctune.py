"""The server process's garbage collector: start-up objects frozen out of it, full collections held back while
the fan-out is busy (FullCollections), and its pauses measured.

With 1,000 connections a Daphne process tracks 170k-290k objects and a full collection walks all of them:
80-180 ms during which no event is written. Most of them are the start-up heap (Django, the modules, the
application), which lives as long as the process and never becomes garbage; `freeze()` moves it to the
permanent generation, which the collector never walks. The pause statistics are written, only when
REALTIME_GC_STATS_FILE is set, to that file when the process exits (docs/architecture.md, "Garbage collection").
"""

import asyncio
import atexit
import gc
import json
import logging
import os
from bisect import bisect_left
from collections.abc import Callable
from time import monotonic, perf_counter

logger = logging.getLogger(__name__)

STATS_FILE_VARIABLE = "REALTIME_GC_STATS_FILE"

# Upper bounds (ms) of the pause histogram's buckets; the last bucket holds every longer pause.
BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250)
_BUCKETS_S = tuple(bound / 1000 for bound in BUCKETS_MS)

GENERATIONS = 3
# Why the full collection under way runs (FullCollections sets it around its own): "quiet" or "busy" (waited
# MAX_DEFER); anything else ("other": freeze_startup's, or a gc.collect() elsewhere). Read by PauseStats.
_running_because = "other"


class PauseStats:
    """Per generation: how many collections, their longest and total pause, and a histogram of pauses; fed by
    gc.callbacks (a start and a stop call per collection), with nothing allocated but the clock's float."""

    def __init__(self):
        self.counts = [0] * GENERATIONS
        self.longest = [0.0] * GENERATIONS
        self.total = [0.0] * GENERATIONS
        self.histogram = [[0] * (len(BUCKETS_MS) + 1) for _ in range(GENERATIONS)]
        self.collected = [0] * GENERATIONS
        self.started = 0.0
        self.longest_full: dict[str, float] = {}  # per reason (_running_because), the longest full collection

    def __call__(self, phase: str, info: dict) -> None:
        """gc.callbacks entry: note the start, and account the pause at the stop."""
        if phase == "start":
            self.started = perf_counter()
            return
        pause = perf_counter() - self.started
        generation = info["generation"]
        self.counts[generation] += 1
        self.total[generation] += pause
        self.collected[generation] += info["collected"]
        if pause > self.longest[generation]:
            self.longest[generation] = pause
        self.histogram[generation][bisect_left(_BUCKETS_S, pause)] += 1
        if generation == GENERATIONS - 1 and pause > self.longest_full.get(_running_because, 0.0):
            self.longest_full[_running_because] = pause

    def summary(self) -> dict:
        """The statistics as plain data, pauses in milliseconds."""
        return {
            "buckets_ms": list(BUCKETS_MS),
            "frozen": gc.get_freeze_count(),
            "tracked": len(gc.get_objects()),
            "threshold": list(gc.get_threshold()),
            "longest_full_ms": {why: round(pause * 1000, 3) for why, pause in self.longest_full.items()},
            "generations": [
                {
                    "collections": self.counts[g],
                    "longest_ms": round(self.longest[g] * 1000, 3),
                    "total_ms": round(self.total[g] * 1000, 3),
                    "collected": self.collected[g],
                    "histogram": list(self.histogram[g]),
                }
                for g in range(GENERATIONS)
            ],
        }


def measure_pauses() -> PauseStats:
    """Start measuring every collection's pause in this process."""
    stats = PauseStats()
    gc.callbacks.append(stats)
    return stats


def write_at_exit(stats: PauseStats, path: str) -> None:
    """Write the statistics as JSON to `path` when the process exits normally (SIGTERM stops Daphne's reactor)."""

    def write() -> None:
        with open(path, "w") as handle:
            json.dump(stats.summary(), handle)

    atexit.register(write)


def freeze_startup() -> None:
    """Move everything alive now (the start-up heap) to the permanent generation, which collections skip; a
    collection first, so that start-up's garbage is freed rather than kept frozen for the life of the process."""
    gc.collect()
    gc.freeze()


# Full collections at quiet moments. CPython starts a full collection when generation 1 was collected ten times
# and the objects waiting for one grew by a quarter of those the last one kept: exactly while clients connect by
# the thousand or events come fastest, and with thousands of connections it walks every one of their objects
# (100-400 ms with nothing written). Automatic full collections are turned off, and this timer applies the same
# rule but holds a due collection back while the fan-out is handing out events, until it has been quiet for
# QUIET_FOR or the collection waited MAX_DEFER since found due (which bounds the cyclic garbage of closed
# connections waiting; with the oldest generation counted once per MAX_DEFER while busy, to two MAX_DEFER).
# Connects do not count as busy: holding collections back during a reconnect storm as well was measured and
# changed nothing beyond the run-to-run spread (bench/README.md, "Connects on Daphne and on uvicorn").
CHECK_EVERY = 1.0  # seconds between checks
QUIET_FOR = 0.5  # seconds with nothing handed out
MAX_DEFER = 30.0  # seconds a due full collection may wait for a quiet moment
AUTOMATIC_FULL = 10  # CPython's default third threshold: gen1 collections before a full one is considered
NEVER = 2**31 - 1


class FullCollections:
    """CPython's rule for full collections, run from a timer: one is due once generation 1 was collected
    AUTOMATIC_FULL times since the last and the oldest generation grew by a quarter of what the last one kept; a
    due one runs when `quiet_seconds()` reaches QUIET_FOR, or after waiting MAX_DEFER however busy the fan-out.
    The oldest generation is counted (a list of its objects, itself a short pause) only after a generation-1
    collection moved objects into it since the last count, and then at quiet moments or once per MAX_DEFER while
    the fan-out stays busy."""

    def __init__(self, quiet_seconds: Callable[[], float], clock: Callable[[], float] = monotonic):
        self.quiet_seconds, self.clock = quiet_seconds, clock
        self.due_since: float | None = None  # when the growth rule was found met
        self.counted_at = float("-inf")  # when the oldest generation was last counted, finding too little growth
        self._full_collection_seen()

    def _full_collection_seen(self) -> None:
        """Start over from the latest full collection, whoever ran it."""
        self.full_collections = gc.get_stats()[2]["collections"]
        self.kept = len(gc.get_objects(generation=2))  # what it left in the oldest generation
        self.due_since, self.counted_at = None, float("-inf")
        self.counted_after: int | None = None  # generation-1 collections since the full one, at the last count

    def check(self) -> bool:
        """Run a full collection if one is due and the moment allows; whether it ran."""
        if gc.get_stats()[2]["collections"] != self.full_collections:
            self._full_collection_seen()  # someone called gc.collect(): its count and growth start over
        promotions = gc.get_count()[2]  # generation-1 collections since the last full one
        if promotions < AUTOMATIC_FULL:
            return False
        now = self.clock()
        quiet = self.quiet_seconds() >= QUIET_FOR
        if self.due_since is None:
            if not quiet and now - self.counted_at < MAX_DEFER:
                return False
            if promotions == self.counted_after:
                return False  # only a generation-1 collection adds to the oldest generation: nothing grew since
            if len(gc.get_objects(generation=2)) - self.kept < self.kept // 4:
                self.counted_at, self.counted_after = now, promotions
                return False
            # Found due now, though it may have become due any time since the last count (once per MAX_DEFER while
            # busy): under constant load one can wait up to two MAX_DEFER. Counting it as due since the last count
            # would run it at once, while events flow, instead of giving a quiet moment a chance.
            self.due_since = now
        if not quiet and now - self.due_since < MAX_DEFER:
            return False
        global _running_because
        _running_because = "quiet" if quiet else "busy"
        try:
            gc.collect()
        finally:
            _running_because = "other"
        self._full_collection_seen()
        return True


def defer_full_collections(quiet_seconds: Callable[[], float]) -> FullCollections:
    """Turn automatic full collections off and run them from this event loop at quiet moments instead."""
    threshold0, threshold1, _ = gc.get_threshold()
    gc.set_threshold(threshold0, threshold1, NEVER)
    collections = FullCollections(quiet_seconds)
    loop = asyncio.get_event_loop()

    def tick() -> None:
        try:
            collections.check()
        except Exception:  # never stop the timer: nothing else runs full collections any more
            logger.exception("the timed full garbage collection failed")
        finally:
            loop.call_later(CHECK_EVERY, tick)

    loop.call_later(CHECK_EVERY, tick)
    return collections


def install() -> PauseStats | None:
    """Server start-up: measure pauses when REALTIME_GC_STATS_FILE names a file to write them to."""
    path = os.environ.get(STATS_FILE_VARIABLE)
    if not path:
        return None
    stats = measure_pauses()
    write_at_exit(stats, path)
    return stats
