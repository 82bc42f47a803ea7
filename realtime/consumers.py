"""The /ws/papers consumer: parses, validates, authorizes and delegates; no business logic here."""

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from .broadcast import session_connections_group, user_connections_group
from .connection import (
    CLOSE_ACCESS_REVOKED,
    CLOSE_AUTHENTICATION_EXPIRED,
    CLOSE_AUTHENTICATION_TIMEOUT,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_TOO_SLOW,
    TOPIC_PAPERS,
    TOPICS,
    ProtocolError,
    RecentlySent,
    Subscriptions,
    Timer,
    TokenBucket,
    authenticate_token,
    clients,
    subscription_group,
    visible_paper_state,
)
from .delivery import Delivery
from .events import PAPER_EVENT_TYPES, encode, format_timestamp, utc_now
from .fanout import fanout
from .transport import Outbound, writer_for

logger = logging.getLogger(__name__)

CONTROL_MESSAGES = ("paper.revoked", "user.revoked", "user.changed", "session.revoked")

# Why a user's connections were closed (the reason of a "user.revoked" control message), as clients read it.
REVOKED_MESSAGES = {
    "inactive": "The account is no longer active.",
    "password_changed": "The account's password was changed; log in again.",
}


class PaperConsumer(AsyncJsonWebsocketConsumer):
    """One client connection to the paper event stream."""

    # Everything reaches a connection through realtime.fanout (events and control messages alike), so it
    # needs no channel-layer channel of its own: no Redis subscription per connection.
    channel_layer_alias = "paperpipeline.no-per-connection-channel"

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message thread hop to close stale database connections: every
        query here runs in database_sync_to_async, which closes them around each call already."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        """Accept, taking the Django session's user when the browser has one; otherwise await a token."""
        self.user = None
        self.subscriptions = Subscriptions()
        self.recently_sent = RecentlySent()
        self.bucket = TokenBucket(settings.WS_RATE_LIMIT, settings.WS_RATE_BURST)
        self.rejected_in_a_row = 0
        self.auth_deadline, self.reauth_notice = Timer(), Timer()
        self.holding: list[dict[str, Any]] | None = None
        self.address = (self.scope.get("client") or [None])[0]  # behind a proxy: the proxy's (docs/protocol.md)
        self.session_group: str | None = None
        await self.accept()
        session_user = self.scope.get("user")
        if session_user is not None and session_user.is_authenticated:
            await self._guarded(self._become_session(session_user))
            return
        try:
            clients.admit_unauthenticated(
                self.address, self,
                per_address=settings.WS_MAX_UNAUTHENTICATED_PER_ADDRESS, total=settings.WS_MAX_UNAUTHENTICATED,
            )
        except ProtocolError as exc:
            await self._fail(exc)
            return
        self.auth_deadline.start(settings.WS_AUTH_TIMEOUT, self._authentication_timed_out)

    async def disconnect(self, code: int) -> None:
        """Leave every group this connection joined and stop its timers."""
        self.auth_deadline.cancel()
        self.reauth_notice.cancel()
        self.delivery.stop()
        clients.release_unauthenticated(self.address, self)
        if self.user is not None:
            clients.remove(self.user.pk, self)  # first: counts stay right even if Redis fails
        await self._become(None)

    # --- inbound ---

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        """Rate-limit, then decode a frame as a JSON object, answering anything else with an error."""
        if not self.bucket.take():
            self.rejected_in_a_row += 1
            close = CLOSE_RATE_LIMITED if self.rejected_in_a_row > settings.WS_RATE_BURST else None
            await self._fail(ProtocolError("rate_limited", "Too many messages; slow down.", close=close))
            return
        self.rejected_in_a_row = 0
        if text_data is None:
            await self._send_error("invalid_message", "Binary frames are not supported; send JSON text.")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser allows
            await self._send_error("invalid_json", "The message is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self._send_error("invalid_message", "A message must be a JSON object.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs) -> None:
        """Dispatch a client message by its type."""
        request_id = content.get("id")
        if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))):
            await self._send_error("invalid_message", '"id" must be a string or an integer.')
            return
        handler = self.handlers.get(content.get("type")) if isinstance(content.get("type"), str) else None
        if handler is None:
            expected = ", ".join(self.handlers)
            await self._send_error("unknown_type", f"Unknown message type; expected one of: {expected}.", request_id)
            return
        await self._guarded(handler(self, content, request_id), request_id)

    async def on_authenticate(self, content: dict[str, Any], request_id: Any) -> None:
        """Authenticate with a SimpleJWT access token; the same user keeps its subscriptions, another starts clean."""
        token = content.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("invalid_message", '"token" must be a non-empty string.')
        self.auth_deadline.cancel()  # no timeout or expiry fires while the token is checked; a bad one closes
        user, expires = await authenticate_token(token)
        await self._become(user)
        reply = {"type": "authenticated", "user": {"id": user.pk, "username": user.get_username()}}
        if expires:
            expires_at = _from_epoch(expires)
            reply["expires_at"] = format_timestamp(expires_at)
            self._watch_expiry(expires_at)
        await self._reply(reply, request_id)

    async def on_subscribe(self, content: dict[str, Any], request_id: Any) -> None:
        """Subscribe to one paper (with a snapshot) or to a topic."""
        self._require_user()
        target = _parse_target(content)
        event_types = _parse_event_types(content)
        if "paper_id" in target:
            await self._subscribe_paper(target["paper_id"], event_types, _parse_since(content), request_id)
            return
        if "since" in content:
            raise ProtocolError("invalid_message", '"since" applies to paper subscriptions only.')
        self._check_room(target["topic"] in self.subscriptions.topics)
        await fanout().join(subscription_group(**target, user=self.user), self)
        self.subscriptions.topics[target["topic"]] = event_types  # only once joined: a failed join leaves none
        reply = {"type": "subscribed", **target, "event_types": _listed(event_types)}
        await self._reply(reply, request_id)

    async def _subscribe_paper(
        self, paper_id: str, event_types: frozenset[str] | None, since: int | None, request_id: Any
    ) -> None:
        """Reply with the snapshot, replay what the client missed since `since`, then continue live."""
        # Join before reading the log, so no event falls between the two; live events are held until the
        # reply and replay are sent, and the floor then drops those the snapshot or replay covered.
        self._check_room(paper_id in self.subscriptions.papers)
        group = subscription_group(paper_id=paper_id)
        self.holding = []  # live events wait until the reply and the replay are out
        try:
            await fanout().join(group, self)
            await self._send_paper_state(paper_id, group, event_types, since, request_id)
        finally:
            held, self.holding = self.holding, None
            for message in held:
                await self.fanout_message(message)

    async def _send_paper_state(
        self, paper_id: str, group: str, event_types: frozenset[str] | None, since: int | None, request_id: Any
    ) -> None:
        """Reply with the snapshot (or not_found) and replay what the client missed."""
        state = await visible_paper_state(self.user, paper_id, since, settings.REALTIME_REPLAY_LIMIT)
        if state is None:
            # Refused, or no longer visible: an earlier subscription to it ends too.
            self.subscriptions.papers.pop(paper_id, None)
            await fanout().leave(group, self)
            raise ProtocolError("not_found", "No such paper.")
        if not self._topic_covers(state.owner_id):
            # Events up to the snapshot queued behind this handler are covered by it; a connection on
            # topic "papers" was already receiving them, so for it nothing is dropped.
            self.recently_sent.raise_floor(paper_id, state.snapshot["seq"])
        self.subscriptions.papers[paper_id] = event_types
        reply = {"type": "subscribed", "paper_id": paper_id, "event_types": _listed(event_types),
                 "snapshot": state.snapshot}
        if state.recovery is not None:
            reply["recovery"] = state.recovery
        await self._reply(reply, request_id)
        for payload in state.missed:
            if event_types is None or payload["event_type"] in event_types:
                # Replay obeys backpressure like live events.
                await self.delivery.deliver(paper_id, payload["event_type"], Outbound(encode(payload)))

    async def on_unsubscribe(self, content: dict[str, Any], request_id: Any) -> None:
        """Drop one subscription; unknown ones are an error so clients notice their own mistakes."""
        self._require_user()
        target = _parse_target(content)
        registry = self.subscriptions.papers if "paper_id" in target else self.subscriptions.topics
        key = target.get("paper_id") or target["topic"]
        if key not in registry:
            raise ProtocolError("not_subscribed", "There is no such subscription on this connection.")
        del registry[key]
        await fanout().leave(subscription_group(**target, user=self.user), self)
        await self._reply({"type": "unsubscribed", **target}, request_id)

    async def on_ping(self, content: dict[str, Any], request_id: Any) -> None:
        """Answer an application-level ping."""
        await self._reply({"type": "pong", "timestamp": format_timestamp(utc_now())}, request_id)

    async def _become(self, user) -> None:
        """Switch the connection's user (None: anonymous), leaving the old user's groups and limits."""
        if user is not None and self.user is not None and user.pk == self.user.pk:
            await self._apply_staff_flag(user.is_staff)  # a renewed token brings a fresh user row
            return
        if self.user is not None:
            clients.remove(self.user.pk, self)
            await self._leave_all()
            await fanout().leave(user_connections_group(self.user.pk), self)
            if self.session_group is not None:
                await fanout().leave(self.session_group, self)  # the session no longer speaks for it
                self.session_group = None
        self.user = user
        self.reauth_notice.cancel()
        if user is None:
            return
        self.auth_deadline.cancel()
        if clients.count(user.pk) >= settings.WS_MAX_CONNECTIONS_PER_USER:
            self.user = None
            raise ProtocolError(
                "too_many_connections",
                f"At most {settings.WS_MAX_CONNECTIONS_PER_USER} connections per user.",
                close=CLOSE_TOO_MANY_CONNECTIONS,
            )
        clients.add(user.pk, self)
        try:
            # The group that carries revocation: a connection outside it could not be closed, so it stays
            # unauthenticated when the join fails.
            await fanout().join(user_connections_group(user.pk), self)
        except BaseException:
            clients.remove(user.pk, self)
            self.user = None
            raise
        clients.release_unauthenticated(self.address, self)

    async def _become_session(self, user) -> None:
        """Authenticate as the browser session's user, in the group that closes this socket at its logout."""
        await self._become(user)
        group = session_connections_group(self.scope["session"].session_key)
        try:
            await fanout().join(group, self)
        except BaseException:
            await self._become(None)  # not closable by a logout: not authenticated by the session either
            raise
        self.session_group = group

    def _watch_expiry(self, expires_at: datetime) -> None:
        """Ask for a new token before the current one expires; close after the grace period without one."""
        remaining = (expires_at - utc_now()).total_seconds()
        self.close_at = expires_at + timedelta(seconds=settings.WS_AUTH_GRACE)
        self.reauth_notice.start(remaining - settings.WS_REAUTH_NOTICE, self._ask_for_new_token)
        self.auth_deadline.start(remaining + settings.WS_AUTH_GRACE, self._authentication_expired)

    async def _ask_for_new_token(self) -> None:
        reply = {"type": "reauthenticate", "reason": "token_expiring", "close_at": format_timestamp(self.close_at)}
        await self.send_json(reply)

    async def _authentication_expired(self) -> None:
        if utc_now() < self.close_at:
            return  # renewed meanwhile
        await self._fail(ProtocolError("authentication_expired", "The access token expired; authenticate again.",
                                       close=CLOSE_AUTHENTICATION_EXPIRED))

    async def _authentication_timed_out(self) -> None:
        if self.user is not None:
            return  # authenticated meanwhile
        await self._fail(ProtocolError("authentication_timeout", "No authentication in time.",
                                       close=CLOSE_AUTHENTICATION_TIMEOUT))

    handlers = {
        "authenticate": on_authenticate,
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "ping": on_ping,
    }

    # --- outbound: events and control messages, both from the process's fan-out ---

    async def fanout_message(self, message: dict[str, Any]) -> None:
        """Take one message of a group this connection is in; events inline, control in its own task."""
        if self.holding is not None:
            self.holding.append(message)
        elif message["type"] == "paper.event":
            await self.paper_event(message)
        elif message["type"] == "system.event":
            await self.system_event(message)
        elif message["type"] in CONTROL_MESSAGES:
            # In a task of its own: it may query the database, and the fan-out must not wait for that.
            handler = getattr(self, get_handler_name(message))
            asyncio.ensure_future(self._guarded(handler(message)))

    async def paper_event(self, message: dict[str, Any]) -> None:
        """Forward a paper event, already encoded, if a subscription wants it and it was not sent yet."""
        paper_id = message["paper_id"]
        # A paper subscription was authorized when made (and is revoked on change); topic events are
        # authorized one by one, since a connection may sit in a paper's group it was refused.
        topic_allowed = self.user is not None and (self.user.is_staff or message.get("owner_id") == self.user.pk)
        if not self.subscriptions.wants_paper_event(paper_id, message["event_type"], topic_allowed=topic_allowed):
            return
        if self.recently_sent.first_time(paper_id, message.get("seq")):
            await self.delivery.deliver(paper_id, message["event_type"], message["prepared"])

    async def system_event(self, message: dict[str, Any]) -> None:
        """Forward a system_status event to topic "system" subscribers."""
        if self.subscriptions.wants_system():
            await self.delivery.write(message["prepared"])

    async def user_revoked(self, message: dict[str, Any]) -> None:
        """The account was deactivated or deleted, or its password changed: close now, not when the token expires."""
        reason = REVOKED_MESSAGES.get(message.get("reason"), REVOKED_MESSAGES["inactive"])
        await self._fail(ProtocolError("access_revoked", reason, close=CLOSE_ACCESS_REVOKED))

    async def session_revoked(self, message: dict[str, Any]) -> None:
        """The Django session this socket was opened with logged out: close now."""
        revoked = ProtocolError("access_revoked", "The session was logged out; log in again.",
                                close=CLOSE_ACCESS_REVOKED)
        await self._fail(revoked)

    async def user_changed(self, message: dict[str, Any]) -> None:
        """The account was saved: follow a change of its staff flag at once."""
        await self._apply_staff_flag(message["is_staff"])

    async def _apply_staff_flag(self, is_staff: bool) -> None:
        """Move topic "papers" between the staff and the own-papers group; a demotion re-checks every paper."""
        if self.user is None or self.user.is_staff == is_staff:
            return
        topic = TOPIC_PAPERS in self.subscriptions.topics
        if topic:
            old_group = subscription_group(topic=TOPIC_PAPERS, user=self.user)
            await fanout().leave(old_group, self)
        self.user.is_staff = is_staff
        if topic:
            new_group = subscription_group(topic=TOPIC_PAPERS, user=self.user)
            await fanout().join(new_group, self)
        if not is_staff:
            for paper_id in list(self.subscriptions.papers):
                await self.paper_revoked({"paper_id": paper_id, "reason": "access_changed"})

    async def paper_revoked(self, message: dict[str, Any]) -> None:
        """A paper was deleted or changed hands: end the subscription unless the user may still see it."""
        paper_id = message["paper_id"]
        if paper_id not in self.subscriptions.papers:
            return
        if message["reason"] != "deleted":
            try:
                if await visible_paper_state(self.user, paper_id, None, 0):
                    return
            except Exception:
                logger.exception("re-checking access to %s failed; ending the subscription to be safe", paper_id)
        del self.subscriptions.papers[paper_id]
        await fanout().leave(subscription_group(paper_id=paper_id), self)
        await self.send_json({"type": "unsubscribed", "paper_id": paper_id, "reason": message["reason"]})

    # --- delivery: the policy is realtime.delivery's, the writing the server's (realtime.transport) ---

    async def __call__(self, scope, receive, send) -> None:
        """Deliver through the writer of the server this runs on; every other ASGI message out (replies,
        errors, the close) goes after the events the writer collected before it.

        send_json() goes around send(), so the ASGI send itself is where the collected events go first."""
        self.delivery = Delivery(writer_for(scope, send), settings.WS_SLOW_CLIENT_MAX_BYTES, self._too_slow)

        async def after_collected_events(message: dict[str, Any]) -> None:
            self.delivery.release()
            await send(message)

        await super().__call__(scope, receive, after_collected_events)

    def hold_writes(self) -> None:
        """The fan-out starts a batch: collect this connection's frames until release_writes()."""
        self.delivery.hold()

    def release_writes(self) -> None:
        """The fan-out ended its batch: write what this connection collected."""
        self.delivery.release()

    async def _too_slow(self) -> None:
        """The socket backed up past the cap: the error, then the close (the client resumes with since)."""
        await self._fail(ProtocolError("too_slow", "The connection cannot keep up; resume with since.",
                                       close=CLOSE_TOO_SLOW))

    # --- helpers ---

    async def _guarded(self, step: Awaitable[None], request_id: Any = None) -> None:
        """Run a step, answering a ProtocolError with an error reply (and its close code)."""
        try:
            await step
        except ProtocolError as exc:
            await self._fail(exc, request_id)
        except Exception:
            # A database or Redis failure while handling one message must not end the connection.
            logger.exception("handling a client message failed")
            await self._send_error("internal_error", "The server could not handle this message; retry.", request_id)

    async def _fail(self, exc: ProtocolError, request_id: Any = None) -> None:
        """Answer with the error; one with a close code is the last message before the close."""
        if exc.close is not None:
            self.delivery.closing = True
        await self._send_error(exc.code, exc.message, request_id)
        if exc.close is not None:
            await self.close(code=exc.close)

    def _topic_covers(self, owner_id: int) -> bool:
        """Whether topic "papers" already brings this connection the events of a paper with this owner."""
        return TOPIC_PAPERS in self.subscriptions.topics and (self.user.is_staff or owner_id == self.user.pk)

    def _check_room(self, replacing: bool) -> None:
        """Refuse a new subscription beyond the per-connection limit (replacing one is always fine)."""
        if not replacing and self.subscriptions.count() >= settings.WS_MAX_SUBSCRIPTIONS:
            raise ProtocolError(
                "too_many_subscriptions", f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per connection."
            )

    def _require_user(self) -> None:
        if self.user is None:
            raise ProtocolError("not_authenticated", 'Authenticate first: {"type": "authenticate", "token": ...}.')

    async def _leave_all(self) -> None:
        """Discard every group membership and subscription."""
        for paper_id in list(self.subscriptions.papers):
            await fanout().leave(subscription_group(paper_id=paper_id), self)
        for topic in list(self.subscriptions.topics):
            await fanout().leave(subscription_group(topic=topic, user=self.user), self)
        self.subscriptions = Subscriptions()

    async def _reply(self, reply: dict[str, Any], request_id: Any) -> None:
        if request_id is not None:
            reply["id"] = request_id
        await self.send_json(reply)

    async def _send_error(self, code: str, message: str, request_id: Any = None) -> None:
        await self._reply({"type": "error", "code": code, "message": message}, request_id)


