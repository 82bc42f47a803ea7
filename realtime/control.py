"""What control messages from the fan-out do to one connection: revocation closes it, a staff change moves its
topic, a paper deleted or given away ends that subscription unless the user may still see the paper."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from papers.selectors import paper_visible_to

from .auth import Identity
from .background import BackgroundTasks
from .protocol import TOPIC_PAPERS, ProtocolError, access_revoked
from .snapshots import visible_paper_state
from .subscriptions import Subscriptions

logger = logging.getLogger(__name__)


class ControlMessages:
    """Acts on one connection's control messages, each in a task of its own (it may query the database, and the
    fan-out must not wait for that)."""

    __slots__ = ("subscriptions", "identity", "tasks", "fail", "send", "guarded")

    def __init__(self, subscriptions: Subscriptions, identity: Identity, tasks: BackgroundTasks, *,
                 fail: Callable[[ProtocolError], Awaitable[None]], send: Callable[[dict], Awaitable[None]],
                 guarded: Callable[[Awaitable[None]], Awaitable[None]]):
        self.subscriptions, self.identity, self.tasks = subscriptions, identity, tasks
        self.fail, self.send, self.guarded = fail, send, guarded  # the consumer's

    def take(self, message: dict[str, Any]) -> None:
        """Start acting on a control message (unknown types are ignored)."""
        handler = self.handlers.get(message["type"])
        if handler is not None:
            self.tasks.start(self.guarded(handler(self, message)))

    async def user_revoked(self, message: dict[str, Any]) -> None:
        """The account was deactivated or deleted, or its password changed: close now, not when the token expires."""
        await self.fail(access_revoked(message.get("reason")))

    async def session_revoked(self, message: dict[str, Any]) -> None:
        """The Django session this socket was opened with logged out: close now."""
        await self.fail(access_revoked("logged_out"))

    async def user_changed(self, message: dict[str, Any]) -> None:
        """The account was saved: follow a change of its staff flag at once."""
        await self.apply_staff_flag(message["is_staff"])

    async def apply_staff_flag(self, is_staff: bool) -> None:
        """Move topic "papers" between the staff and the own-papers group; a demotion re-checks every paper."""
        user = self.identity.user
        if user is None or user.is_staff == is_staff:
            return
        await self.subscriptions.follow_staff_flag(user, is_staff)
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
                if await visible_paper_state(self.identity.user, paper_id, None, 0):
                    return
            except Exception:
                logger.exception("re-checking access to %s failed; ending the subscription to be safe", paper_id)
        await self.subscriptions.drop_paper(paper_id)
        await self.send({"type": "unsubscribed", "paper_id": paper_id, "reason": message["reason"]})

    async def paper_deleted(self, message: dict[str, Any]) -> None:
        """A paper was deleted: tell a topic "papers" subscriber who could see it, so its list drops the paper."""
        if TOPIC_PAPERS in self.subscriptions.topics and paper_visible_to(self.identity.user, message["owner_id"]):
            await self.send({"type": "paper_deleted", "paper_id": message["paper_id"]})

    handlers = {"user.revoked": user_revoked, "session.revoked": session_revoked, "user.changed": user_changed,
                "paper.revoked": paper_revoked, "paper.deleted": paper_deleted}
