"""The /ws/papers client: one connection kept alive across drops, resuming every paper exactly once by seq."""

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .backoff import Backoff
from .events import (
    Authenticated,
    Disconnected,
    Message,
    PaperEvent,
    ProtocolError,
    StatusChanged,
    Subscribed,
    Unsubscribed,
    parse_event,
    parse_timestamp,
)
from .tokens import AuthenticationError, Tokens
from .tracking import SeqTracker

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1024 * 1024  # server messages are small: a hostile or broken peer cannot make us buffer more
QUEUE_SIZE = 10_000  # a consumer this far behind stops the reading, and the server's backpressure takes over
MAX_RESUMED_TOPIC_PAPERS = 100  # below the server's WS_MAX_SUBSCRIPTIONS default (200)
FATAL_CLOSE_CODES = {4004: "access revoked"}
RETRYABLE_CODES = ("internal_error", "rate_limited")  # docs/protocol.md: the server failed or was busy; try again


class PaperClientError(Exception):
    """Base of the client's errors."""


class RequestError(PaperClientError):
    """The server answered a request with an error (its code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class NotFoundError(RequestError):
    """The paper does not exist or the user may not see it (the server does not say which)."""


class _Closed:
    """Ends the message stream: the client was closed."""


class _ConnectionLost(Exception):
    """A request's connection closed before its reply came."""


@dataclass
class _PaperSubscription:
    event_types: tuple[str, ...] | None = None
    resumed_from_topic: bool = False  # added by the client to resume a topic's paper; dropped once it is final


