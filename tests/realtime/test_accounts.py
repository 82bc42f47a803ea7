"""Token checks without a database query per connect: the account facts come from the Redis cache, and every
revocation (deactivation, deletion, password change) still refuses the token at once."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from realtime import accounts, bus
from realtime.broadcast import STAFF_PAPERS_GROUP
from realtime.fanout import fanout
from realtime.protocol import CLOSE_AUTHENTICATION_FAILED
from tests.conftest import token_for
from tests.realtime.test_consumer import TIMEOUT, connected, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_reads(monkeypatch):
    """The user ids whose account the token checks read from the database (the real read, counted)."""
    read = []
    real = accounts._account_from_database

    async def counted(user_id):
        read.append(user_id)
        return await real(user_id)

    monkeypatch.setattr(accounts, "_account_from_database", counted)
    return read


async def authenticate(token: str) -> dict:
    """The reply to one authenticate on a new socket (which is then closed or left to the server's close)."""
    ws = await connected()
    reply = await send(ws, {"type": "authenticate", "token": token})
    if reply["type"] == "authenticated":
        await ws.disconnect()
    else:
        assert await ws.receive_output(timeout=TIMEOUT) == {"type": "websocket.close",
                                                             "code": CLOSE_AUTHENTICATION_FAILED}
    return reply


async def refused_because(token: str) -> str:
    reply = await authenticate(token)
    assert (reply["type"], reply["code"]) == ("error", "authentication_failed"), reply
    return reply["message"]


async def save(user, **fields) -> None:
    for name, value in fields.items():
        setattr(user, name, value)
    await sync_to_async(user.save)()


async def test_connects_after_the_first_need_no_database_query(user, database_reads):
    token = token_for(user)
    for _ in range(3):
        reply = await authenticate(token)
        assert reply["user"] == {"id": user.pk, "username": "alice"}
    assert database_reads == [str(user.pk)]  # the id claim is a string


async def test_a_deactivated_user_is_refused_although_the_account_was_cached(user, database_reads):
    token = token_for(user)
    assert (await authenticate(token))["type"] == "authenticated"
    await save(user, is_active=False)
    assert await refused_because(token) == "The account is inactive."
    await save(user, is_active=True)  # reactivated: the same token is good again, as with JWTAuthentication
    assert (await authenticate(token))["type"] == "authenticated"


async def test_a_deleted_user_is_refused(user):
    token = token_for(user)
    assert (await authenticate(token))["type"] == "authenticated"
    await sync_to_async(user.delete)()
    assert await refused_because(token) == "User not found"


async def test_a_password_change_refuses_older_tokens_and_accepts_new_ones(user):
    old = token_for(user)
    assert (await authenticate(old))["type"] == "authenticated"
    user.set_password("a-new-pw-456")
    await save(user)
    assert await refused_because(old) == "The user's password has been changed."
    assert (await authenticate(token_for(user)))["type"] == "authenticated"


async def test_a_staff_change_is_what_the_next_connect_sees(user):
    token = token_for(user)
    assert (await authenticate(token))["type"] == "authenticated"
    await save(user, is_staff=True)
    ws = await connected()
    await send(ws, {"type": "authenticate", "token": token})
    reply = await send(ws, {"type": "subscribe", "topic": "papers", "id": "t"})
    assert reply["type"] == "subscribed"
    assert len(fanout().members.get(STAFF_PAPERS_GROUP, ())) == 1  # the staff group, not the user's own
    await ws.disconnect()


async def test_a_stale_cached_refusal_is_checked_against_the_database(user, django_user_model, database_reads):
    """A change around the ORM (a bulk update) leaves the cache stale: a refusal is only ever the database's."""
    token = token_for(user)
    await save(user, is_active=False)
    assert await refused_because(token) == "The account is inactive."
    await sync_to_async(django_user_model.objects.filter(pk=user.pk).update)(is_active=True)  # no signal
    assert (await authenticate(token))["type"] == "authenticated"


async def test_an_entry_cached_by_a_read_that_raced_a_change_is_never_used(user, monkeypatch, database_reads):
    """A read fetches the row, the user changes (and the change's increment lands) before the read caches it:
    that entry has the older generation, and the next check reads the database again."""
    counted = accounts._account_from_database

    async def racing(user_id):
        account = await counted(user_id)
        await sync_to_async(accounts.account_changed)(user_id)
        return account

    monkeypatch.setattr(accounts, "_account_from_database", racing)
    await accounts.account_get(user.pk)
    monkeypatch.setattr(accounts, "_account_from_database", counted)
    await accounts.account_get(user.pk)
    await accounts.account_get(user.pk)
    assert [int(i) for i in database_reads] == [user.pk, user.pk]  # the third used the second read's entry


async def test_a_storm_of_lookups_is_answered_from_the_cache_without_a_failure(user, database_reads, caplog):
    """More lookups at once than redis-py lets a pool open (100): one at a time each would fail past the cap."""
    first = await accounts.account_get(user.pk)
    found = await asyncio.gather(*(accounts.account_get(user.pk) for _ in range(500)))
    assert found == [first] * 500
    assert len(database_reads) == 1  # every other one from the cache
    assert not [r for r in caplog.records if r.name == "realtime.accounts"]


async def test_the_lookups_of_one_loop_turn_are_one_round_trip(user, other_user, monkeypatch):
    first = [await accounts.account_get(user.pk), await accounts.account_get(other_user.pk)]
    client, sent = bus.aclient(), []
    real = client.mget

    async def counted(*args, **kwargs):
        sent.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(client, "mget", counted)
    found = await asyncio.gather(*(accounts.account_get(u.pk) for u in [user, other_user] * 50))
    assert found == first * 50
    assert len(sent) == 1  # one MGET for the hundred checks of two users
