"""Who a connection is: JWT access tokens checked with SimpleJWT, and the clock of its authentication (the
deadline to authenticate, the notice before a token expires, and the close after its grace period)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from .background import BackgroundTasks, Timer
from .events import utc_now
from .protocol import CLOSE_AUTHENTICATION_FAILED, ProtocolError


def _authenticate_token_sync(token: str):
    """Validate a SimpleJWT access token; return its active user and the token's expiry (epoch seconds)."""
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(token)
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed) as exc:
        raise ProtocolError(
            "authentication_failed", _auth_failure_message(exc), close=CLOSE_AUTHENTICATION_FAILED
        ) from exc
    if not user.is_active:
        raise ProtocolError("authentication_failed", "The account is inactive.", close=CLOSE_AUTHENTICATION_FAILED)
    return user, validated.get("exp")


def _auth_failure_message(exc: Exception) -> str:
    """A short reason for a rejected token, without the library's nested detail structure."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict) and detail.get("messages"):
        return str(detail["messages"][0].get("message", detail.get("detail")))
    if isinstance(detail, dict):
        return str(detail.get("detail", exc))
    return str(detail or exc)


authenticate_token = database_sync_to_async(_authenticate_token_sync)


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
