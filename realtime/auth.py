"""Who a connection is: the JWT check, the user it acts for, and the clock of its authentication.

The user is counted in the registry and joins the groups through which revocation closes the connection; the
clock holds the deadline to authenticate, the notice before a token expires and the close after its grace."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings

from . import accounts, connection, limits
from .accounts import TokenUser
from .background import BackgroundTasks, Timer
from .broadcast import session_connections_group, user_connections_group
from .events import format_timestamp, utc_now
from .fanout import fanout
from .protocol import (
    CLOSE_AUTHENTICATION_EXPIRED,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_AUTHENTICATION_TIMEOUT,
    ProtocolError,
)


async def authenticate_token(token: str) -> tuple[TokenUser, int | None]:
    """Validate a SimpleJWT access token; return the active user it speaks for and its expiry (epoch seconds).

    The signature, expiry and type need no query, and the account's facts come from realtime.accounts' cache;
    JWTAuthentication.get_user's checks (the user exists, is active, and the token's password digest is the
    current one) are made on them, and a refusal only on the database's word."""
    try:
        validated = JWTStatelessUserAuthentication().get_validated_token(token)
        user_id = validated[api_settings.USER_ID_CLAIM]
    except (InvalidToken, TokenError, KeyError) as exc:
        raise _failed(_auth_failure_message(exc) if not isinstance(exc, KeyError)
                      else "Token contained no recognizable user identification") from exc
    account = await accounts.account_get(user_id)
    if _refusal(account, validated) is not None:
        account = await accounts.account_get(user_id, fresh=True)  # the cache may lag a change: ask the database
        if (reason := _refusal(account, validated)) is not None:
            raise _failed(reason)
    return TokenUser(account), validated.get("exp")


def _refusal(account: accounts.Account | None, validated) -> str | None:
    """Why this account may not use this token (JWTAuthentication.get_user's checks), or None."""
    if account is None:
        return "User not found"
    if not account.is_active:
        return "The account is inactive."
    if api_settings.CHECK_REVOKE_TOKEN and validated.get(api_settings.REVOKE_TOKEN_CLAIM) != account.password:
        return "The user's password has been changed."
    return None


def _failed(message: str) -> ProtocolError:
    return ProtocolError("authentication_failed", message, close=CLOSE_AUTHENTICATION_FAILED)


def _auth_failure_message(exc: Exception) -> str:
    """A short reason for a rejected token, without the library's nested detail structure."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict) and detail.get("messages"):
        return str(detail["messages"][0].get("message", detail.get("detail")))
    if isinstance(detail, dict):
        return str(detail.get("detail", exc))
    return str(detail or exc)


def expiry_time(exp: int) -> datetime:
    """A token's `exp` claim as an aware datetime."""
    return datetime.fromtimestamp(exp, tz=UTC)


class AuthClock:
    """The deadlines of one connection's authentication: to authenticate at all, and to renew its token."""

    def __init__(self, tasks: BackgroundTasks):
        self.deadline, self.notice = Timer(tasks), Timer(tasks)
        self.close_at: datetime | None = None

    def await_authentication(self, timeout: float, on_timeout: Callable[[], Awaitable[None]]) -> None:
        """Call on_timeout unless the connection authenticates within timeout seconds."""
        self.deadline.start(timeout, on_timeout)

    def watch_expiry(
        self, expires_at: datetime, *, notice: float, grace: float,
        on_notice: Callable[[], Awaitable[None]], on_expired: Callable[[], Awaitable[None]],
    ) -> None:
        """Ask for a new token `notice` seconds before expiry; call on_expired `grace` seconds after it."""
        remaining = (expires_at - utc_now()).total_seconds()
        self.close_at = expires_at + timedelta(seconds=grace)
        self.notice.start(remaining - notice, on_notice)
        self.deadline.start(remaining + grace, on_expired)

    def hold(self) -> None:
        """Fire no deadline while a token is being checked; resume() re-arms it if the check ends unanswered."""
        self.deadline.pause()

    def resume(self) -> None:
        """Re-arm the deadline hold() held back, at its original time."""
        self.deadline.resume()

    def expired(self) -> bool:
        """Whether the grace period after the token's expiry is over (a renewal moves it)."""
        return self.close_at is not None and utc_now() >= self.close_at

    def stop(self) -> None:
        """No deadline applies any more: a token is being checked, a session authenticated, or the socket closed."""
        self.deadline.cancel()
        self.notice.cancel()
        self.close_at = None


