"""What a paper subscription starts with costs one query: the snapshot, and with `since` the replay, at once; and
the subscribes of one loop turn share it, each reader let through by the one access rule."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from papers import services
from papers.models import Paper, PaperEvent
from realtime import snapshots
from realtime.events import StatusEvent
from realtime.snapshots import _paper_state_sync, visible_paper_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(user, text_upload):
    """A paper of `user` whose log holds seqs 1..6."""
    paper = Paper.objects.create(owner=user, title="p", file=text_upload)
    for i in range(6 - paper.events.count()):
        services.paper_event_append(paper=paper, event=StatusEvent(
            paper_id=paper.pk, old_status="processing", new_status="processing", message=str(i)))
    assert list(paper.events.values_list("seq", flat=True)) == [1, 2, 3, 4, 5, 6]
    return paper


def test_a_subscribe_without_since_is_one_query(user, paper, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _paper_state_sync(str(paper.pk), None, 100)
    assert found.snapshot["seq"] == 6 and found.missed == [] and found.recovery is None


def test_a_resume_is_one_query_with_the_missed_events_in_order(user, paper, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _paper_state_sync(str(paper.pk), 2, 100)
    logged = list(PaperEvent.objects.filter(paper=paper, seq__gt=2).order_by("seq").values_list("payload", flat=True))
    assert found.missed == logged and [e["seq"] for e in found.missed] == [3, 4, 5, 6]
    assert found.recovery == {"since": 2, "complete": True, "replayed": 4}
    assert found.snapshot["seq"] == 6 and found.owner_id == user.pk


@pytest.mark.parametrize(("since", "limit", "recovery"), [
    (6, 100, {"since": 6, "complete": True, "replayed": 0}),
    (9, 100, {"since": 9, "complete": False, "replayed": 0, "reason": "unknown_seq"}),
    (1, 4, {"since": 1, "complete": False, "replayed": 0, "reason": "too_many"}),
    (2, 4, {"since": 2, "complete": True, "replayed": 4}),
])
def test_every_recovery_outcome_is_one_query(user, paper, since, limit, recovery, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _paper_state_sync(str(paper.pk), since, limit)
    assert found.recovery == recovery
    assert len(found.missed) == recovery["replayed"]


def test_a_pruned_log_is_reported_in_the_same_query(user, paper, django_assert_num_queries):
    PaperEvent.objects.filter(paper=paper, seq__lte=4).delete()
    with django_assert_num_queries(1):
        found = _paper_state_sync(str(paper.pk), 2, 100)
    assert found.recovery == {"since": 2, "complete": False, "replayed": 0, "reason": "pruned",
                              "first_available_seq": 5}
    assert found.missed == []


def test_a_missing_paper_is_none_in_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert _paper_state_sync("5f0c7c52-8f7e-4a53-9d4e-3c1c6f4a9b10", 2, 100) is None


@pytest.fixture
def state_reads(monkeypatch):
    """The (paper, since, limit) of each database read the batched subscribes made (the real read, counted)."""
    reads = []
    real = snapshots.paper_state

    async def counted(*key):
        reads.append(key)
        return await real(*key)

    monkeypatch.setattr(snapshots, "paper_state", counted)
    return reads


@pytest.mark.django_db(transaction=True)
async def test_the_subscribes_of_one_turn_share_one_read_and_each_reader_is_checked(
        user, other_user, staff_user, text_upload, state_reads):
    paper = await sync_to_async(Paper.objects.create)(owner=user, title="p", file=text_upload)
    readers = [user] * 50 + [other_user, staff_user]
    found = await asyncio.gather(*(visible_paper_state(reader, str(paper.pk), None, 100) for reader in readers))
    assert state_reads == [(str(paper.pk), None, 100)]
    assert found[-2] is None, "not the other user's paper: answered like a missing one"
    assert all(state is found[0] for state in found[:50] + [found[-1]]) and found[0].owner_id == user.pk
    resumed = await asyncio.gather(*(visible_paper_state(user, str(paper.pk), since, 100) for since in (0, 0, None)))
    assert len(state_reads) == 3  # one read per (paper, since)
    assert resumed[0] is resumed[1] and resumed[0].recovery is not None and resumed[2].recovery is None


@pytest.mark.django_db(transaction=True)
async def test_subscribes_asked_while_the_same_read_runs_share_the_next_one(user, text_upload, monkeypatch):
    """A storm's subscribes arrive over many loop turns: those that come while a read runs wait for it to end and
    then share one read, sent after all of them joined; never one query each."""
    paper = await sync_to_async(Paper.objects.create)(owner=user, title="p", file=text_upload)
    reads, first_read_started, first_read_may_end = [], asyncio.Event(), asyncio.Event()
    real = snapshots.paper_state

    async def gated(*key):
        reads.append(key)
        if len(reads) == 1:
            first_read_started.set()
            await first_read_may_end.wait()
        return await real(*key)

    monkeypatch.setattr(snapshots, "paper_state", gated)
    first = asyncio.ensure_future(visible_paper_state(user, str(paper.pk), None, 100))
    await asyncio.wait_for(first_read_started.wait(), 10)
    later = []
    for _ in range(20):  # one subscribe per loop turn, as a storm's arrive
        later.append(asyncio.ensure_future(visible_paper_state(user, str(paper.pk), None, 100)))
        await asyncio.sleep(0)
    assert len(reads) == 1, "nothing is sent while the same read runs"
    first_read_may_end.set()
    found = await asyncio.gather(first, *later)
    assert len(reads) == 2
    assert all(state is found[1] for state in found[1:]) and found[0].owner_id == user.pk


async def read_and_queue_one(monkeypatch):
    """StateReads with one read running (held until `may_end` is set; it finds nothing) and one reader queued
    behind it; the keys each read was sent with."""
    keys, started, may_end = [], asyncio.Event(), asyncio.Event()

    async def held(*key):
        keys.append(key)
        started.set()
        await may_end.wait()

    monkeypatch.setattr(snapshots, "paper_state", held)
    reads = snapshots.StateReads(asyncio.get_running_loop())
    first = reads.read(None, "p", None, 100)
    await asyncio.wait_for(started.wait(), 10)
    queued = reads.read(None, "p", None, 100)
    await asyncio.sleep(0)  # the turn ends: the second read is queued behind the running one
    assert reads.queued
    return reads, first, queued, may_end, keys


async def test_a_cancelled_read_cancels_its_readers_and_the_queued_ones_instead_of_leaving_them_waiting(monkeypatch):
    reads, first, queued, _, _ = await read_and_queue_one(monkeypatch)
    for task in list(reads.reading):
        task.cancel()
    await asyncio.gather(*reads.reading, return_exceptions=True)
    assert first.cancelled() and queued.cancelled()
    assert not reads.reading and not reads.running and not reads.queued


async def test_no_read_is_sent_for_readers_that_all_went_away_while_they_waited(monkeypatch):
    reads, first, gone, may_end, keys = await read_and_queue_one(monkeypatch)
    gone.cancel()  # its subscribe was cancelled: the connection closed
    may_end.set()
    assert await first is None
    await asyncio.gather(*reads.reading)
    assert keys == [("p", None, 100)], "the queued read had no reader left"
    assert not reads.running and not reads.queued
