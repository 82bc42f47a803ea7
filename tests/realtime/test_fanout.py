"""The process's fan-out on the session's real Redis: one pub/sub connection, and no half-made subscription."""

import asyncio
import random
import time
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from papers.models import PaperStatus
from realtime import bus
from realtime.broadcast import broadcast_control, paper_group
from realtime.fanout import Fanout, fanout
from realtime.protocol import CLOSE_AUTHENTICATION_TIMEOUT
from tests.conftest import communicator, token_for
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
    await instance.aclose()


def failing_once(command, channel_part: str):
    """Wrap PubSub.subscribe (or unsubscribe) so its first call for a channel containing channel_part fails as a
    lost Redis would."""
    failed = []

    async def command_or_fail(*channels):
        if not failed and channel_part in channels[0]:
            failed.append(channels)
            raise redis.ConnectionError("Connection reset by peer (simulated)")
        return await command(*channels)

    return command_or_fail


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
    fresh_fanout.pubsub.subscribe = failing_once(fresh_fanout.pubsub.subscribe, bus.channel("rollback"))
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
    shared.pubsub.subscribe = failing_once(shared.pubsub.subscribe, bus.channel(paper_group(paper_id)))
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


def subscriber_counts(channels: list[str], expected: list[int]) -> list[int]:
    """Poll Redis's subscriber counts of some channels until they are as expected (Redis has no event for it)."""
    client = redis.Redis.from_url(settings.REALTIME_REDIS_URL)
    deadline = time.monotonic() + TIMEOUT
    while (counts := [count for _, count in client.pubsub_numsub(*channels)]) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    client.close()
    return counts


async def test_after_losing_its_connection_the_reader_reconnects_once_with_the_groups_that_have_members(
    fresh_fanout,
):
    kept, left = Recorder(), Recorder()
    await fresh_fanout.join("reconnect.kept", kept)
    await fresh_fanout.join("reconnect.left", left)
    # A leave whose UNSUBSCRIBE fails, as with Redis away, is logged; its channel stays subscribed until then.
    unsubscribe = fresh_fanout.pubsub.unsubscribe
    fresh_fanout.pubsub.unsubscribe = failing_once(unsubscribe, bus.channel("reconnect.left"))
    await fresh_fanout.leave("reconnect.left", left)
    fresh_fanout.pubsub.unsubscribe = unsubscribe
    channels = [bus.channel("reconnect.kept"), bus.channel("reconnect.left")]
    assert await asyncio.to_thread(subscriber_counts, channels, [1, 1]) == [1, 1]

    host, port = fresh_fanout.pubsub.connection._writer.get_extra_info("sockname")[:2]
    killer = aioredis.Redis.from_url(settings.REALTIME_REDIS_URL)
    assert await killer.client_kill_filter(addr=f"{host}:{port}") == 1  # Redis drops the fan-out's connection
    await killer.aclose()

    # One connection again (a second one would count twice), without the group nobody is in any more.
    assert await asyncio.to_thread(subscriber_counts, channels, [1, 0]) == [1, 0]
    await broadcast_control("reconnect.kept", {"type": "test.ping"})
    async with asyncio.timeout(TIMEOUT):
        await kept.arrived.wait()
    assert kept.messages == [{"type": "test.ping"}] and left.messages == []


async def test_interleaved_joins_and_leaves_keep_redis_subscribed_to_exactly_the_groups_with_members(fresh_fanout):
    rng = random.Random(9)
    groups = [f"churn.{i}" for i in range(4)]
    members = [Recorder() for _ in range(16)]

    async def churn(member: Recorder) -> None:
        for _ in range(40):
            group = rng.choice(groups)
            await (fresh_fanout.join if rng.random() < 0.5 else fresh_fanout.leave)(group, member)

    await asyncio.gather(*(churn(member) for member in members))
    # And at the end, concurrently: everyone leaves one group, and someone joins another.
    await asyncio.gather(*(fresh_fanout.leave("churn.0", member) for member in members),
                         fresh_fanout.join("churn.1", members[0]))
    channels = [bus.channel(group) for group in groups]
    expected = [1 if group in fresh_fanout.members else 0 for group in groups]
    assert expected[:2] == [0, 1]
    assert await asyncio.to_thread(subscriber_counts, channels, expected) == expected
    assert all(fresh_fanout.members.values()), "no group is kept without members"


