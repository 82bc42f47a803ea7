"""Consumer tests through the full ASGI stack on the real Redis (the realtime bus) of the test session."""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from papers import services
from papers.models import Paper, PaperStatus
from realtime.broadcast import broadcast_event
from realtime.events import SystemStatusEvent
from realtime.protocol import CLOSE_AUTHENTICATION_FAILED
from tests.conftest import SAMPLE_TEXT, communicator, token_for
from tests.schemas import assert_wire_event

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


def _paper(owner, title="p") -> Paper:
    from django.core.files.base import ContentFile

    paper = Paper(owner=owner, title=title)
    paper.file.save("p.txt", ContentFile(SAMPLE_TEXT.encode()), save=False)
    paper.save()
    return paper


def _set_status(paper_id, status: str) -> None:
    paper = Paper.objects.get(pk=paper_id)
    paper.status = status
    paper.save()


make_paper = sync_to_async(_paper)
set_status = sync_to_async(_set_status)


async def send(ws, message) -> dict:
    await ws.send_json_to(message)
    return await ws.receive_json_from(timeout=TIMEOUT)


async def assert_nothing_pending(ws) -> None:
    """Publish a sentinel on topic "system" (the test subscribed to it); it must be the next message.

    Redis delivers in publish order, so anything wrongly sent before the sentinel would arrive first.
    """
    await broadcast_event(SystemStatusEvent(queue_size=4242, active_workers=0, processing_rate=0, system_load=0))
    message = await ws.receive_json_from(timeout=TIMEOUT)
    assert message.get("queue_size") == 4242, message


async def connected(user=None):
    ws = communicator()
    ok, _ = await ws.connect(timeout=TIMEOUT)
    assert ok
    if user is not None:
        reply = await send(ws, {"type": "authenticate", "token": token_for(user), "id": "auth"})
        assert reply["type"] == "authenticated" and reply["id"] == "auth", reply
    return ws


async def test_authenticate_with_jwt(user):
    ws = await connected()
    reply = await send(ws, {"type": "authenticate", "token": token_for(user)})
    assert reply["type"] == "authenticated"
    assert reply["user"] == {"id": user.pk, "username": "alice"}
    assert reply["expires_at"].endswith("Z")
    await ws.disconnect()


async def test_bad_token_is_answered_then_closed_with_4001():
    ws = await connected()
    reply = await send(ws, {"type": "authenticate", "token": "not-a-jwt"})
    assert reply["type"] == "error" and reply["code"] == "authentication_failed"
    closed = await ws.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": CLOSE_AUTHENTICATION_FAILED}


async def test_subscribe_before_authenticating_is_an_error_and_the_connection_stays_open(user):
    ws = await connected()
    reply = await send(ws, {"type": "subscribe", "topic": "papers", "id": 7})
    assert reply == {"type": "error", "code": "not_authenticated", "message": reply["message"], "id": 7}
    assert (await send(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()


async def test_django_session_authenticates_a_browser(user):
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    ws = communicator(headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    assert (await ws.connect(timeout=TIMEOUT))[0]
    reply = await send(ws, {"type": "subscribe", "topic": "papers"})
    assert reply == {"type": "subscribed", "topic": "papers", "event_types": None}
    await ws.disconnect()


async def test_foreign_origin_is_refused_and_missing_origin_allowed():
    foreign = communicator(headers=[(b"origin", b"http://evil.example")])
    assert not (await foreign.connect(timeout=TIMEOUT))[0]
    script = communicator(headers=[(b"user-agent", b"script")])
    assert (await script.connect(timeout=TIMEOUT))[0]
    await script.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": 5}', "unknown_type"),
        ('{"type": "ping", "id": {"x": 1}}', "invalid_message"),
        ('{"type": "subscribe", "paper_id": "nope"}', "invalid_message"),
        ('{"type": "subscribe", "paper_id": 12}', "invalid_message"),
        ('{"type": "subscribe"}', "invalid_message"),
        ('{"type": "subscribe", "topic": "weather"}', "invalid_message"),
        ('{"type": "subscribe", "topic": "papers", "event_types": []}', "invalid_message"),
        ('{"type": "subscribe", "topic": "papers", "event_types": ["gossip"]}', "invalid_message"),
        ('{"type": "unsubscribe", "topic": "system"}', "not_subscribed"),
        ('{"type": "authenticate"}', "invalid_message"),
    ],
)
async def test_invalid_messages_get_an_error_and_the_connection_stays_open(user, frame, code):
    ws = await connected(user)
    await ws.send_to(text_data=frame)
    reply = await ws.receive_json_from(timeout=TIMEOUT)
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["message"]
    assert (await send(ws, {"type": "ping", "id": "still-there"}))["id"] == "still-there"
    await ws.disconnect()


async def test_binary_frame_is_an_error(user):
    ws = await connected(user)
    await ws.send_to(bytes_data=b"\x00\x01")
    reply = await ws.receive_json_from(timeout=TIMEOUT)
    assert reply["code"] == "invalid_message"
    await ws.disconnect()


async def test_subscribe_to_own_paper_gets_snapshot_then_live_events(user):
    paper = await make_paper(user)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "id": "s1"})
    assert reply["type"] == "subscribed" and reply["paper_id"] == str(paper.pk) and reply["id"] == "s1"
    assert reply["snapshot"]["status"] == "uploaded" and reply["snapshot"]["seq"] == 0
    await set_status(paper.pk, PaperStatus.QUEUED)
    event = await ws.receive_json_from(timeout=TIMEOUT)
    assert_wire_event(event)
    assert (event["event_type"], event["new_status"], event["seq"]) == ("status_changed", "queued", 1)
    await ws.disconnect()


