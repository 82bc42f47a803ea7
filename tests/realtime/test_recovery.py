"""Offline recovery: subscribe with `since` replays the log in order, then continues live, with no gap or duplicate."""

import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from papers import selectors, services
from papers.models import Paper, PaperEvent, PaperStatus
from realtime.events import StatusEvent, utc_now
from tests.papers.test_result_fields import FOUND_ENTITIES, FOUND_RELATIONSHIPS
from tests.realtime.test_consumer import TIMEOUT, connected, make_paper, send, set_status
from tests.schemas import assert_wire_event

pytestmark = pytest.mark.django_db(transaction=True)


def _append_statuses(paper_id, count: int, start: threading.Event | None = None) -> None:
    """Append `count` events to a paper's log through the outbox, as a worker would."""
    if start is not None:
        start.wait()
    try:
        paper = Paper.objects.get(pk=paper_id)
        for i in range(count):
            services.paper_event_append(
                paper=paper,
                event=StatusEvent(paper_id=paper.pk, old_status="processing", new_status="processing", message=f"{i}"),
            )
    finally:
        connection.close()


append_statuses = sync_to_async(_append_statuses)


async def receive_until_seq(ws, last: int) -> list[dict]:
    events = []
    while not events or events[-1]["seq"] < last:
        events.append(await ws.receive_json_from(timeout=TIMEOUT))
    return events


async def test_since_replays_missed_events_then_continues_live(user):
    paper = await make_paper(user)
    await append_statuses(paper.pk, 6)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 2, "id": "r"})
    assert reply["recovery"] == {"since": 2, "complete": True, "replayed": 4}
    assert reply["snapshot"]["seq"] == 6
    replayed = [await ws.receive_json_from(timeout=TIMEOUT) for _ in range(4)]
    assert [e["seq"] for e in replayed] == [3, 4, 5, 6]
    for event in replayed:
        assert_wire_event(event)
    logged = await sync_to_async(list)(PaperEvent.objects.filter(seq__gt=2).order_by("seq"))
    assert replayed == [e.payload for e in logged]
    await set_status(paper.pk, PaperStatus.QUEUED)
    assert (await ws.receive_json_from(timeout=TIMEOUT))["seq"] == 7
    await ws.disconnect()


async def test_since_at_the_latest_seq_replays_nothing(user):
    paper = await make_paper(user)
    await append_statuses(paper.pk, 3)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 3})
    assert reply["recovery"] == {"since": 3, "complete": True, "replayed": 0}
    await set_status(paper.pk, PaperStatus.QUEUED)
    assert (await ws.receive_json_from(timeout=TIMEOUT))["seq"] == 4
    await ws.disconnect()


async def test_resume_while_events_are_being_published_has_no_gap_and_no_duplicate(user):
    paper = await make_paper(user)
    await append_statuses(paper.pk, 20)
    ws = await connected(user)
    start = threading.Event()
    # A thread of its own (not sync_to_async's shared one), so the writer really races the subscribe.
    writer = asyncio.ensure_future(asyncio.to_thread(_append_statuses, paper.pk, 200, start))
    start.set()
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 10})
    assert reply["recovery"]["complete"] is True
    events = await receive_until_seq(ws, 220)
    await writer
    assert [e["seq"] for e in events] == list(range(11, 221))
    await ws.disconnect()


async def test_replay_honours_the_event_types_filter(user):
    paper = await make_paper(user)
    await set_status(paper.pk, PaperStatus.QUEUED)
    await sync_to_async(services.paper_fail)(
        paper_id=paper.pk, task_id="t", step="text_extraction", error_code="unreadable_pdf", error_message="bad"
    )
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 0, "event_types": ["error"]})
    event = await ws.receive_json_from(timeout=TIMEOUT)
    assert (event["event_type"], event["seq"]) == ("error", 2)
    await ws.disconnect()


def _prune_all(paper_id) -> int:
    paper = Paper.objects.get(pk=paper_id)
    paper.status = PaperStatus.COMPLETED
    paper.save()
    Paper.objects.filter(pk=paper_id).update(updated_at=utc_now() - timedelta(days=30))
    return services.paper_events_prune()


