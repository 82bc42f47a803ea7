"""Connection management: client tracking, authentication, subscriptions, and who receives what."""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from papers import selectors

from .broadcast import STAFF_PAPERS_GROUP, SYSTEM_GROUP, paper_group, user_group

TOPIC_PAPERS = "papers"
TOPIC_SYSTEM = "system"
TOPICS = (TOPIC_PAPERS, TOPIC_SYSTEM)
ALL_TYPES = None  # a subscription without an event_types filter


# Close codes (docs/protocol.md); 1009 (message too big) comes from Daphne's WebSocket layer itself.
CLOSE_AUTHENTICATION_FAILED = 4001
CLOSE_AUTHENTICATION_EXPIRED = 4002
CLOSE_AUTHENTICATION_TIMEOUT = 4003
CLOSE_ACCESS_REVOKED = 4004
CLOSE_RATE_LIMITED = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4009
CLOSE_TOO_SLOW = 4011
# 1013 (try again later) is the standard code, but Daphne's WebSocket layer (Autobahn) lets a server send only 1000
# and 3000-4999, so it is mirrored as 4013.
CLOSE_TRY_AGAIN_LATER = 4013


class ProtocolError(Exception):
    """A client message the server answers with an error reply, and for some errors a close code."""

    def __init__(self, code: str, message: str, *, close: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


# --- authentication ---


def _authenticate_token_sync(token: str):
    """Validate a SimpleJWT access token and return its active user."""
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


@dataclass(frozen=True)
class PaperState:
    """What a subscribe reply carries about a paper, plus the events to replay after it."""

    snapshot: dict[str, Any]
    owner_id: int
    missed: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, Any] | None = None


def _visible_paper_state_sync(user, paper_id: str, since: int | None, replay_limit: int) -> PaperState | None:
    """Snapshot, and with `since` the missed events, of a paper the user may see; None if missing or not theirs."""
    paper = selectors.paper_state_get(user=user, paper_id=paper_id)  # state and its seq in one statement
    if paper is None:
        return None
    snapshot = selectors.paper_snapshot(paper=paper)
    if since is None:
        return PaperState(snapshot=snapshot, owner_id=paper.owner_id)
    missed, recovery = selectors.paper_recovery(
        paper_id=paper.pk, since=since, up_to=snapshot["seq"], limit=replay_limit
    )
    return PaperState(snapshot=snapshot, owner_id=paper.owner_id, missed=missed, recovery=recovery)


visible_paper_state = database_sync_to_async(_visible_paper_state_sync)


# --- subscriptions ---


@dataclass
class Subscriptions:
    """What one connection asked for: papers (each with an optional event-type filter) and topics."""

    papers: dict[str, frozenset[str] | None] = field(default_factory=dict)
    topics: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def wants_paper_event(self, paper_id: str, event_type: str, *, topic_allowed: bool) -> bool:
        """Whether a subscription covers this paper event; the topic only for papers the user may see."""
        candidates = [self.papers.get(paper_id, False)]
        if topic_allowed:
            candidates.append(self.topics.get(TOPIC_PAPERS, False))
        return any(f is ALL_TYPES or (f is not False and event_type in f) for f in candidates)

    def wants_system(self) -> bool:
        """Whether the connection subscribed to topic "system"."""
        return TOPIC_SYSTEM in self.topics

    def count(self) -> int:
        """Number of active subscriptions."""
        return len(self.papers) + len(self.topics)


def topic_group(topic: str, user) -> str:
    """The layer group carrying a topic for this user: staff see every paper, others their own."""
    if topic == TOPIC_SYSTEM:
        return SYSTEM_GROUP
    return STAFF_PAPERS_GROUP if user.is_staff else user_group(user.pk)


def subscription_group(*, paper_id: str | None = None, topic: str | None = None, user=None) -> str:
    """The layer group a subscription listens on."""
    return paper_group(paper_id) if paper_id else topic_group(topic, user)


