"""What goes where: the groups an event or control message is published to, and the message it travels as.

How it travels (channels, encoding, Redis) is realtime/bus.py's business.
"""

import asyncio
import hashlib
from typing import Any

from paperpipeline import metrics

from . import bus
from .events import Event, encode

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


SUBSCRIPTION_KINDS = ("paper", "papers", "system")


def group_kind(group: str) -> str | None:
    """What subscription a group's membership stands for ("paper", or topic "papers" or "system"), for the
    subscriptions metric; None for the groups of control messages."""
    if group.startswith("paper."):
        return "paper"
    if group == STAFF_PAPERS_GROUP or group.startswith("user."):
        return "papers"
    return "system" if group == SYSTEM_GROUP else None


def layer_message(payload: dict[str, Any], owner_id: int | None = None) -> dict[str, Any]:
    """Wrap a wire payload as a bus message, its client JSON encoded once for every recipient.

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
    metrics.EVENTS_PUBLISHED.labels(payload["event_type"]).inc()
    return _publish(target_groups(payload, owner_id), layer_message(payload, owner_id))


def broadcast_control(group: str, message: dict[str, Any]):
    """Publish a control message (not a client event) to the consumers of one group."""
    return _publish([group], message)


# Publishing tasks started from a running loop, kept until done: the loop holds only a weak reference.
_pending: set[asyncio.Task] = set()


def _publish(groups: list[str], message: dict[str, Any]):
    """Publish on the running loop in a task of its own, or at once where no loop runs (a failure is logged)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        bus.publish(groups, message)
        return _done()
    task = loop.create_task(bus.apublish(groups, message))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


class _done:
    """An already-finished awaitable, so sync callers need not care and async callers may await."""

    def __await__(self):
        return iter(())
