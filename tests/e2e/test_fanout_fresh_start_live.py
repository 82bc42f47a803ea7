"""Many clients subscribing at once to a freshly started Daphne: one Redis pub/sub connection, no event lost.

Daphne's fan-out opens its Redis connection on the first subscription. When that first subscription comes
from many consumers at once, each of them must still end up on the one connection the process reads.
"""

import asyncio
import json
import time

import pytest
import redis
from django.core.files.base import ContentFile
from websockets.asyncio.client import connect

from paperpipeline.redis_server import start_redis_server
from papers.models import Paper
from realtime import bus
from realtime.broadcast import broadcast_event, paper_group
from tests.conftest import token_for
from tests.e2e.conftest import running_system

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STARTS = 6
CLIENTS = 10
EVENTS = 10
WAIT = 5  # seconds for what takes milliseconds when it works; a lost subscription waits this out


@pytest.fixture
def crowd(django_user_model):
    """Distinct users (staff, so each may follow the paper), and one paper of the first one."""
    users = [
        django_user_model.objects.create_user(username=f"crowd{i}", password="pw-crowd-123", is_staff=True)
        for i in range(CLIENTS)
    ]
    paper = Paper(owner=users[0], title="crowded")
    paper.file.save("crowded.txt", ContentFile(b"text"), save=False)
    paper.save()
    return users, paper


async def subscribe(ws_url: str, user, paper_id: str):
    """Connect, then authenticate and subscribe in one go; return the socket once `subscribed` arrived."""
    ws = await connect(ws_url)
    await ws.send(json.dumps({"type": "authenticate", "token": token_for(user), "id": "a"}))
    await ws.send(json.dumps({"type": "subscribe", "paper_id": paper_id, "id": "s"}))
    async with asyncio.timeout(WAIT * 2):
        replies = {}
        while "s" not in replies:
            reply = json.loads(await ws.recv())
            replies[reply.get("id")] = reply
    assert replies["a"]["type"] == "authenticated", replies
    assert replies["s"]["type"] == "subscribed", replies
    return ws


async def events_received(ws, paper_id: str) -> int:
    """How many of the published events this client receives (within WAIT)."""
    seqs = []
    try:
        async with asyncio.timeout(WAIT):
            while len(seqs) < EVENTS:
                message = json.loads(await ws.recv())
                if message.get("paper_id") == paper_id and "seq" in message:
                    seqs.append(message["seq"])
    except TimeoutError:
        pass
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    return len(seqs)


def pubsub_connections(client: redis.Redis) -> int:
    """Connections subscribed to at least one channel or pattern: only Daphne's fan-out subscribes here."""
    return sum(1 for c in client.client_list() if int(c["sub"]) + int(c["psub"]) > 0)


def until_subscribed(client: redis.Redis, channel: str) -> int:
    """Poll until Redis processed the SUBSCRIBE for the paper (it has no event to await); its subscriber count.

    The `subscribed` reply follows the SUBSCRIBE sent to Redis, not Redis's confirmation of it."""
    deadline = time.monotonic() + WAIT
    while not (count := client.pubsub_numsub(channel)[0][1]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


async def one_fresh_start(tmp_path, index: int, users, paper, monkeypatch) -> dict:
    """Start Redis and Daphne afresh, subscribe every client at once, publish, and report what happened."""
    redis_process, url = start_redis_server(workdir=tmp_path / f"redis-{index}")
    client = redis.Redis.from_url(url)
    # broadcast_event publishes on the bus's pooled client: point it at this start's Redis.
    monkeypatch.setattr(bus, "_client", client)
    paper_id = str(paper.pk)
    channel = bus.channel(paper_group(paper_id))
    try:
        with running_system(redis_url=url, name=f"fanout{index}-", only=("daphne",)) as system:
            sockets = await asyncio.gather(*(subscribe(system.ws_url, user, paper_id) for user in users))
            subscribers = await asyncio.to_thread(until_subscribed, client, channel)
            payloads = [
                {"event_type": "entity_extracted", "paper_id": paper_id, "seq": seq} for seq in range(1, EVENTS + 1)
            ]
            await asyncio.to_thread(lambda: [broadcast_event(p, owner_id=users[0].pk) for p in payloads])
            received = await asyncio.gather(*(events_received(ws, paper_id) for ws in sockets))
            connections = await asyncio.to_thread(pubsub_connections, client)
            await asyncio.gather(*(ws.close() for ws in sockets))
            return {"received": received, "pubsub_connections": connections, "paper_subscribers": subscribers}
    finally:
        client.close()
        redis_process.terminate()
        redis_process.wait(timeout=10)


async def test_concurrent_first_subscribers_share_one_connection_and_get_every_event(crowd, tmp_path, monkeypatch):
    users, paper = crowd
    runs = [await one_fresh_start(tmp_path, index, users, paper, monkeypatch) for index in range(STARTS)]
    expected = {"received": [EVENTS] * CLIENTS, "pubsub_connections": 1, "paper_subscribers": 1}
    assert runs == [expected] * STARTS, "\n".join(f"start {i + 1}: {run}" for i, run in enumerate(runs))