class RecentlySent:
    """Bounded memory of (paper, seq) already sent, since one event can reach a client through two groups."""

    def __init__(self, size: int = 512):
        self.size = size
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

        self._floors: dict[str, int] = {}

    def raise_floor(self, paper_id: str, seq: int) -> None:
        """Treat every event up to seq as sent: a snapshot the client just received covers them."""
        self._floors[paper_id] = max(seq, self._floors.get(paper_id, 0))

    def first_time(self, paper_id: str, seq: int | None) -> bool:
        """Record the event; False if it was sent before or lies under the paper's floor."""
        if seq is None:
            return True
        key = (paper_id, seq)
        if key in self._seen or seq <= self._floors.get(paper_id, 0):
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


# --- limits and timers ---


class TokenBucket:
    """Messages allowed per second with a burst; hand-written because its state lives and dies with one
    connection, in memory, with no keys or storage to manage (a rate-limit library adds both)."""

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


class Timer:
    """A cancellable delayed call of a coroutine function on the running loop."""

    def __init__(self):
        self._handle: asyncio.TimerHandle | None = None

    def start(self, delay: float, callback: Callable[[], Awaitable[None]]) -> None:
        """(Re)schedule callback after delay seconds."""
        self.cancel()
        self._handle = asyncio.get_running_loop().call_later(max(delay, 0), lambda: asyncio.ensure_future(callback()))

    def cancel(self) -> None:
        """Forget the scheduled call, if any."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


# --- client tracking ---


class _ConnectionIndex:
    """Connections by key, counted per key and in all in constant time (checked on every connect of a flood)."""

    def __init__(self):
        self._by_key: dict[Any, set[Any]] = {}
        self._total = 0

    def add(self, key: Any, connection: Any) -> None:
        connections = self._by_key.setdefault(key, set())
        if connection not in connections:
            connections.add(connection)
            self._total += 1

    def remove(self, key: Any, connection: Any) -> None:
        connections = self._by_key.get(key)
        if connections is not None and connection in connections:
            connections.discard(connection)
            self._total -= 1
            if not connections:
                del self._by_key[key]

    def count(self, key: Any = ...) -> int:
        return self._total if key is ... else len(self._by_key.get(key, ()))

    def of(self, key: Any) -> set[Any]:
        return set(self._by_key.get(key, ()))


class ClientRegistry:
    """Connections open in this process: authenticated ones by user (for counts, limits and closing a user's
    sockets), unauthenticated ones by client address (so a flood of them is capped)."""

    def __init__(self):
        self._by_user = _ConnectionIndex()
        self._unauthenticated = _ConnectionIndex()

    def add(self, user_id: Any, connection: Any) -> None:
        """Track a connection as belonging to a user."""
        self._by_user.add(user_id, connection)

    def remove(self, user_id: Any, connection: Any) -> None:
        """Stop tracking a connection."""
        self._by_user.remove(user_id, connection)

    def count(self, user_id: Any = ...) -> int:
        """Connections of one user, or of everyone when no user is given."""
        return self._by_user.count(user_id)

    def of_user(self, user_id: Any) -> set[Any]:
        """The connections of one user."""
        return self._by_user.of(user_id)

    def admit_unauthenticated(self, address: Any, connection: Any, *, per_address: int, total: int) -> None:
        """Track a connection that has not authenticated yet, or refuse it over either cap."""
        if self._unauthenticated.count(address) >= per_address:
            raise ProtocolError(
                "too_many_unauthenticated",
                f"At most {per_address} connections per client address may wait to authenticate; "
                "authenticate the open ones first.",
                close=CLOSE_RATE_LIMITED,
            )
        if self._unauthenticated.count() >= total:
            raise ProtocolError(
                "server_busy", "Too many connections are waiting to authenticate; try again later.",
                close=CLOSE_TRY_AGAIN_LATER,
            )
        self._unauthenticated.add(address, connection)

    def release_unauthenticated(self, address: Any, connection: Any) -> None:
        """Stop counting a connection as unauthenticated: it authenticated or closed."""
        self._unauthenticated.remove(address, connection)

    def count_unauthenticated(self, address: Any = ...) -> int:
        """Unauthenticated connections from one address, or from everyone when no address is given."""
        return self._unauthenticated.count(address)


clients = ClientRegistry()
