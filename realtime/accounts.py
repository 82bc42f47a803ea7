"""What a token check needs to know about an account, without a database query per connect.

An access token carries the user's id and a digest of their password hash; whether the account still exists,
is active, and has that password (and its username and staff flag) lives in the database. Those facts are
cached on the bus's Redis, one entry per user, tagged with the user's *generation*: a counter every committed
save or deletion of the user increments. An entry written under an older generation is ignored, so a reader
that fetched the row just before a change (and cached it just after) cannot bring stale facts back. Entries
also expire after ACCOUNT_CACHE_SECONDS, which bounds what a change made around the ORM (a bulk `update()`)
or one whose increment Redis lost leaves stale. A token the cache would refuse is checked against the
database before it is refused, so a stale entry can never lock a valid token out.
"""

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from redis.exceptions import RedisError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from . import bus
from .background import for_this_loop

logger = logging.getLogger(__name__)

# Seconds a cached account is trusted at most (a change through the ORM invalidates it at once).
ACCOUNT_CACHE_SECONDS = 60


@dataclass(frozen=True)
class Account:
    """The facts of a user a token check and a connection need; `password` is SimpleJWT's digest of the hash."""

    pk: Any
    username: str
    is_active: bool
    is_staff: bool
    password: str


class TokenUser:
    """The user a token-authenticated connection acts for: what the access rule and the connection read of it."""

    is_authenticated = True
    is_anonymous = False
    is_active = True  # only an active account gets one

    def __init__(self, account: Account):
        self.pk, self.username, self.is_staff = account.pk, account.username, account.is_staff

    @property
    def id(self) -> Any:
        return self.pk

    def get_username(self) -> str:
        return self.username


def _account_key(user_id: Any) -> str:
    return bus.key(f"account:{user_id}")


def _generation_key(user_id: Any) -> str:
    return bus.key(f"account-generation:{user_id}")


def account_changed(user_id: Any) -> None:
    """Void the user's cached account (sync: from a signal handler, once the change committed)."""
    try:
        pipe = bus.client().pipeline(transaction=False)
        pipe.incr(_generation_key(user_id))
        pipe.delete(_account_key(user_id))
        pipe.execute()
    except (OSError, RedisError):
        logger.warning("voiding the cached account of user %s failed; it expires on its own", user_id, exc_info=True)


async def account_get(user_id: Any, *, fresh: bool = False) -> Account | None:
    """The user's account facts (None: no such user), from the cache unless `fresh`; cached when read."""
    generation = None
    try:
        generation, cached = await _batch().read(str(user_id))
        if cached is not None and not fresh:
            entry = json.loads(cached)
            if entry["generation"] == _text(generation):
                return Account(**entry["account"]) if entry["account"] else None
    except (OSError, RedisError, ValueError, KeyError, TypeError):
        logger.warning("reading the cached account of user %s failed; asking the database", user_id, exc_info=True)
    account = await _account_from_database(user_id)
    entry = {"generation": _text(generation), "account": asdict(account) if account else None}
    try:
        await bus.aclient().set(_account_key(user_id), json.dumps(entry), ex=ACCOUNT_CACHE_SECONDS)
    except (OSError, RedisError):
        logger.warning("caching the account of user %s failed", user_id, exc_info=True)
    return account


class CacheReads:
    """The cache reads asked for during one turn of the event loop, sent to Redis together as one MGET: a
    reconnect storm's thousands of token checks cost a few round trips, not one (and one pooled connection)
    each; checks of the same user in one turn share the answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiting: dict[str, list[asyncio.Future]] | None = None
        self.sending: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def read(self, user_id: str) -> asyncio.Future:
        """A future of the user's (generation, cached entry), as Redis holds them (None where absent)."""
        future = self.loop.create_future()
        if self.waiting is None:
            self.waiting = {}
            self.loop.call_soon(self._send)  # once every task ready in this turn has asked
        self.waiting.setdefault(user_id, []).append(future)
        return future

    def _send(self) -> None:
        waiting, self.waiting = self.waiting, None
        task = self.loop.create_task(self._mget(waiting))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _mget(self, waiting: dict[str, list[asyncio.Future]]) -> None:
        users = list(waiting)
        try:
            values = await bus.aclient().mget([key for user in users for key in (_generation_key(user),
                                                                                  _account_key(user))])
        except Exception as error:  # each reader gets it, and asks the database
            self._fail(waiting, error)
            return
        except asyncio.CancelledError:  # the loop is closing
            self._fail(waiting, RedisError("cache read cancelled"))
            raise
        for index, user in enumerate(users):
            for future in waiting[user]:
                if not future.done():  # its reader may have gone (the connection closed meanwhile)
                    future.set_result((values[2 * index], values[2 * index + 1]))


    @staticmethod
    def _fail(waiting: dict[str, list[asyncio.Future]], error: Exception) -> None:
        for future in (future for futures in waiting.values() for future in futures):
            if not future.done():
                future.set_exception(error)


_batches: dict[asyncio.AbstractEventLoop, CacheReads] = {}


def _batch() -> CacheReads:
    """This event loop's batcher of cache reads."""
    return for_this_loop(_batches, lambda: CacheReads(asyncio.get_running_loop()))


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _account_from_database_sync(user_id: Any) -> Account | None:
    """The account's facts as the database has them now."""
    model = get_user_model()
    row = model._default_manager.filter(**{api_settings.USER_ID_FIELD: user_id}).values(
        "pk", model.USERNAME_FIELD, "is_active", "is_staff", "password").first()
    if row is None:
        return None
    return Account(pk=row["pk"], username=row[model.USERNAME_FIELD], is_active=row["is_active"],
                   is_staff=row["is_staff"], password=get_md5_hash_password(row["password"]))


# On Channels' one sync thread, as realtime/snapshots.py says why.
_account_from_database = database_sync_to_async(_account_from_database_sync)