class PaperClient:
    """Authenticate, subscribe, and iterate typed events; reconnects with backoff and resumes with `since`.

    Give either username and password (tokens come from the API and are renewed), or an access token (and
    its refresh token to renew it). Use as `async with PaperClient(...) as client:` then `async for message in
    client:`; messages are events (paperclient.events) and the client's own notices (Subscribed,
    Unsubscribed, Authenticated, Disconnected).
    """

    def __init__(
        self, base_url: str, *, username: str | None = None, password: str | None = None,
        access: str | None = None, refresh: str | None = None, backoff: Backoff | None = None,
        refresh_margin: float = 30.0, request_timeout: float = 10.0, open_timeout: float = 10.0,
    ) -> None:
        base_url = base_url.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        self.ws_url = "ws" + base_url.removeprefix("http") + "/ws/papers"
        self.tokens = Tokens(f"{base_url}/api", access=access, refresh=refresh, username=username, password=password)
        if access is None and username is None:
            raise ValueError("give username and password, or an access token")
        self.backoff = backoff or Backoff()
        self.refresh_margin = refresh_margin
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self.papers: dict[str, _PaperSubscription] = {}
        self.topics: dict[str, tuple[str, ...] | None] = {}
        self.trackers: dict[str, SeqTracker] = {}
        self._queue: asyncio.Queue[Message | BaseException] = asyncio.Queue(QUEUE_SIZE)
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()  # set while authenticated with every subscription restored
        self._reauth = asyncio.Event()  # the server asked for a fresh token
        self._failure: BaseException | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._last_error = ""
        self._served = False  # the current connection got as far as authenticated and restored

    # --- lifecycle ---

    async def __aenter__(self) -> "PaperClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start the connection and wait until it is authenticated (or raise why it cannot be)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="paperclient")
        await self._wait_ready()

    async def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Closed)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.messages()

    async def messages(self) -> AsyncIterator[Message]:
        """Events and notices as they arrive; raises the error that ended the client for good."""
        while True:
            if self._queue.empty() and self._failure is not None:
                raise self._failure
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is _Closed:
                return
            yield item

    # --- subscriptions ---

    async def subscribe_paper(
        self, paper_id: str, *, event_types: Iterable[str] | None = None, since: int | None = None
    ) -> Subscribed:
        """Follow one paper; `since` replays its events after that seq first (0: its whole retained log)."""
        paper_id = str(paper_id).lower()
        types = tuple(event_types) if event_types is not None else None
        self.papers[paper_id] = _PaperSubscription(event_types=types)
        if since is not None:
            self.trackers.setdefault(paper_id, SeqTracker()).reset(since)
        try:
            return await self._send_when_ready(lambda: self._paper_message(paper_id))
        except RequestError:
            self.papers.pop(paper_id, None)
            raise

    async def subscribe_papers(self, *, event_types: Iterable[str] | None = None) -> Subscribed:
        """Follow every paper the user may see, new ones included."""
        self.topics["papers"] = tuple(event_types) if event_types is not None else None
        return await self._send_when_ready(lambda: self._topic_message("papers"))

    async def subscribe_system(self) -> Subscribed:
        """Receive system_status events."""
        self.topics["system"] = None
        return await self._send_when_ready(lambda: self._topic_message("system"))

    async def unsubscribe_paper(self, paper_id: str) -> None:
        """Stop following a paper."""
        paper_id = str(paper_id).lower()
        if self.papers.pop(paper_id, None) is not None and self._ready.is_set():
            with contextlib.suppress(_ConnectionLost):
                await self._request({"type": "unsubscribe", "paper_id": paper_id})

    def _paper_message(self, paper_id: str) -> dict:
        """A paper's subscribe message, resuming from what the client already has."""
        message = {"type": "subscribe", "paper_id": paper_id}
        if (types := self.papers[paper_id].event_types) is not None:
            message["event_types"] = list(types)
        tracker = self.trackers.get(paper_id)
        if tracker is not None and tracker.contiguous is not None:
            message["since"] = tracker.contiguous
        return message

    def _topic_message(self, topic: str) -> dict:
        message = {"type": "subscribe", "topic": topic}
        if self.topics.get(topic) is not None:
            message["event_types"] = list(self.topics[topic])
        return message

    async def _send_when_ready(self, build) -> Subscribed:
        """Send a subscription once connected; a drop before its reply sends it again on the next connection."""
        while True:
            await self._wait_ready()
            try:
                return await self._request(build())
            except _ConnectionLost:
                continue
            except RequestError as exc:
                if exc.code not in RETRYABLE_CODES:
                    raise
                await asyncio.sleep(self.backoff.next_delay())

    async def _wait_ready(self) -> None:
        """Wait until authenticated and restored, or raise the error that ended the client."""
        ready = asyncio.ensure_future(self._ready.wait())
        done = asyncio.ensure_future(asyncio.shield(self._task)) if self._task else None
        try:
            await asyncio.wait([f for f in (ready, done) if f], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            if done is not None:
                done.cancel()
        if self._failure is not None:
            raise self._failure
        if not self._ready.is_set():
            raise PaperClientError("the client is closed")

    # --- the connection ---

    async def _run(self) -> None:
        """Connect, serve, and reconnect after each drop until closed or refused for good."""
        auth_failures = 0
        while not self._closing:
            try:
                code, reason = await self._connect_once()
            except (AuthenticationError, PaperClientError, InvalidURI) as exc:
                return self._fail(exc)
            except _AuthRefused as exc:
                auth_failures += 1
                if auth_failures > 1 or not (self.tokens.refresh or self.tokens.username):
                    return self._fail(AuthenticationError(str(exc)))
                self.tokens.access = None  # renew before the next attempt
                code, reason = 4001, str(exc)
            except Exception as exc:  # a fault of this client: end visibly rather than leave the caller waiting
                logger.exception("paperclient: stopped by an unexpected error")
                return self._fail(PaperClientError(f"unexpected error: {exc!r}"))
            if self._served:
                auth_failures = 0
            if code in FATAL_CLOSE_CODES:
                return self._fail(PaperClientError(f"closed {code} ({FATAL_CLOSE_CODES[code]}): {reason}"))
            if self._closing:
                return None
            if code == 4002:
                self.tokens.access = None  # expired: renew before reconnecting
            delay = self.backoff.next_delay()
            await self._queue.put(Disconnected(code=code, reason=reason, retry_in=delay))
            logger.info("paperclient: disconnected (%s %s), retrying in %.2f s", code, reason, delay)
            await asyncio.sleep(delay)
        return None

    async def _connect_once(self) -> tuple[int | None, str]:
        """One connection from handshake to close: its close code and why it ended."""
        self._last_error = ""
        self._served = False
        code, reason = None, ""
        try:
            async with connect(self.ws_url, max_size=MAX_MESSAGE_BYTES, open_timeout=self.open_timeout) as ws:
                self._ws = ws
                await self._serve(ws)
            code, reason = ws.close_code, ws.close_reason or "closed by the server"
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            reason = (exc.rcvd.reason if exc.rcvd else "") or "connection lost"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            reason = f"cannot connect: {exc}"
        except RequestError as exc:
            if exc.code not in RETRYABLE_CODES:
                raise
            reason = str(exc)
        finally:
            self._ws = None
            self._ready.clear()
            self._drop_pending()
        return code, self._last_error or reason

    def _fail(self, exc: BaseException) -> None:
        """End the client: the error reaches whoever waits on it or iterates its messages."""
        self._failure = exc
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(exc)

    async def _serve(self, ws: ClientConnection) -> None:
        """Authenticate, restore every subscription, then read until the connection ends."""
        reader = asyncio.create_task(self._read(ws))
        keeper: asyncio.Task | None = None
        try:
            await self._authenticate()
            await self._restore()
            self._ready.set()
            self._served = True
            self.backoff.reset()
            keeper = asyncio.create_task(self._keep_token_fresh())
            done, _ = await asyncio.wait([reader, keeper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises why the connection ended
        except _ConnectionLost:
            await reader  # raises ConnectionClosed with the server's close code
        finally:
            for task in (reader, keeper):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await task

    async def _authenticate(self, *, renew: bool = False) -> None:
        """Send a valid access token, renewing it first when asked or when it is about to expire."""
        if renew or not self.tokens.fresh_for(5):
            await self.tokens.renew()
        try:
            reply = await self._request({"type": "authenticate", "token": self.tokens.access})
        except RequestError as exc:
            if exc.code == "authentication_failed":
                raise _AuthRefused(str(exc)) from None
            raise
        await self._queue.put(_authenticated(reply))

    async def _restore(self) -> None:
        """Subscribe again after a reconnect: each paper from its high-water mark, then the topics.

        Papers first: their missed events are replayed in seq order before a topic can deliver newer live ones."""
        if "papers" in self.topics:
            self._resume_topic_papers()
        for paper_id in list(self.papers):
            try:
                await self._request(self._paper_message(paper_id))
            except NotFoundError:
                self.papers.pop(paper_id, None)
                await self._queue.put(Unsubscribed(paper_id=paper_id, reason="not_found"))
        for topic in list(self.topics):
            await self._request(self._topic_message(topic))

    def _resume_topic_papers(self) -> None:
        """A topic has no `since`: papers it was delivering, still in progress, are resumed one by one."""
        for paper_id, tracker in self.trackers.items():
            if len(self.papers) >= MAX_RESUMED_TOPIC_PAPERS:
                break
            if paper_id not in self.papers and not tracker.final and tracker.contiguous is not None:
                self.papers[paper_id] = _PaperSubscription(event_types=self.topics["papers"], resumed_from_topic=True)

    async def _keep_token_fresh(self) -> None:
        """Renew the token `refresh_margin` seconds before it expires, or when the server asks."""
        while True:
            expiry = self.tokens.expires_at()
            delay = None
            if expiry is not None:
                remaining = expiry - time.time()
                delay = max(remaining - self.refresh_margin, remaining / 2, 0)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation that lands as the wait
            # ends; with short tokens it ends every few seconds.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._reauth.wait()
            self._reauth.clear()
            await self._authenticate(renew=True)

    # --- reading ---

    async def _read(self, ws: ClientConnection) -> None:
        """Dispatch every frame: events to the queue (new seqs only), replies to their requests."""
        try:
            await self._dispatch(ws)
        finally:
            self._drop_pending()  # a request waiting on this connection learns at once that it is gone

    async def _dispatch(self, ws: ClientConnection) -> None:
        async for frame in ws:
            try:
                message = json.loads(frame)
                if not isinstance(message, dict):
                    raise ProtocolError("a frame that is not a JSON object")
                if "event_type" in message:
                    await self._on_event(message)
                else:
                    await self._on_reply(message)
            except (ValueError, TypeError) as exc:  # ProtocolError and JSON errors: skip one bad frame, say so
                logger.warning("paperclient: ignoring a frame the protocol does not describe: %s", exc)

    async def _on_event(self, payload: dict) -> None:
        event = parse_event(payload)
        if event is None:
            return  # an event type of a newer server
        if isinstance(event, PaperEvent):
            tracker = self.trackers.setdefault(event.paper_id, SeqTracker())
            if not tracker.accept(event.seq):
                return
            if isinstance(event, StatusChanged):
                tracker.final = event.final
                self._drop_resumed(event)
        await self._queue.put(event)

    def _drop_resumed(self, event: StatusChanged) -> None:
        """A topic's paper resumed on its own is unsubscribed once final: the topic keeps delivering its events."""
        subscription = self.papers.get(event.paper_id)
        if event.final and subscription is not None and subscription.resumed_from_topic:
            del self.papers[event.paper_id]
            asyncio.get_running_loop().create_task(self._quiet_unsubscribe(event.paper_id))

    async def _quiet_unsubscribe(self, paper_id: str) -> None:
        with contextlib.suppress(_ConnectionLost, RequestError, ConnectionClosed, TimeoutError):
            await self._request({"type": "unsubscribe", "paper_id": paper_id})

    async def _on_reply(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "subscribed" and message.get("paper_id"):
            self._on_paper_subscribed(message)
        if kind == "subscribed":
            await self._queue.put(Subscribed.from_wire(message))
        elif kind == "reauthenticate":
            self._reauth.set()
        elif kind == "unsubscribed" and "reason" in message:
            self.papers.pop(message.get("paper_id"), None)
            await self._queue.put(Unsubscribed(paper_id=str(message.get("paper_id")), reason=str(message["reason"])))
        elif kind == "error" and "id" not in message:
            self._last_error = f"{message.get('code')}: {message.get('message')}"  # says why a close follows
        future = self._pending.pop(str(message.get("id")), None) if "id" in message else None
        if future is not None and not future.done():
            future.set_result(message)

    def _on_paper_subscribed(self, message: dict) -> None:
        """Before the replayed events that follow it: where this paper's events now continue from."""
        snapshot, recovery = message.get("snapshot") or {}, message.get("recovery")
        tracker = self.trackers.setdefault(message["paper_id"], SeqTracker())
        seq = snapshot.get("seq")
        if not isinstance(seq, int):
            return
        tracker.final = snapshot.get("status") in ("completed", "failed", "cancelled")
        if tracker.contiguous is None or (recovery is not None and not recovery.get("complete")):
            # A fresh subscription continues after the snapshot; a gap that cannot be closed is rendered from it.
            tracker.reset(seq)

    # --- requests ---

    async def _request(self, message: dict) -> dict:
        """Send a message with a new id and wait for its reply; an error reply raises RequestError."""
        ws = self._ws
        if ws is None:
            raise _ConnectionLost()
        request_id = f"c{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(json.dumps({**message, "id": request_id}))
            async with asyncio.timeout(self.request_timeout):  # not wait_for: see _keep_token_fresh
                reply = await future
        except ConnectionClosed:
            raise _ConnectionLost() from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            error = NotFoundError if reply.get("code") == "not_found" else RequestError
            raise error(str(reply.get("code")), str(reply.get("message")))
        return Subscribed.from_wire(reply) if reply.get("type") == "subscribed" else reply

    def _drop_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_ConnectionLost())
        self._pending.clear()


class _AuthRefused(Exception):
    """The server refused the access token (it closes with 4001); renew once and try again."""


def _authenticated(reply: dict) -> Authenticated:
    user = reply.get("user") or {}
    expires = reply.get("expires_at")
    return Authenticated(
        user_id=user.get("id"), username=user.get("username"),
        expires_at=parse_timestamp(expires) if expires else None,
    )
