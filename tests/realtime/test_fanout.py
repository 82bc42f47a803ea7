"""The process's fan-out on the session's real Redis: one pub/sub connection, and no half-made subscription."""

import asyncio
from typing import Any

import pytest
import redis

from papers.models import PaperStatus
from realtime.broadcast import broadcast_control, paper_group
from realtime.fanout import Fanout, fanout
from tests.realtime.test_consumer import TIMEOUT, connected, make_paper, send, set_status

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A fan-out member that records what it is handed."""

    def __init__(self):
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def fanout_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.arrived.set()

    def hold_writes(self) -> None:
        pass

    def release_writes(self) -> None:
        pass


@pytest.fixture
async def fresh_fanout():
    """A fan-out of its own, as a freshly started Daphne has: no connection to Redis yet."""
    instance = Fanout()
    yield instance
    if instance.reader is not None:
        instance.reader.cancel()
    await instance.pubsub.aclose()
    await instance.redis.aclose()


def failing_once(subscribe, channel_suffix: str):
    """Wrap PubSub.subscribe so the first SUBSCRIBE to one channel fails as a lost Redis would."""
    failed = []

    async def subscribe_or_fail(*channels):
        if not failed and channels[0].endswith(channel_suffix):
            failed.append(channels)
            raise redis.ConnectionError("Connection reset by peer (simulated)")
        return await subscribe(*channels)

    return subscribe_or_fail


async def test_concurrent_first_joins_open_one_connection_and_every_member_is_fed(fresh_fanout):
    opened = []
    pool = fresh_fanout.redis.connection_pool
    get_connection = pool.get_connection

    async def counted(*args, **kwargs):
        opened.append(args)
        return await get_connection(*args, **kwargs)

    pool.get_connection = counted
    members = {f"crowd.{i}": Recorder() for i in range(20)}
    shared = [Recorder() for _ in range(20)]
    await asyncio.gather(
        *(fresh_fanout.join(group, member) for group, member in members.items()),
        *(fresh_fanout.join("crowd.shared", member) for member in shared),
    )
    assert len(opened) == 1, "every first subscriber shares the process's one pub/sub connection"

    await asyncio.gather(*(broadcast_control(group, {"type": "test.ping"}) for group in [*members, "crowd.shared"]))
    everyone = [*members.values(), *shared]
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(*(member.arrived.wait() for member in everyone))
    assert all(member.messages == [{"type": "test.ping"}] for member in everyone)


async def test_a_failed_subscribe_registers_nobody_and_the_next_join_subscribes(fresh_fanout):
    first, second = Recorder(), Recorder()
    fresh_fanout.pubsub.subscribe = failing_once(fresh_fanout.pubsub.subscribe, "__group__rollback")
    with pytest.raises(redis.ConnectionError):
        await fresh_fanout.join("rollback", first)
    assert "rollback" not in fresh_fanout.members, "no member, no group left as if it were subscribed"

    await fresh_fanout.join("rollback", second)
    await broadcast_control("rollback", {"type": "test.ping"})
    async with asyncio.timeout(TIMEOUT):
        await second.arrived.wait()
    assert first.messages == [] and second.messages == [{"type": "test.ping"}]


async def test_a_subscription_whose_subscribe_failed_is_answered_and_the_next_client_gets_events(user):
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    unlucky, lucky = await connected(user), await connected(user)
    shared = fanout()
    shared.pubsub.subscribe = failing_once(shared.pubsub.subscribe, paper_group(paper_id))
    try:
        reply = await send(unlucky, {"type": "subscribe", "paper_id": paper_id, "id": "s"})
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "internal_error", "s"), reply
        assert paper_group(paper_id) not in shared.members
        reply = await send(lucky, {"type": "subscribe", "paper_id": paper_id, "id": "s"})
        assert reply["type"] == "subscribed", reply
    finally:
        del shared.pubsub.subscribe  # the instance attribute; the class's method again
    await set_status(paper.pk, PaperStatus.QUEUED)
    event = await lucky.receive_json_from(timeout=TIMEOUT)
    assert (event["event_type"], event["paper_id"], event["seq"]) == ("status_changed", paper_id, 1)
    await unlucky.disconnect()
    await lucky.disconnect()