async def test_pruned_log_says_recovery_is_incomplete_and_seqs_continue(user):
    paper = await make_paper(user)
    await append_statuses(paper.pk, 5)
    assert await sync_to_async(_prune_all)(paper.pk) == 5  # the newest event (seq 6) is kept
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 2})
    assert reply["recovery"] == {
        "since": 2, "complete": False, "replayed": 0, "reason": "pruned", "first_available_seq": 6,
    }
    assert reply["snapshot"]["status"] == "completed" and reply["snapshot"]["seq"] == 6
    await set_status(paper.pk, PaperStatus.QUEUED)
    assert (await ws.receive_json_from(timeout=TIMEOUT))["seq"] == 7
    await ws.disconnect()


async def test_since_beyond_the_log_is_reported(user):
    paper = await make_paper(user)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 99})
    assert reply["recovery"] == {"since": 99, "complete": False, "replayed": 0, "reason": "unknown_seq"}
    await ws.disconnect()


@pytest.mark.parametrize("since", [-1, "3", 1.5, True])
async def test_invalid_since_is_an_error(user, since):
    paper = await make_paper(user)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": since})
    assert (reply["type"], reply["code"]) == ("error", "invalid_message")
    await ws.disconnect()


def test_retention_keeps_active_and_recent_papers(user, text_upload):
    active = Paper.objects.create(owner=user, file=text_upload, title="active")
    recent = Paper.objects.create(owner=user, file=text_upload, title="recent")
    for paper in (active, recent):
        _append_statuses(paper.pk, 3)
    Paper.objects.filter(pk=active.pk).update(status=PaperStatus.PROCESSING, updated_at=utc_now() - timedelta(days=30))
    Paper.objects.filter(pk=recent.pk).update(status=PaperStatus.COMPLETED, updated_at=utc_now() - timedelta(days=6))
    assert services.paper_events_prune() == 0
    assert services.paper_events_prune(now=utc_now() + timedelta(days=2)) == 2  # recent is now 8 days final
    assert list(PaperEvent.objects.filter(paper=recent).values_list("seq", flat=True)) == [3]


def _process(paper_id, task_id) -> None:
    """Run the pipeline on a paper, as a worker would, in a thread of its own."""
    try:
        services.paper_process(paper_id=paper_id, task_id=task_id)
    finally:
        connection.close()


async def test_live_replayed_and_api_extraction_events_are_identical(user, api, settings, monkeypatch):
    settings.PAPER_ENTITY_EXTRACTOR = "tests.papers.test_result_fields.found_entities"
    settings.PAPER_RELATIONSHIP_EXTRACTOR = "tests.papers.test_result_fields.found_relationships"
    monkeypatch.setattr("papers.tasks.process_paper.apply_async", lambda **kw: None)  # run below instead
    paper = await sync_to_async(services.paper_enqueue)(paper=await make_paper(user))
    live_ws = await connected(user)
    start = (await send(live_ws, {"type": "subscribe", "paper_id": str(paper.pk)}))["snapshot"]["seq"]
    await asyncio.to_thread(_process, paper.pk, paper.task_id)
    last = await sync_to_async(selectors.paper_last_seq)(paper_id=paper.pk)
    live = await receive_until_seq(live_ws, last)

    replay_ws = await connected(user)
    reply = await send(replay_ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": start})
    assert reply["recovery"]["complete"] is True
    replayed = await receive_until_seq(replay_ws, last)
    from_api = (await sync_to_async(api.get)(f"/api/papers/{paper.pk}/events/?since={start}")).json()["events"]

    assert live == replayed == from_api
    extracted = [e for e in live if e["event_type"] in ("entity_extracted", "relationship_extracted")]
    assert len(extracted) == len(FOUND_ENTITIES) + len(FOUND_RELATIONSHIPS)
    novanet = next(e for e in extracted if e.get("entity_name") == "NovaNet")
    assert (novanet["mentions"], novanet["salience"], novanet["key"], novanet["signals"]) == (
        7, 0.9123, True, ["title", "proposed"]
    )
    assert {(e["metric"], e["score"]) for e in extracted if e["event_type"] == "relationship_extracted"} == {
        ("F1", "91.2"), (None, "88.0%"), ("F1", None), (None, None)
    }
    for event in live:
        assert_wire_event(event)
    await live_ws.disconnect()
    await replay_ws.disconnect()