async def test_someone_elses_paper_answers_exactly_like_a_missing_one(user, other_user):
    theirs = await make_paper(other_user)
    ws = await connected(user)
    hidden = await send(ws, {"type": "subscribe", "paper_id": str(theirs.pk), "id": 1})
    missing = await send(ws, {"type": "subscribe", "paper_id": str(uuid.uuid4()), "id": 1})
    assert hidden == missing == {"type": "error", "code": "not_found", "message": "No such paper.", "id": 1}
    await ws.disconnect()


async def test_event_types_filter(user):
    paper = await make_paper(user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "event_types": ["error"]})
    await send(ws, {"type": "subscribe", "topic": "system"})
    await set_status(paper.pk, PaperStatus.PROCESSING)  # filtered out
    await sync_to_async(services.paper_fail)(
        paper_id=paper.pk, task_id="t-1", step="text_extraction", error_code="unreadable_pdf", error_message="bad"
    )
    event = await ws.receive_json_from(timeout=TIMEOUT)
    assert event["event_type"] == "error" and event["details"] == {"step": "text_extraction", "task_id": "t-1"}
    await assert_nothing_pending(ws)  # the failed status_changed is filtered too
    await ws.disconnect()


async def test_topic_papers_carries_own_papers_only(user, other_user):
    mine, theirs = await make_paper(user), await make_paper(other_user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "topic": "papers"})
    await set_status(theirs.pk, PaperStatus.QUEUED)
    await set_status(mine.pk, PaperStatus.QUEUED)
    event = await ws.receive_json_from(timeout=TIMEOUT)
    # Published in this order on one connection: had theirs leaked, it would have arrived first.
    assert event["paper_id"] == str(mine.pk)
    await ws.disconnect()


async def test_staff_topic_papers_carries_every_paper(user, staff_user):
    paper = await make_paper(user)
    ws = await connected(staff_user)
    await send(ws, {"type": "subscribe", "topic": "papers"})
    await set_status(paper.pk, PaperStatus.QUEUED)
    assert (await ws.receive_json_from(timeout=TIMEOUT))["paper_id"] == str(paper.pk)
    await ws.disconnect()


async def test_paper_and_topic_subscriptions_deliver_each_event_once(user):
    paper = await make_paper(user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "topic": "papers"})
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await send(ws, {"type": "subscribe", "topic": "system"})
    await set_status(paper.pk, PaperStatus.QUEUED)
    await set_status(paper.pk, PaperStatus.PROCESSING)
    seqs = [(await ws.receive_json_from(timeout=TIMEOUT))["seq"] for _ in range(2)]
    assert seqs == [1, 2]
    await assert_nothing_pending(ws)
    await ws.disconnect()


async def test_unsubscribe_stops_events(user):
    paper, other = await make_paper(user), await make_paper(user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await send(ws, {"type": "subscribe", "paper_id": str(other.pk)})
    reply = await send(ws, {"type": "unsubscribe", "paper_id": str(paper.pk)})
    assert reply == {"type": "unsubscribed", "paper_id": str(paper.pk)}
    await set_status(paper.pk, PaperStatus.QUEUED)
    await set_status(other.pk, PaperStatus.QUEUED)
    assert (await ws.receive_json_from(timeout=TIMEOUT))["paper_id"] == str(other.pk)
    await ws.disconnect()


async def test_system_topic_receives_system_status(user):
    ws = await connected(user)
    assert (await send(ws, {"type": "subscribe", "topic": "system"}))["type"] == "subscribed"
    await broadcast_event(SystemStatusEvent(queue_size=2, active_workers=1, processing_rate=0.5, system_load=0.1))
    event = await ws.receive_json_from(timeout=TIMEOUT)
    assert_wire_event(event)
    assert event["queue_size"] == 2
    await ws.disconnect()


async def test_sync_publisher_reaches_async_subscribers_through_redis(user):
    """broadcast_event from sync code (Celery, signals) reaches the fan-out through the bus's channels."""
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "topic": "system"})
    event = SystemStatusEvent(queue_size=9, active_workers=0, processing_rate=0.0, system_load=0.0)
    await asyncio.get_running_loop().run_in_executor(None, broadcast_event, event)
    assert json.loads(await ws.receive_from(timeout=TIMEOUT))["queue_size"] == 9
    await ws.disconnect()
