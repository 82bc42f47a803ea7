"""The realtime bus's contract: channel names, encoding, publishing from sync and async code, and the fan-out
reading exactly what publishers send, on the session's real Redis."""

import asyncio
import logging
import time
import uuid
from typing import Any

import msgpack
import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from paperpipeline.redis_server import free_port
from realtime import broadcast, bus
from realtime.broadcast import broadcast_event, layer_message, paper_group, target_groups
from realtime.fanout import Fanout
from tests.realtime.test_consumer import TIMEOUT
from tests.realtime.test_fanout import Recorder, subscriber_counts

SENTINEL_CHANNEL = "test-bus-sentinel"


def paper_payload(seq: int = 1) -> dict[str, Any]:
    """A paper event's wire payload of a paper nobody else uses, with text that JSON would escape."""
    return {"event_type": "entity_extracted", "paper_id": str(uuid.uuid4()), "seq": seq,
            "entity_name": 'the "quoted" \\ name ✓'}


def test_a_message_round_trips_and_its_text_travels_unescaped():
    message = layer_message(paper_payload(), owner_id=3)
    data = bus.encode(message)
    assert bus.decode(data) == message
    # The client JSON is carried as it is: no second layer of escaping to pay for on each side.
    assert message["text"].encode() in data


@pytest.mark.parametrize("data", [
    b"\xc1",  # never valid MessagePack
    msgpack.packb({"type": "x"}) + b"\x00",  # trailing bytes
    msgpack.packb(["type", "x"]),  # not a mapping
    msgpack.packb({"text": "no type"}),
    b'{"type": "x"}',  # JSON, not the bus's encoding
])
def test_decode_refuses_what_is_not_a_bus_message(data):
    with pytest.raises(ValueError):
        bus.decode(data)


def test_a_groups_channel_carries_the_bus_prefix_and_maps_back_to_the_group():
    group = paper_group(uuid.uuid4())
    assert bus.channel(group) == f"{settings.REALTIME_BUS_PREFIX}:{group}"
    assert bus.group_of(bus.channel(group).encode()) == group
    assert bus.group_of(bus.channel(group)) == group
    with pytest.raises(ValueError):
        bus.group_of(f"asgi__group__{group}")  # channels_redis's naming is not the bus's


async def test_sync_and_async_publishing_send_on_the_bus_channel_of_each_target_group_and_nowhere_else():
    """Both publishing paths put a message on exactly `bus.channel(group)` for each of its groups, encoded by
    the bus: a publisher that named channels any other way (channels_redis's, say) would fail here."""
    listener = aioredis.Redis.from_url(settings.REALTIME_REDIS_URL)
    pubsub = listener.pubsub()
    await pubsub.psubscribe("*")
    async with asyncio.timeout(TIMEOUT):
        while (confirmation := await pubsub.get_message(timeout=TIMEOUT)) is None:
            pass
    assert confirmation["type"] == "psubscribe"

    sync_payload, async_payload = paper_payload(1), paper_payload(2)
    before = time.time()
    await asyncio.to_thread(broadcast_event, sync_payload, owner_id=7)  # no loop in that thread: the sync path
    await broadcast_event(async_payload, owner_id=7)  # the running loop's path
    await listener.publish(SENTINEL_CHANNEL, b"end")  # Redis delivers in order: all of ours came before it

    markers = {sync_payload["paper_id"], async_payload["paper_id"]}
    received = []
    async with asyncio.timeout(TIMEOUT):
        while (message := await pubsub.get_message(timeout=TIMEOUT)) is None or (
            message["channel"] != SENTINEL_CHANNEL.encode()
        ):
            if message is not None and any(marker.encode() in message["data"] for marker in markers):
                received.append((message["channel"].decode(), bus.decode(message["data"])))
    await pubsub.aclose()
    await listener.aclose()

    # Each message carries its publish time (for the delivery latency metric), the rest is the layer message.
    for _channel, message in received:
        assert before <= message.pop("published_at") <= time.time(), message
    expected = [
        (bus.channel(group), layer_message(payload, owner_id=7))
        for payload in (sync_payload, async_payload)
        for group in target_groups(payload, 7)
    ]
    assert received == expected