async def test_a_topic_subscription_whose_subscribe_failed_is_not_kept(user):
    ws = await connected(user)
    shared = fanout()
    shared.pubsub.subscribe = failing_once(shared.pubsub.subscribe, bus.channel(f"user.{user.pk}"))
    try:
        reply = await send(ws, {"type": "subscribe", "topic": "papers", "id": "s"})
    finally:
        del shared.pubsub.subscribe
    assert (reply["type"], reply["code"]) == ("error", "internal_error"), reply
    reply = await send(ws, {"type": "unsubscribe", "topic": "papers", "id": "u"})
    assert (reply["type"], reply.get("code")) == ("error", "not_subscribed"), reply
    await ws.disconnect()


async def test_a_connection_whose_revocation_group_cannot_be_joined_stays_unauthenticated(user):
    ws = await connected()
    shared = fanout()
    shared.pubsub.subscribe = failing_once(shared.pubsub.subscribe, bus.channel(f"conn.user.{user.pk}"))
    try:
        reply = await send(ws, {"type": "authenticate", "token": token_for(user), "id": "a"})
    finally:
        del shared.pubsub.subscribe
    assert (reply["type"], reply["code"]) == ("error", "internal_error"), reply
    # Outside the group that carries revocation it must not act for the user.
    reply = await send(ws, {"type": "subscribe", "topic": "papers", "id": "s"})
    assert (reply["type"], reply["code"]) == ("error", "not_authenticated"), reply
    reply = await send(ws, {"type": "authenticate", "token": token_for(user), "id": "a2"})
    assert reply["type"] == "authenticated", reply
    await ws.disconnect()


async def test_a_session_socket_whose_logout_group_cannot_be_joined_is_not_authenticated_by_it(user, settings):
    from tests.realtime.test_access import session_cookie
    from tests.realtime.test_lifecycle import expect_error_then_close

    settings.WS_AUTH_TIMEOUT = 1.0
    cookie = await session_cookie(user)
    shared = fanout()
    shared.pubsub.subscribe = failing_once(shared.pubsub.subscribe, bus.channel("conn.session."))
    ws = communicator(headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    try:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        error = await ws.receive_json_from(timeout=TIMEOUT)
    finally:
        del shared.pubsub.subscribe
    assert (error["type"], error["code"]) == ("error", "internal_error"), error
    # A logout could not close it, so the session does not speak for it: it must authenticate itself.
    reply = await send(ws, {"type": "subscribe", "topic": "papers", "id": "s"})
    assert (reply["type"], reply["code"]) == ("error", "not_authenticated"), reply
    # ... under the deadline every unauthenticated connection has.
    await expect_error_then_close(ws, "authentication_timeout", CLOSE_AUTHENTICATION_TIMEOUT)


async def test_the_fan_out_is_quiet_until_it_hands_out_a_batch_and_busy_right_after():
    """realtime.gctune holds full collections back while quiet_seconds() is short: it must follow the batches."""
    from realtime.fanout import quiet_seconds
    from realtime.gctune import QUIET_FOR

    member = Recorder()
    await fanout().join("quiet.check", member)
    try:
        handed_before = fanout().last_batch_at
        await broadcast_control("quiet.check", {"type": "test.ping"})
        async with asyncio.timeout(TIMEOUT):
            await member.arrived.wait()
        assert fanout().last_batch_at > handed_before
        assert quiet_seconds() < QUIET_FOR
    finally:
        await fanout().leave("quiet.check", member)
