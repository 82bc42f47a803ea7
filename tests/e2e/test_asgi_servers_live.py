"""The consumer's protocol on a real server of each kind: this project's Daphne (`python -m realtime.server`,
events written by the Daphne writer) and uvicorn (the portable ASGI writer): authentication, snapshot, live
events in order exactly once, `since` replay, unsubscribe, topic "papers", errors and close codes."""

import asyncio
import json
import os
import random

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from realtime.broadcast import broadcast_event
from realtime.events import SystemStatusEvent
from realtime.protocol import CLOSE_AUTHENTICATION_FAILED
from tests.conftest import token_for
from tests.e2e.conftest import SERVERS, running_system
from tests.e2e.test_pipeline_live import request
from tests.realtime.test_consumer import make_paper
from tests.realtime.test_recovery import append_statuses

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT = 10


@pytest.fixture(scope="module", params=SERVERS)
def web_server(request, django_db_setup, django_db_blocker):
    """The web process alone (no pipeline: events are published from the test) on Daphne, then on uvicorn."""
    with running_system(
        redis_url=os.environ["REDIS_URL"], name=f"{request.param}-", only=("daphne",), server=request.param
    ) as system:
        yield system


async def receive(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def authenticated(system, user):
    """A socket authenticated with the user's JWT, subscribed to topic "system" (the test's marker)."""
    ws = await connect(system.ws_url)
    reply = await request(ws, {"type": "authenticate", "token": token_for(user), "id": "auth"})
    assert reply["type"] == "authenticated" and reply["user"]["id"] == user.pk, reply
    assert (await request(ws, {"type": "subscribe", "topic": "system", "id": "sys"}))["type"] == "subscribed"
    return ws


def paper_event(paper_id: str, seq: int, event_type: str = "status_changed") -> dict:
    """A paper event payload as the outbox publishes it (fields beyond the routing ones are opaque here)."""
    return {"event_type": event_type, "paper_id": paper_id, "seq": seq}


async def until_marker(ws) -> list[dict]:
    """Publish a system event of this call's own and collect the paper events that arrive before it: everything
    published earlier was handed out before it. Other system_status events (a periodic broadcast on the same
    Redis) are not the marker and are skipped."""
    marker = random.randrange(10**6, 10**9)
    await broadcast_event(SystemStatusEvent(queue_size=marker, active_workers=0, processing_rate=0, system_load=0))
    received = []
    while (message := await receive(ws)).get("queue_size") != marker:
        if message.get("event_type") != "system_status":
            received.append(message)
    return received


async def test_subscribe_gives_the_snapshot_then_live_events_in_order_exactly_once(web_server, user):
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    await append_statuses(paper.pk, 2)
    ws = await authenticated(web_server, user)
    reply = await request(ws, {"type": "subscribe", "paper_id": paper_id, "id": "p"})
    assert reply["type"] == "subscribed" and reply["snapshot"]["seq"] == 2, reply
    for seq in (3, 4, 5, 5, 4, 6, 7):  # published twice: delivered once
        await broadcast_event(paper_event(paper_id, seq, "progress_updated" if seq % 2 else "status_changed"),
                              owner_id=user.pk)
    assert [event["seq"] for event in await until_marker(ws)] == [3, 4, 5, 6, 7]
    await ws.close()


async def test_since_replays_what_was_missed_then_continues_live(web_server, user):
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    await append_statuses(paper.pk, 4)
    ws = await authenticated(web_server, user)
    reply = await request(ws, {"type": "subscribe", "paper_id": paper_id, "since": 1, "id": "p"})
    assert reply["recovery"] == {"since": 1, "complete": True, "replayed": 3}, reply
    assert [(await receive(ws))["seq"] for _ in range(3)] == [2, 3, 4]
    await broadcast_event(paper_event(paper_id, 5), owner_id=user.pk)
    assert [event["seq"] for event in await until_marker(ws)] == [5]
    await ws.close()


async def test_unsubscribe_stops_the_papers_events(web_server, user):
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    ws = await authenticated(web_server, user)
    assert (await request(ws, {"type": "subscribe", "paper_id": paper_id, "id": "p"}))["type"] == "subscribed"
    reply = await request(ws, {"type": "unsubscribe", "paper_id": paper_id, "id": "u"})
    assert reply == {"type": "unsubscribed", "paper_id": paper_id, "id": "u"}
    await broadcast_event(paper_event(paper_id, 1), owner_id=user.pk)
    assert await until_marker(ws) == []
    again = await request(ws, {"type": "unsubscribe", "paper_id": paper_id, "id": "u2"})
    assert (again["type"], again["code"]) == ("error", "not_subscribed")
    await ws.close()


async def test_topic_papers_brings_the_users_own_papers_only(web_server, user, other_user):
    own, others = await make_paper(user), await make_paper(other_user)
    ws = await authenticated(web_server, user)
    assert (await request(ws, {"type": "subscribe", "topic": "papers", "id": "t"}))["type"] == "subscribed"
    await broadcast_event(paper_event(str(others.pk), 1), owner_id=other_user.pk)
    await broadcast_event(paper_event(str(own.pk), 1), owner_id=user.pk)
    assert [(event["paper_id"], event["seq"]) for event in await until_marker(ws)] == [(str(own.pk), 1)]
    await ws.close()


async def test_invalid_messages_are_answered_with_errors_and_the_connection_stays(web_server, user):
    ws = await connect(web_server.ws_url)
    await ws.send("not json")
    assert (await receive(ws))["code"] == "invalid_json"
    assert (await request(ws, {"type": "bogus", "id": 1}))["code"] == "unknown_type"
    reply = await request(ws, {"type": "subscribe", "topic": "papers", "id": 2})
    assert (reply["type"], reply["code"]) == ("error", "not_authenticated")
    assert (await request(ws, {"type": "ping", "id": 3}))["type"] == "pong"
    await ws.close()


async def test_a_bad_token_is_answered_then_closed_with_4001(web_server):
    ws = await connect(web_server.ws_url)
    reply = await request(ws, {"type": "authenticate", "token": "not-a-token", "id": "a"})
    assert (reply["type"], reply["code"]) == ("error", "authentication_failed")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == CLOSE_AUTHENTICATION_FAILED