@pytest.fixture
async def fresh_fanout():
    """A fan-out of its own, closed (reader cancelled, connection closed) at the end."""
    instance = Fanout()
    yield instance
    await instance.aclose()
    assert instance.reader is None


def without_prepared(message: dict[str, Any]) -> dict[str, Any]:
    """A delivered message as it was published: without the frame the fan-out adds."""
    return {key: value for key, value in message.items() if key != "prepared"}


async def test_a_fanout_member_gets_what_sync_and_async_publishers_send(fresh_fanout):
    sync_payload, async_payload = paper_payload(1), paper_payload(2)
    group = paper_group(sync_payload["paper_id"])
    async_payload["paper_id"] = sync_payload["paper_id"]
    member = Recorder()
    await fresh_fanout.join(group, member)
    assert set(fresh_fanout.pubsub.channels) == {bus.channel(group).encode()}, "it reads the bus's channel"
    assert await asyncio.to_thread(subscriber_counts, [bus.channel(group)], [1]) == [1]

    await asyncio.to_thread(broadcast_event, sync_payload, owner_id=7)
    await broadcast_event(async_payload, owner_id=7)
    async with asyncio.timeout(TIMEOUT):
        while len(member.messages) < 2:
            member.arrived.clear()
            await member.arrived.wait()
    assert [without_prepared(message) for message in member.messages] == [
        layer_message(sync_payload, owner_id=7), layer_message(async_payload, owner_id=7)
    ]


async def test_a_stray_message_on_a_bus_channel_is_dropped_and_the_reader_goes_on(fresh_fanout, caplog):
    member = Recorder()
    await fresh_fanout.join("stray", member)
    assert await asyncio.to_thread(subscriber_counts, [bus.channel("stray")], [1]) == [1]
    publisher = aioredis.Redis.from_url(settings.REALTIME_REDIS_URL)
    await publisher.publish(bus.channel("stray"), b"not msgpack \xc1")
    await publisher.aclose()
    await broadcast.broadcast_control("stray", {"type": "test.ping"})
    async with asyncio.timeout(TIMEOUT):
        await member.arrived.wait()
    assert member.messages == [{"type": "test.ping"}]
    assert "not a bus message" in caplog.text


async def test_aclose_cancels_the_reader_and_closes_the_connection():
    instance = Fanout()
    await instance.join("closing", Recorder())
    reader = instance.reader
    await instance.aclose()
    assert reader.cancelled() and instance.reader is None
    assert not instance.pubsub.connection or not instance.pubsub.connection.is_connected


def dead_redis_url() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_a_failed_sync_publish_is_logged_never_raised(monkeypatch, caplog):
    monkeypatch.setattr(bus, "_client", redis.Redis.from_url(dead_redis_url(), socket_connect_timeout=1))
    with caplog.at_level(logging.WARNING, logger="realtime.bus"):
        broadcast_event(paper_payload(), owner_id=1)
    assert "publishing entity_extracted failed" in caplog.text


async def test_a_failed_async_publish_is_logged_never_raised_and_its_task_is_kept_until_done(monkeypatch, caplog):
    dead = aioredis.Redis.from_url(dead_redis_url(), socket_connect_timeout=1)
    monkeypatch.setattr(bus, "_async_client", lambda: dead)
    with caplog.at_level(logging.WARNING, logger="realtime.bus"):
        task = broadcast_event(paper_payload(), owner_id=1)
        assert task in broadcast._pending, "a running task is referenced until it is done"
        await task
    assert task not in broadcast._pending
    assert "publishing entity_extracted failed" in caplog.text
    await dead.aclose()


async def test_closing_the_loops_publishing_client_closes_its_connections_and_the_next_publish_opens_anew():
    await bus.apublish(["closing"], {"type": "test.ping"})
    client = bus._async_client()
    pooled = list(client.connection_pool._available_connections)
    assert [connection.is_connected for connection in pooled] == [True], "the publish left a pooled connection"
    await bus.aclose()
    assert [connection.is_connected for connection in pooled] == [False]
    assert bus._async_client() is not client
    await bus.apublish(["closing"], {"type": "test.ping"})
