"""Connection lifecycle and abuse limits: auth timeout, token expiry and renewal, revocation, rate and size limits."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from papers.models import Paper, PaperStatus
from realtime.limits import TokenBucket
from realtime.protocol import (
    CLOSE_ACCESS_REVOKED,
    CLOSE_AUTHENTICATION_EXPIRED,
    CLOSE_AUTHENTICATION_TIMEOUT,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_MANY_CONNECTIONS,
)
from tests.conftest import communicator, token_for
from tests.realtime.test_consumer import TIMEOUT, connected, make_paper, send, set_status

pytestmark = pytest.mark.django_db(transaction=True)


async def expect_error_then_close(ws, code: str, close_code: int) -> None:
    error = await ws.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"]) == ("error", code), error
    assert await ws.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": close_code}


def short_token(user, seconds: float) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def test_connection_that_never_authenticates_is_closed(settings):
    settings.WS_AUTH_TIMEOUT = 0.2
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    await expect_error_then_close(ws, "authentication_timeout", CLOSE_AUTHENTICATION_TIMEOUT)


async def test_expiring_token_is_renewed_in_band_and_subscriptions_survive(user, settings):
    settings.WS_REAUTH_NOTICE, settings.WS_AUTH_GRACE = 2.5, 0.5
    paper = await make_paper(user)
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    assert (await send(ws, {"type": "authenticate", "token": short_token(user, 3)}))["type"] == "authenticated"
    await ws.send_json_to({"type": "subscribe", "paper_id": str(paper.pk), "id": "s"})
    first, second = [await ws.receive_json_from(timeout=TIMEOUT) for _ in range(2)]  # reply and notice may race
    notice = first if first["type"] == "reauthenticate" else second
    assert {first["type"], second["type"]} == {"subscribed", "reauthenticate"}
    assert notice["reason"] == "token_expiring"
    renewed = await send(ws, {"type": "authenticate", "token": token_for(user)})
    assert renewed["type"] == "authenticated"
    await asyncio.sleep(4)  # past the old token's expiry and grace: nothing may close the connection now
    await set_status(paper.pk, PaperStatus.QUEUED)
    event = await ws.receive_json_from(timeout=TIMEOUT)
    assert (event["event_type"], event["seq"]) == ("status_changed", 1), "the subscription survived renewal"
    await ws.disconnect()


async def test_expired_token_without_renewal_closes_after_the_grace_period(user, settings):
    settings.WS_REAUTH_NOTICE, settings.WS_AUTH_GRACE = 0.5, 0.3
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    await send(ws, {"type": "authenticate", "token": short_token(user, 1)})
    assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "reauthenticate"
    await expect_error_then_close(ws, "authentication_expired", CLOSE_AUTHENTICATION_EXPIRED)


async def _unanswerable(token):
    raise RuntimeError("database went away")


async def test_an_authentication_the_server_could_not_answer_leaves_the_deadline_in_force(settings, monkeypatch):
    settings.WS_AUTH_TIMEOUT = 0.5
    monkeypatch.setattr("realtime.auth.authenticate_token", _unanswerable)
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    reply = await send(ws, {"type": "authenticate", "token": "any"})
    assert (reply["type"], reply["code"]) == ("error", "internal_error")
    await expect_error_then_close(ws, "authentication_timeout", CLOSE_AUTHENTICATION_TIMEOUT)


async def test_a_renewal_the_server_could_not_answer_leaves_the_expiry_in_force(user, settings, monkeypatch):
    settings.WS_REAUTH_NOTICE, settings.WS_AUTH_GRACE = 0.5, 0.3
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    await send(ws, {"type": "authenticate", "token": short_token(user, 1)})
    assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "reauthenticate"
    monkeypatch.setattr("realtime.auth.authenticate_token", _unanswerable)
    reply = await send(ws, {"type": "authenticate", "token": token_for(user)})
    assert (reply["type"], reply["code"]) == ("error", "internal_error")
    await expect_error_then_close(ws, "authentication_expired", CLOSE_AUTHENTICATION_EXPIRED)


def _deactivate(user) -> None:
    user.is_active = False
    user.save()


async def test_deactivating_a_user_closes_their_connections(user):
    ws = await connected(user)
    await sync_to_async(_deactivate)(user)
    await expect_error_then_close(ws, "access_revoked", CLOSE_ACCESS_REVOKED)


async def test_deleting_a_paper_ends_its_subscriptions(user):
    paper = await make_paper(user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await sync_to_async(Paper.objects.filter(pk=paper.pk).delete)()
    notice = await ws.receive_json_from(timeout=TIMEOUT)
    assert notice == {"type": "unsubscribed", "paper_id": str(paper.pk), "reason": "deleted"}
    await ws.disconnect()


async def test_deleting_a_paper_tells_the_topic_subscribers_who_could_see_it(user, other_user, staff_user):
    paper, others = await make_paper(user), await make_paper(other_user)
    owner_ws, staff_ws, other_ws = await connected(user), await connected(staff_user), await connected(other_user)
    for ws in (owner_ws, staff_ws, other_ws):
        await send(ws, {"type": "subscribe", "topic": "papers"})
    await sync_to_async(Paper.objects.filter(pk=paper.pk).delete)()
    for ws in (owner_ws, staff_ws):
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"type": "paper_deleted", "paper_id": str(paper.pk)}
    # Published after the first: had the other user been told of the first paper, that notice would come first.
    await sync_to_async(Paper.objects.filter(pk=others.pk).delete)()
    assert await other_ws.receive_json_from(timeout=TIMEOUT) == {"type": "paper_deleted", "paper_id": str(others.pk)}
    for ws in (owner_ws, staff_ws, other_ws):
        await ws.disconnect()


def _give(paper_id, owner) -> None:
    paper = Paper.objects.get(pk=paper_id)
    paper.owner = owner
    paper.save()


async def test_losing_access_ends_the_subscription_but_staff_keep_theirs(user, other_user, staff_user):
    paper = await make_paper(user)
    owner_ws, staff_ws = await connected(user), await connected(staff_user)
    for ws in (owner_ws, staff_ws):
        await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await sync_to_async(_give)(paper.pk, other_user)
    notice = await owner_ws.receive_json_from(timeout=TIMEOUT)
    assert notice == {"type": "unsubscribed", "paper_id": str(paper.pk), "reason": "access_changed"}
    await set_status(paper.pk, PaperStatus.QUEUED)
    assert (await staff_ws.receive_json_from(timeout=TIMEOUT))["event_type"] == "status_changed"
    hidden = await send(owner_ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    assert hidden["code"] == "not_found"
    for ws in (owner_ws, staff_ws):
        await ws.disconnect()


async def test_message_rate_limit_answers_errors_then_closes_a_flood(user, settings):
    settings.WS_RATE_LIMIT, settings.WS_RATE_BURST = 0.001, 3
    ws = await connected(user)  # authenticate spends one token
    replies = [await send(ws, {"type": "ping"}) for _ in range(3)]
    assert [r["type"] for r in replies] == ["pong", "pong", "error"]
    assert replies[-1]["code"] == "rate_limited"
    for _ in range(2):  # rejections 2 and 3 of a burst of 3 are still only errors
        assert (await send(ws, {"type": "ping"}))["code"] == "rate_limited"
    await ws.send_json_to({"type": "ping"})  # the fourth rejection in a row closes
    await expect_error_then_close(ws, "rate_limited", CLOSE_RATE_LIMITED)


async def test_subscriptions_per_connection_are_limited(user, settings):
    settings.WS_MAX_SUBSCRIPTIONS = 1
    ws = await connected(user)
    assert (await send(ws, {"type": "subscribe", "topic": "papers"}))["type"] == "subscribed"
    again = await send(ws, {"type": "subscribe", "topic": "papers", "event_types": ["error"]})
    assert again["type"] == "subscribed", "replacing a subscription is not a new one"
    refused = await send(ws, {"type": "subscribe", "topic": "system"})
    assert refused["code"] == "too_many_subscriptions"
    assert (await send(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()


async def test_connections_per_user_are_limited(user, other_user, settings):
    settings.WS_MAX_CONNECTIONS_PER_USER = 1
    first = await connected(user)
    second = communicator()
    await second.connect(timeout=TIMEOUT)
    await second.send_json_to({"type": "authenticate", "token": token_for(user)})
    await expect_error_then_close(second, "too_many_connections", CLOSE_TOO_MANY_CONNECTIONS)
    assert (await send(first, {"type": "ping"}))["type"] == "pong", "the first connection is unaffected"
    other = await connected(other_user)
    await other.disconnect()
    await first.disconnect()


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] = 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] = 100
    assert [bucket.take() for _ in range(3)] == [True, True, False]


async def test_topic_events_are_authorized_one_by_one(user, other_user):
    """Even in a group it should not be in (e.g. briefly, while a refused subscribe is checked), a connection
    on topic "papers" only forwards events of papers its user may see."""
    from realtime.broadcast import layer_message
    from realtime.connection import clients
    from tests.realtime.test_consumer import assert_nothing_pending

    theirs = await make_paper(other_user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "topic": "papers"})
    await send(ws, {"type": "subscribe", "topic": "system"})
    [connection] = clients.of_user(user.pk)
    foreign = {"event_type": "entity_extracted", "paper_id": str(theirs.pk), "seq": 1}
    assert connection.fanout_message(layer_message(foreign, owner_id=other_user.pk)) is None
    await assert_nothing_pending(ws)
    await ws.disconnect()


async def test_a_server_failure_while_handling_a_message_keeps_the_connection(user, monkeypatch):
    from realtime import connection

    async def broken(*args):
        raise RuntimeError("database went away")

    monkeypatch.setattr("realtime.forwarding.visible_paper_state", broken)
    ws = await connected(user)
    reply = await send(ws, {"type": "subscribe", "paper_id": "123e4567-e89b-12d3-a456-426614174000", "id": 9})
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "internal_error", 9)
    assert (await send(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()
    assert connection.clients.count(user.pk) == 0


def _demote(user) -> None:
    user.is_staff = False
    user.save()


async def test_a_demoted_staff_user_loses_other_peoples_papers_at_once(user, staff_user):
    from tests.realtime.test_consumer import assert_nothing_pending

    theirs = await make_paper(user)
    ws = await connected(staff_user)
    await send(ws, {"type": "subscribe", "topic": "papers"})
    await send(ws, {"type": "subscribe", "topic": "system"})
    await send(ws, {"type": "subscribe", "paper_id": str(theirs.pk)})
    await sync_to_async(_demote)(staff_user)
    notice = await ws.receive_json_from(timeout=TIMEOUT)
    assert notice == {"type": "unsubscribed", "paper_id": str(theirs.pk), "reason": "access_changed"}
    await set_status(theirs.pk, PaperStatus.QUEUED)
    await assert_nothing_pending(ws)
    await ws.disconnect()