class Identity:
    """The user one connection acts for: counted in the registry under it, and a member of the groups through
    which a deactivation, a password change or a logout closes the connection."""

    def __init__(self, member, address, tasks: BackgroundTasks, *,
                 send: Callable[[dict], Awaitable[None]], fail: Callable[[ProtocolError], Awaitable[None]]):
        self.member, self.address = member, address
        self.send, self.fail = send, fail  # the consumer's: a message to the client, and an error that closes
        self.user = None
        self.session_group: str | None = None
        self.clock = AuthClock(tasks)

    def wait_for_token(self) -> None:
        """Count the connection as unauthenticated (or refuse it over the caps) and start its deadline."""
        limits.admit_unauthenticated(connection.clients, self.address, self.member)
        self.clock.await_authentication(settings.WS_AUTH_TIMEOUT, self._timed_out)

    async def authenticate(self, token: str, become: Callable[[Any], Awaitable[None]]) -> tuple[Any, datetime | None]:
        """Check a token, act for its user through `become`, and watch the token's expiry; return the user and
        when the token expires. A bad token raises (and closes); a check the server could not answer leaves
        the deadline that applied before in force."""
        self.clock.hold()  # no timeout or expiry fires while the token is checked
        try:
            user, expires = await authenticate_token(token)
            await become(user)
        except ProtocolError:
            raise
        except BaseException:
            if self.user is None:
                self.clock.await_authentication(settings.WS_AUTH_TIMEOUT, self._timed_out)
            else:
                self.clock.resume()
            raise
        expires_at = expiry_time(expires) if expires else None
        if expires_at is not None:
            self.clock.watch_expiry(expires_at, notice=settings.WS_REAUTH_NOTICE, grace=settings.WS_AUTH_GRACE,
                                    on_notice=self._ask_for_new_token, on_expired=self._expired)
        return user, expires_at

    async def _ask_for_new_token(self) -> None:
        close_at = format_timestamp(self.clock.close_at)
        await self.send({"type": "reauthenticate", "reason": "token_expiring", "close_at": close_at})

    async def _expired(self) -> None:
        if self.clock.expired():  # else renewed meanwhile
            await self.fail(ProtocolError("authentication_expired", "The access token expired; authenticate again.",
                                          close=CLOSE_AUTHENTICATION_EXPIRED))

    async def _timed_out(self) -> None:
        if self.user is None:  # else authenticated meanwhile
            await self.fail(ProtocolError("authentication_timeout", "No authentication in time.",
                                          close=CLOSE_AUTHENTICATION_TIMEOUT))

    async def switch(self, user) -> None:
        """Act for another user (None: nobody), leaving the old one's registry entry and groups first; if the new
        user's revocation group cannot be joined, the connection stays unauthenticated and this raises."""
        if self.user is not None:
            connection.clients.remove(self.user.pk, self.member)
            await fanout().leave(user_connections_group(self.user.pk), self.member)
            if self.session_group is not None:
                await fanout().leave(self.session_group, self.member)  # the session no longer speaks for it
                self.session_group = None
        self.user = user
        self.clock.stop()
        if user is None:
            return
        try:
            limits.admit_user(connection.clients, user.pk, self.member)
            # The group that carries revocation: a connection outside it could not be closed.
            await fanout().join(user_connections_group(user.pk), self.member)
        except BaseException:
            connection.clients.remove(user.pk, self.member)
            self.user = None
            raise
        connection.clients.release_unauthenticated(self.address, self.member)

    async def switch_to_session(self, user, session_key: str) -> None:
        """Act for the browser session's user, in the group that closes this socket at the session's logout."""
        await self.switch(user)
        group = session_connections_group(session_key)
        try:
            await fanout().join(group, self.member)
        except BaseException:
            await self.switch(None)  # not closable by a logout: not authenticated by the session either
            raise
        self.session_group = group

    def forget(self) -> None:
        """The connection closed: stop its clock and its counts at once (before any await that may fail)."""
        self.clock.stop()
        connection.clients.release_unauthenticated(self.address, self.member)
        if self.user is not None:
            connection.clients.remove(self.user.pk, self.member)
