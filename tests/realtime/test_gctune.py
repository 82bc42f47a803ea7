"""realtime.gctune: every collection's pause is counted per generation, the start-up heap is frozen, and the
statistics reach the file REALTIME_GC_STATS_FILE names when the process exits."""

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from realtime import gctune

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def stats():
    measured = gctune.measure_pauses()
    yield measured
    gc.callbacks.remove(measured)


@pytest.mark.parametrize("generation", [0, 1, 2])
def test_a_collection_is_counted_with_its_pause(stats, generation):
    before = list(stats.counts)
    gc.collect(generation)
    assert stats.counts[generation] == before[generation] + 1
    assert stats.longest[generation] >= 0
    assert stats.total[generation] >= stats.longest[generation]
    assert sum(stats.histogram[generation]) == stats.counts[generation]


def test_a_pause_lands_in_its_histogram_bucket(stats):
    stats("start", {"generation": 2, "collected": 0, "uncollectable": 0})
    stats.started -= 0.030  # a 30 ms collection, without waiting one out
    stats("stop", {"generation": 2, "collected": 5, "uncollectable": 0})
    assert stats.counts[2] == 1 and stats.collected[2] == 5
    assert stats.longest[2] >= 0.030
    assert stats.histogram[2][gctune.BUCKETS_MS.index(50)] == 1, "between 25 and 50 ms"
    summary = stats.summary()["generations"][2]
    assert summary["collections"] == 1 and summary["longest_ms"] >= 30


def test_freezing_moves_what_is_alive_out_of_the_collectors_generations():
    assert gc.get_freeze_count() == 0
    try:
        gctune.freeze_startup()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        gc.unfreeze()


def test_the_statistics_are_written_at_exit_only_when_asked(tmp_path):
    path = tmp_path / "gc.json"
    script = "import gc; from realtime import gctune; gctune.install(); gctune.freeze_startup(); gc.collect()"
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, env={"REALTIME_GC_STATS_FILE": str(path)})
    written = json.loads(path.read_text())
    assert written["frozen"] > 0
    assert written["generations"][2]["collections"] == 2  # freeze_startup's collection and the script's
    assert written["buckets_ms"] == list(gctune.BUCKETS_MS)
    assert gctune.install() is None, "no file named here: nothing measured"


class Moment:
    """A clock and a fan-out quietness the test sets."""

    def __init__(self):
        self.now, self.quiet = 1000.0, 0.0


@pytest.fixture
def full(stats):
    """FullCollections over a test-set moment, with generation 1 collected ten times since the last full one, and
    CPython's automatic full collections off (as defer_full_collections sets them)."""
    threshold = gc.get_threshold()
    gc.set_threshold(threshold[0], threshold[1], gctune.NEVER)
    moment = Moment()
    collections = gctune.FullCollections(lambda: moment.quiet, clock=lambda: moment.now)
    for _ in range(gctune.AUTOMATIC_FULL):
        gc.collect(1)
    yield collections, moment
    gc.set_threshold(*threshold)


def grow_oldest_generation(collections) -> list:
    """Long-lived objects, a quarter more than the last full collection kept (as new connections bring)."""
    kept = [[] for _ in range(collections.kept // 4 + 1000)]
    gc.collect(1)  # into the oldest generation
    return kept


def test_no_full_collection_while_the_oldest_generation_grew_by_less_than_a_quarter(stats, full):
    collections, moment = full
    before = stats.counts[2]
    moment.quiet = gctune.QUIET_FOR
    assert not collections.check() and stats.counts[2] == before, "CPython's own rule would not run it either"


def test_a_due_full_collection_waits_while_the_fan_out_is_busy_and_runs_once_it_is_quiet(stats, full):
    collections, moment = full
    grown = grow_oldest_generation(collections)
    before = stats.counts[2]
    assert not collections.check() and stats.counts[2] == before, "busy: nothing walks every object"
    moment.now += 5
    moment.quiet = gctune.QUIET_FOR
    assert collections.check() and stats.counts[2] == before + 1
    assert collections.kept >= len(grown)
    assert "quiet" in stats.summary()["longest_full_ms"] and "busy" not in stats.longest_full
    assert not collections.check(), "nothing due right after one"


def test_a_busy_process_still_collects_once_a_due_collection_waited_max_defer(stats, full):
    collections, moment = full
    grown = grow_oldest_generation(collections)
    before = stats.counts[2]
    assert not collections.check()
    moment.now += gctune.MAX_DEFER
    assert collections.check() and stats.counts[2] == before + 1
    assert collections.kept >= len(grown)
    assert "busy" in stats.longest_full, "a pause while events flow is reported as such"


def test_while_busy_the_oldest_generation_is_counted_once_per_max_defer(full, monkeypatch):
    collections, moment = full
    counted = []
    real = gc.get_objects
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: counted.append(generation) or real(generation))
    for _ in range(5):
        assert not collections.check(), "too little grew"
        moment.now += gctune.CHECK_EVERY
    assert counted == [2], "listing every object is itself a pause: not every second while events flow"
    moment.quiet = gctune.QUIET_FOR
    gc.collect(1)  # objects moved into the oldest generation since that count
    assert not collections.check()
    assert counted == [2, 2], "at a quiet moment it may"


def test_the_oldest_generation_is_counted_again_only_after_objects_moved_into_it(full, monkeypatch):
    collections, moment = full
    moment.quiet = gctune.QUIET_FOR
    counted = []
    real = gc.get_objects
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: counted.append(generation) or real(generation))
    gc.disable()  # no automatic collection between the checks: only the test moves objects along
    try:
        for _ in range(3):
            assert not collections.check(), "too little grew"
            moment.now += gctune.CHECK_EVERY
        assert counted == [2], "an idle server with thousands connected does not list their objects every second"
        gc.collect(1)
        assert not collections.check()
        assert counted == [2, 2], "a generation-1 collection may have grown it: counted again"
    finally:
        gc.enable()


def test_a_full_collection_run_by_someone_else_starts_the_count_over(stats, full):
    collections, moment = full
    grow_kept = grow_oldest_generation(collections)
    assert not collections.check() and collections.due_since is not None
    gc.collect()
    moment.now += gctune.MAX_DEFER
    before = stats.counts[2]
    assert not collections.check() and stats.counts[2] == before, "nothing due after that collection"
    assert collections.due_since is None and collections.kept >= len(grow_kept)


def test_deferring_turns_the_automatic_full_collections_off(monkeypatch):
    threshold = gc.get_threshold()
    scheduled = []
    monkeypatch.setattr(gctune.asyncio, "get_event_loop", lambda: type("Loop", (), {
        "call_later": lambda self, delay, callback: scheduled.append((delay, callback))})())
    try:
        collections = gctune.defer_full_collections(lambda: 0.0)
        assert gc.get_threshold() == (threshold[0], threshold[1], gctune.NEVER)
        assert scheduled and scheduled[0][0] == gctune.CHECK_EVERY
        monkeypatch.setattr(collections, "check", lambda: 1 / 0)
        scheduled[0][1]()
        assert len(scheduled) == 2, "a failed check must not stop the timer: nothing else runs full collections"
    finally:
        gc.set_threshold(*threshold)
