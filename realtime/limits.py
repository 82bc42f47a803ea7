"""The limits a connection lives under: messages per second, connections per user and waiting, subscriptions.

docs/protocol.md states each limit and its close code."""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from .protocol import CLOSE_RATE_LIMITED, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TRY_AGAIN_LATER, ProtocolError


class TokenBucket:
    """Messages allowed per second with a burst; hand-written because its state lives and dies with one
    connection, in memory, with no keys or storage to manage (a rate-limit library adds both)."""

    __slots__ = ("rate", "burst", "clock", "tokens", "updated")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class MessageRate:
    """WS_RATE_LIMIT messages per second with a burst of WS_RATE_BURST; a client refused more than a burst's
    worth of messages in a row is closed."""

    __slots__ = ("bucket", "refused_in_a_row")

    def __init__(self):
        self.bucket = TokenBucket(settings.WS_RATE_LIMIT, settings.WS_RATE_BURST)
        self.refused_in_a_row = 0

    def check(self) -> None:
        """Let one message through, or raise rate_limited (closing once the client keeps on regardless)."""
        if self.bucket.take():
            self.refused_in_a_row = 0
            return
        self.refused_in_a_row += 1
        close = CLOSE_RATE_LIMITED if self.refused_in_a_row > settings.WS_RATE_BURST else None
        raise ProtocolError("rate_limited", "Too many messages; slow down.", close=close)


def admit_unauthenticated(registry, address: Any, connection: Any) -> None:
    """Count a connection that has not authenticated yet, or refuse it over the per-address or the total cap."""
    per_address, total = settings.WS_MAX_UNAUTHENTICATED_PER_ADDRESS, settings.WS_MAX_UNAUTHENTICATED
    if registry.count_unauthenticated(address) >= per_address:
        raise ProtocolError(
            "too_many_unauthenticated",
            f"At most {per_address} connections per client address may wait to authenticate; "
            "authenticate the open ones first.",
            close=CLOSE_RATE_LIMITED,
        )
    if registry.count_unauthenticated() >= total:
        raise ProtocolError(
            "server_busy", "Too many connections are waiting to authenticate; try again later.",
            close=CLOSE_TRY_AGAIN_LATER,
        )
    registry.add_unauthenticated(address, connection)


def admit_user(registry, user_id: Any, connection: Any) -> None:
    """Count a connection as the user's, or refuse it over WS_MAX_CONNECTIONS_PER_USER."""
    if registry.count(user_id) >= settings.WS_MAX_CONNECTIONS_PER_USER:
        raise ProtocolError(
            "too_many_connections",
            f"At most {settings.WS_MAX_CONNECTIONS_PER_USER} connections per user.",
            close=CLOSE_TOO_MANY_CONNECTIONS,
        )
    registry.add(user_id, connection)


def check_room(subscriptions, *, replacing: bool) -> None:
    """Refuse a new subscription beyond WS_MAX_SUBSCRIPTIONS (replacing one is always fine)."""
    if not replacing and subscriptions.count() >= settings.WS_MAX_SUBSCRIPTIONS:
        raise ProtocolError(
            "too_many_subscriptions", f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per connection."
        )
