"""A client that stops reading, on a real server of each kind (this project's Daphne and uvicorn): progress is
coalesced, memory stays bounded, 4011 ends it, the other connections of the process keep getting events, and
what is queued for it (events, a reply, events) arrives in order."""

import asyncio
import json
import os
import struct

import pytest
from django.core.files.base import ContentFile
from websockets.asyncio.client import connect

from papers.models import Paper
from realtime.broadcast import broadcast_event
from realtime.events import SystemStatusEvent
from realtime.protocol import CLOSE_TOO_SLOW
from tests.conftest import token_for
from tests.e2e import rawws
from tests.e2e.conftest import SERVERS, running_system
from tests.e2e.test_metrics_live import scrape_until
from tests.e2e.test_pipeline_live import request
from tests.realtime.test_recovery import append_statuses

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", params=SERVERS)
def slow_system(request, django_db_setup):
    """The web process with the default heartbeat, on Daphne then on uvicorn: a client that stops reading must
    fall to 4011, not to pings."""
    with running_system(redis_url=os.environ["REDIS_URL"], name=f"slow-{request.param}-", only=("daphne",),
                        server=request.param, WS_PING_INTERVAL="20", WS_PING_TIMEOUT="30") as system:
        yield system


def paper_of(user, title: str) -> Paper:
    paper = Paper(owner=user, title=title)
    paper.file.save(f"{title}.txt", ContentFile(b"text"), save=False)
    paper.save()
    return paper


@pytest.fixture
def owned_paper(django_user_model):
    user = django_user_model.objects.create_user(username="slowpoke", password="pw-slow-123")
    return user, paper_of(user, "slow")


def stalled_subscriber(system, user, paper):
    """Authenticate and subscribe over a raw socket with a tiny receive buffer, then stop reading."""
    port = int(system.base_url.rsplit(":", 1)[1])
    sock = rawws.handshake(port, rcvbuf=4096)
    rawws.send_json(sock, {"type": "authenticate", "token": token_for(user)})
    assert rawws.read_json(sock)["type"] == "authenticated"
    rawws.send_json(sock, {"type": "subscribe", "paper_id": str(paper.pk)})
    assert rawws.read_json(sock)["type"] == "subscribed"
    return sock


async def fast_subscriber(system, user):
    """A client on topic "system" only: it never backs up, and it sees the sentinel published last."""
    ws = await connect(system.ws_url, max_size=None, max_queue=None)
    await request(ws, {"type": "authenticate", "token": token_for(user), "id": "a"})
    await request(ws, {"type": "subscribe", "topic": "system", "id": "s"})
    return ws


async def handed_out(ws) -> None:
    """Publish a sentinel after the payloads and wait for it: each Daphne process reads one Redis
    subscription in order, so every earlier event has been handed to the stalled consumer by then."""
    sentinel = SystemStatusEvent(queue_size=9999, active_workers=0, processing_rate=0, system_load=0)
    await asyncio.to_thread(broadcast_event, sentinel)
    async with asyncio.timeout(60):
        while json.loads(await ws.recv()).get("queue_size") != 9999:
            pass


def publish(payloads: list[dict], owner_id: int) -> None:
    for payload in payloads:
        broadcast_event(payload, owner_id=owner_id)


def read_until_closed(sock) -> tuple[list[dict], int | None, int]:
    """Drain everything the server queued for the socket: messages, the close code, the payload bytes."""
    messages, total = [], 0
    try:
        while True:
            opcode, payload = rawws.read_frame(sock)
            total += len(payload)
            if opcode == 0x8:
                return messages, struct.unpack("!H", payload[:2])[0], total
            if opcode == 0x1:
                messages.append(json.loads(payload))
    except (EOFError, ConnectionResetError, TimeoutError):
        return messages, None, total


