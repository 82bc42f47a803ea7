"""The /ws/papers consumer: parses, authorizes and delegates; no business logic here."""

import logging
from collections.abc import Awaitable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import connlog, limits
from .auth import Identity
from .background import BackgroundTasks
from .control import ControlMessages
from .delivery import Delivery
from .events import format_timestamp, utc_now
from .forwarding import Forwarder
from .protocol import (
    ProtocolError,
    error_reply,
    listed,
    parse_event_types,
    parse_frame,
    parse_request_id,
    parse_since,
    parse_target,
    parse_token,
    parse_type,
    too_slow,
)
from .subscriptions import Subscriptions
from .transport import writer_for

logger = logging.getLogger(__name__)


class PaperConsumer(AsyncJsonWebsocketConsumer):
    """One client connection to the paper event stream."""

    # Everything reaches a connection through realtime.fanout (events and control messages alike), so it
    # needs no channel-layer channel of its own: no Redis subscription per connection (__call__ asks for none).
    channel_layer_alias = "paperpipeline.no-per-connection-channel"

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message thread hop to close stale database connections: every
        query here runs in database_sync_to_async, which closes them around each call already."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' websocket_disconnect without its thread hop to close stale database connections (see
        dispatch; in a reconnect storm those hops queue with the subscribes' queries) and with no channel-layer
        group to leave."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        """Accept, taking the Django session's user when the browser has one; otherwise await a token."""
        self.tasks = BackgroundTasks()
        address = (self.scope.get("client") or [None])[0]  # behind a proxy: the proxy's (docs/protocol.md)
        self.connection_id, self.close_reason = connlog.opened(address), None
        self.identity = Identity(self, address, self.tasks, send=self.send_json, fail=self._fail)
        self.subscriptions = Subscriptions(self)
        self.control = ControlMessages(self.subscriptions, self.identity, self.tasks,
                                       fail=self._fail, send=self.send_json, guarded=self._guarded)
        self.forwarder = Forwarder(self.subscriptions, self.delivery, self.identity, self.control.take)
        self.fanout_message = self.forwarder.take  # the fan-out calls the forwarder itself: once per delivery
        self.rate = limits.MessageRate()
        await self.accept()
        session_user = self.scope.get("user")
        if session_user is not None and session_user.is_authenticated:
            await self._guarded(self.identity.switch_to_session(session_user, self.scope["session"].session_key))
            if self.user is not None:
                connlog.authenticated(self.user, "session")
        if self.user is not None or self.delivery.closing:
            return
        try:
            self.identity.wait_for_token()
        except ProtocolError as exc:
            await self._fail(exc)

    async def disconnect(self, code: int) -> None:
        """Leave every group this connection joined and stop its timers and tasks."""
        connlog.closed(code, self.close_reason)
        self.tasks.close()
        self.delivery.stop()
        self.identity.forget()  # first: counts stay right even if Redis fails
        await self._become(None)

    # --- inbound: one message at a time ---

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        """Rate-limit, decode and dispatch one frame, answering anything malformed with an error."""
        request_id = None
        try:
            self.rate.check()
            content = parse_frame(text_data)
            request_id = parse_request_id(content)
            handler = self.handlers[parse_type(content)]
        except ProtocolError as exc:
            await self._fail(exc, request_id)
            return
        await self._guarded(handler(self, content, request_id), request_id)

    async def on_authenticate(self, content: dict[str, Any], request_id: Any) -> None:
        """Authenticate with a SimpleJWT access token; the same user keeps its subscriptions, another starts clean."""
        user, expires_at = await self.identity.authenticate(parse_token(content), self._become)
        connlog.authenticated(user, "token")
        reply = {"type": "authenticated", "user": {"id": user.pk, "username": user.get_username()}}
        if expires_at is not None:
            reply["expires_at"] = format_timestamp(expires_at)
        await self._reply(reply, request_id)

    async def on_subscribe(self, content: dict[str, Any], request_id: Any) -> None:
        """Subscribe to one paper (with a snapshot) or to a topic."""
        self._require_user()
        target = parse_target(content)
        event_types = parse_event_types(content)
        since = parse_since(content, target)
        limits.check_room(self.subscriptions, replacing=self.subscriptions.has(target))
        if "paper_id" in target:
            await self.forwarder.subscribe_paper(target["paper_id"], event_types, since,
                                                 lambda reply: self._reply(reply, request_id))
            connlog.subscribed(target, since=since)
            return
        await self.subscriptions.add_topic(target["topic"], event_types, self.user)
        connlog.subscribed(target)
        await self._reply({"type": "subscribed", **target, "event_types": listed(event_types)}, request_id)

    async def on_unsubscribe(self, content: dict[str, Any], request_id: Any) -> None:
        """Drop one subscription; unknown ones are an error so clients notice their own mistakes."""
        self._require_user()
        target = parse_target(content)
        if not self.subscriptions.has(target):
            raise ProtocolError("not_subscribed", "There is no such subscription on this connection.")
        await self.subscriptions.drop(target, self.user)
        connlog.unsubscribed(target)
        await self._reply({"type": "unsubscribed", **target}, request_id)

    async def on_ping(self, content: dict[str, Any], request_id: Any) -> None:
        """Answer an application-level ping."""
        await self._reply({"type": "pong", "timestamp": format_timestamp(utc_now())}, request_id)

    handlers = {"authenticate": on_authenticate, "subscribe": on_subscribe, "unsubscribe": on_unsubscribe,
                "ping": on_ping}

    # --- who the connection is ---

    @property
    def user(self):
        """The user this connection acts for; None until it authenticates."""
        return self.identity.user

    async def _become(self, user) -> None:
        """Act for another user (None: nobody); the same user keeps its subscriptions, another starts clean."""
        if user is not None and self.user is not None and user.pk == self.user.pk:
            await self.control.apply_staff_flag(user.is_staff)  # a renewed token brings a fresh user row
            return
        if self.user is not None:
            await self.subscriptions.drop_all(self.user)
        await self.identity.switch(user)

    # --- outbound: events and control messages, both from the process's fan-out ---

    def fanout_message(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Take one message of a group this connection is in (the fan-out's member interface): the forwarder's
        decision, a plain call; None, or the close of a client too slow, for the fan-out to await. connect()
        puts the forwarder's own take() in its place on the instance."""
        return self.forwarder.take(message)

    # --- delivery: the policy is realtime.delivery's, the writing the server's (realtime.transport) ---

    async def __call__(self, scope, receive, send) -> None:
        """Deliver through the writer of the server this runs on; every other ASGI message out (replies,
        errors, the close) goes through it too, after the events before it.

        send_json() goes around send(), so the ASGI send itself is where those messages enter the writer. This is
        Channels' AsyncConsumer.__call__ for a consumer without a channel layer, receiving in this task: Channels'
        await_many_dispatch keeps a task of its own per connection for every receive."""
        self.scope = scope
        self.channel_layer = None
        self.delivery = Delivery(writer_for(scope, send), settings.WS_SLOW_CLIENT_MAX_BYTES, self._too_slow)
        self.base_send = self.delivery.send_message
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            self.delivery.stop()  # also when the application ends without a disconnect (cancelled, failed)

    def hold_writes(self) -> None:
        """The fan-out starts a batch: collect this connection's frames until release_writes()."""
        self.delivery.hold()

    def release_writes(self) -> None:
        """The fan-out ended its batch: write what this connection collected."""
        self.delivery.release()

    async def _too_slow(self) -> None:
        """The socket backed up past the cap: the error, then the close (the client resumes with since)."""
        await self._fail(too_slow())

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
            await self._reply(error_reply("internal_error", "The server could not handle this message; retry."),
                              request_id)

    async def _fail(self, exc: ProtocolError, request_id: Any = None) -> None:
        """Answer with the error; one with a close code is the last message before the close."""
        connlog.error(exc.code, exc.close)
        if exc.close is not None:
            self.delivery.closing = True
            self.close_reason = self.close_reason or exc.code
        await self._reply(error_reply(exc.code, exc.message), request_id)
        if exc.close is not None:
            await self.close(code=exc.close)

    def _require_user(self) -> None:
        if self.user is None:
            raise ProtocolError("not_authenticated", 'Authenticate first: {"type": "authenticate", "token": ...}.')

    async def _reply(self, reply: dict[str, Any], request_id: Any) -> None:
        if request_id is not None:
            reply["id"] = request_id
        await self.send_json(reply)
