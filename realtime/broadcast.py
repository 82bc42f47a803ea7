"""The one place that publishes events to the channel layer, from async or sync code."""

import asyncio
import hashlib
import logging
import threading
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings

from .events import Event, encode

logger = logging.getLogger(__name__)

PAPER_MESSAGE = "paper.event"
SYSTEM_MESSAGE = "system.event"
SYSTEM_GROUP = "system"
STAFF_PAPERS_GROUP = "papers.all"


def paper_group(paper_id: Any) -> str:
    """Group of everyone subscribed to one paper."""
    return f"paper.{str(paper_id).replace('-', '')}"


def user_group(user_id: int) -> str:
    """Group of one user's connections subscribed to topic "papers"."""
    return f"user.{user_id}"


def user_connections_group(user_id: int) -> str:
    """Group of every connection authenticated as one user, for control messages such as revocation."""
    return f"conn.user.{user_id}"


def session_connections_group(session_key: str) -> str:
    """Group of the connections a Django session authenticated, named by a digest: the key is a credential."""
    return f"conn.session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def layer_message(payload: dict[str, Any], owner_id: int | None = None) -> dict[str, Any]:
    """Wrap a wire payload for the channel layer, JSON-encoded once for every recipient.

    The owner travels with each paper event so every consumer authorizes it again on arrival.
    """
    if "paper_id" not in payload:
        return {"type": SYSTEM_MESSAGE, "text": encode(payload)}
    return {
        "type": PAPER_MESSAGE,
        "paper_id": payload["paper_id"],
        "owner_id": owner_id,
        "seq": payload.get("seq"),
        "event_type": payload["event_type"],
        "text": encode(payload),
    }


def target_groups(payload: dict[str, Any], owner_id: int | None) -> list[str]:
    """Groups an event goes to: the paper's, its owner's and staff's, or the system group."""
    if "paper_id" not in payload:
        return [SYSTEM_GROUP]
    groups = [paper_group(payload["paper_id"]), STAFF_PAPERS_GROUP]
    if owner_id is not None:
        groups.append(user_group(owner_id))
    return groups


def broadcast_event(event: Event | dict[str, Any], *, owner_id: int | None = None):
    """Publish an event once to its groups; await the result in async code, call it plainly in sync code."""
    payload = event.to_dict() if isinstance(event, Event) else event
    return _publish(target_groups(payload, owner_id), layer_message(payload, owner_id))


def broadcast_control(group: str, message: dict[str, Any]):
    """Publish a control message (not a client event) to the consumers of one group."""
    return _publish([group], message)


def _publish(groups: list[str], message: dict[str, Any]):
    """Publish on the running loop's channel layer, or synchronously where no loop runs."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _publish_sync(groups, message)
        return _done()
    return loop.create_task(_publish_async(groups, message))


async def _publish_async(groups: list[str], message: dict[str, Any]) -> None:
    """Publish through the channel layer of the running event loop."""
    layer = get_channel_layer()
    try:
        await asyncio.gather(*(layer.group_send(group, message) for group in groups))
    except (OSError, redis.RedisError):
        # The event log keeps the event; clients recover it with `since`.
        logger.warning("broadcast of %s failed", message.get("event_type", message["type"]), exc_info=True)


def _publish_sync(groups: list[str], message: dict[str, Any]) -> None:
    """Publish from sync code in one Redis round trip on a pooled connection, with no event loop."""
    layer = get_channel_layer()
    data = layer.serialize(message)
    # RedisPubSubChannelLayer's naming of a group's pub/sub channel (a test keeps the two in step).
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "asgi")
    try:
        pipe = _sync_client().pipeline(transaction=False)
        for group in groups:
            pipe.publish(f"{prefix}__group__{group}", data)
        pipe.execute()
    except (OSError, redis.RedisError):
        logger.warning("broadcast of %s failed", message.get("event_type", message["type"]), exc_info=True)


_client_lock = threading.Lock()
_client: redis.Redis | None = None


def _sync_client() -> redis.Redis:
    """Return the process's Redis client; its pool reconnects and is fork-safe."""
    global _client
    with _client_lock:
        if _client is None:
            host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
            _client = redis.Redis.from_url(host, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
        return _client


class _done:
    """An already-finished awaitable, so sync callers need not care and async callers may await."""

    def __await__(self):
        return iter(())