def _parse_target(content: dict[str, Any]) -> dict[str, str]:
    """Exactly one of paper_id (a UUID) or topic ("papers" or "system")."""
    paper_id, topic = content.get("paper_id"), content.get("topic")
    if (paper_id is None) == (topic is None):
        raise ProtocolError("invalid_message", 'Give exactly one of "paper_id" or "topic".')
    if topic is not None:
        if topic not in TOPICS:
            raise ProtocolError("invalid_message", f'"topic" must be one of: {", ".join(TOPICS)}.')
        return {"topic": topic}
    bad = ProtocolError("invalid_message", '"paper_id" must be a UUID string.')
    if not isinstance(paper_id, str):
        raise bad
    try:
        return {"paper_id": str(uuid.UUID(paper_id))}
    except ValueError:
        raise bad from None


def _parse_event_types(content: dict[str, Any]) -> frozenset[str] | None:
    """The optional event_types filter: a non-empty list of paper event types."""
    if content.get("topic") == "system":
        if "event_types" in content:
            raise ProtocolError("invalid_message", 'Topic "system" carries only system_status; omit "event_types".')
        return None
    types = content.get("event_types")
    if types is None:
        return None
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ProtocolError("invalid_message", '"event_types" must be a non-empty list of strings.')
    unknown = sorted(set(types) - set(PAPER_EVENT_TYPES))
    if unknown:
        raise ProtocolError(
            "invalid_message", f'Unknown event types {unknown}; known: {", ".join(PAPER_EVENT_TYPES)}.'
        )
    return frozenset(types)


def _parse_since(content: dict[str, Any]) -> int | None:
    """The optional resume point: the last seq the client saw of this paper."""
    since = content.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or not 0 <= since < 2**63):
        raise ProtocolError("invalid_message", '"since" must be a non-negative integer (the last seq you saw).')
    return since


def _listed(event_types: frozenset[str] | None) -> list[str] | None:
    return sorted(event_types) if event_types is not None else None


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)