async def test_a_client_that_stops_reading_is_closed_with_4011_and_costs_bounded_memory(slow_system, owned_paper):
    user, paper = owned_paper
    read_paper = await asyncio.to_thread(paper_of, user, "read")
    sock = await asyncio.to_thread(stalled_subscriber, slow_system, user, paper)
    observer = await fast_subscriber(slow_system, user)
    reply = await request(observer, {"type": "subscribe", "paper_id": str(read_paper.pk), "id": "r"})
    assert reply["type"] == "subscribed", reply
    pad = "x" * 25_000
    payloads = []
    for seq in range(1, 321):  # 8 MB aimed at a client that reads nothing, each event followed by one for a reader
        payloads.append({"event_type": "entity_extracted", "paper_id": str(paper.pk), "seq": seq, "pad": pad})
        payloads.append({"event_type": "status_changed", "paper_id": str(read_paper.pk), "seq": seq})
    publishing = asyncio.create_task(asyncio.to_thread(publish, payloads, user.pk))
    # The reading client gets every one of its events while the other socket is backed up: the process's
    # fan-out never waits for one connection.
    read = []
    async with asyncio.timeout(60):
        while len(read) < 320:
            if (message := json.loads(await observer.recv())).get("event_type") != "system_status":
                read.append((message["paper_id"], message["seq"]))
    assert read == [(str(read_paper.pk), seq) for seq in range(1, 321)]
    await publishing
    await handed_out(observer)
    messages, code, received = await asyncio.to_thread(read_until_closed, sock)
    assert code == CLOSE_TOO_SLOW, (code, len(messages), slow_system.log_tails())
    assert (messages[-1]["type"], messages[-1]["code"]) == ("error", "too_slow")
    seqs = [m["seq"] for m in messages[:-1]]
    assert seqs == list(range(1, len(seqs) + 1)), "what was sent before closing is in order, without holes"
    # All the server ever held for this client: the 1 MiB cap plus socket buffers, not the 8 MB published.
    assert received < 4 * 1024 * 1024
    await observer.close()
    # Counted as a slow-client close (docs/operations.md, "Metrics"), whatever code the end of the socket had.
    def slow_closes(scraped) -> float:
        return sum(value for (name, labels), value in scraped.samples.items()
                   if name == "paperpipeline_ws_closes_total" and ("reason", "too_slow") in labels)

    scraped = await asyncio.to_thread(scrape_until, slow_system.base_url, slow_closes)
    assert slow_closes(scraped) >= 1, scraped.text


async def test_progress_for_a_stalled_client_is_coalesced_to_the_latest(slow_system, owned_paper):
    user, paper = owned_paper
    sock = await asyncio.to_thread(stalled_subscriber, slow_system, user, paper)
    observer = await fast_subscriber(slow_system, user)
    pad = "x" * 2000  # progress events are small; padding fills the socket buffers sooner
    payloads = [
        {"event_type": "progress_updated", "paper_id": str(paper.pk), "seq": seq, "pad": pad} for seq in range(1, 3001)
    ] + [{"event_type": "status_changed", "paper_id": str(paper.pk), "seq": 3001}]
    await asyncio.to_thread(publish, payloads, user.pk)
    await handed_out(observer)

    def drain() -> list[tuple[str, int]]:
        rawws.send_json(sock, {"type": "ping", "id": "end"})
        seen = []
        while (message := rawws.read_json(sock)).get("id") != "end":
            seen.append((message["event_type"], message["seq"]))
        return seen

    seen = await asyncio.to_thread(drain)
    progress = [seq for kind, seq in seen if kind == "progress_updated"]
    assert seen[-2:] == [("progress_updated", 3000), ("status_changed", 3001)], seen[-3:]
    assert len(progress) < 3000 and progress == sorted(progress), "coalesced, latest wins, order kept"
    sock.close()
    await observer.close()


async def test_events_a_reply_and_events_queued_for_a_backed_up_client_arrive_in_that_order(slow_system, owned_paper):
    user, paper = owned_paper
    replayed = await asyncio.to_thread(paper_of, user, "replayed")
    await append_statuses(replayed.pk, 4)
    sock = await asyncio.to_thread(stalled_subscriber, slow_system, user, paper)
    observer = await fast_subscriber(slow_system, user)
    pad = "x" * 20_000  # 160 KB: the socket backs up, well under the cap
    payloads = [
        {"event_type": "entity_extracted", "paper_id": str(paper.pk), "seq": seq, "pad": pad} for seq in range(1, 9)
    ]
    await asyncio.to_thread(publish, payloads, user.pk)
    await handed_out(observer)
    # Handled after every live event above was handed out: its reply, then the replayed events, are queued
    # behind them.
    subscribe = {"type": "subscribe", "paper_id": str(replayed.pk), "since": 1, "id": "r"}
    await asyncio.to_thread(rawws.send_json, sock, subscribe)

    def read_until_the_last_replayed() -> list[tuple]:
        seen = []
        while not seen or seen[-1] != ("event", str(replayed.pk), 4):
            message = rawws.read_json(sock)
            if "id" in message:
                seen.append(("reply", message["type"]))
            else:
                seen.append(("event", message["paper_id"], message["seq"]))
        return seen

    seen = await asyncio.to_thread(read_until_the_last_replayed)
    assert seen == [("event", str(paper.pk), seq) for seq in range(1, 9)] + [("reply", "subscribed")] + [
        ("event", str(replayed.pk), seq) for seq in (2, 3, 4)
    ], seen
    sock.close()
    await observer.close()
