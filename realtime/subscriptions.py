"""What one connection subscribed to, the fan-out groups that carry it, and the events already sent to it."""

from collections import OrderedDict
from typing import Any

from papers.selectors import paper_visible_to

from .broadcast import STAFF_PAPERS_GROUP, SYSTEM_GROUP, paper_group, user_group
from .fanout import fanout
from .protocol import TOPIC_PAPERS, TOPIC_SYSTEM

ALL_TYPES = None  # a subscription without an event_types filter


def topic_group(topic: str, user) -> str:
    """The fan-out group carrying a topic for this user: staff see every paper, others their own."""
    if topic == TOPIC_SYSTEM:
        return SYSTEM_GROUP
    return STAFF_PAPERS_GROUP if user.is_staff else user_group(user.pk)


class Subscriptions:
    """Papers (each with an optional event-type filter) and topics one connection subscribed to, and its
    memberships of the fan-out groups that carry them: a subscription is recorded only once its group is joined."""

    def __init__(self, member: Any):
        self.member = member
        self.papers: dict[str, frozenset[str] | None] = {}
        self.topics: dict[str, frozenset[str] | None] = {}

    def wants_paper_event(self, paper_id: str, event_type: str, user, owner_id: Any) -> bool:
        """Whether a subscription covers this paper event; topic "papers" only for papers the user may see (the
        access rule is applied only when the topic is what would bring the event)."""
        wanted = self.papers.get(paper_id, False)
        if wanted is ALL_TYPES or (wanted is not False and event_type in wanted):
            return True
        topic = self.topics.get(TOPIC_PAPERS, False)
        return (topic is ALL_TYPES or (topic is not False and event_type in topic)) and paper_visible_to(user, owner_id)

    def wants_system(self) -> bool:
        """Whether the connection subscribed to topic "system"."""
        return TOPIC_SYSTEM in self.topics

    def count(self) -> int:
        """Number of active subscriptions."""
        return len(self.papers) + len(self.topics)

    def has(self, target: dict[str, str]) -> bool:
        """Whether this exact subscription exists."""
        return target.get("paper_id", target.get("topic")) in (self.papers if "paper_id" in target else self.topics)

    async def join_paper(self, paper_id: str) -> None:
        """Join a paper's group, ahead of recording its subscription (see Subscriptions.record_paper)."""
        await fanout().join(paper_group(paper_id), self.member)

    def record_paper(self, paper_id: str, event_types: frozenset[str] | None) -> None:
        """Record a paper subscription whose group was joined and whose access was checked."""
        self.papers[paper_id] = event_types

    async def add_topic(self, topic: str, event_types: frozenset[str] | None, user) -> None:
        """Join a topic's group, then record it: a failed join leaves no subscription."""
        await fanout().join(topic_group(topic, user), self.member)
        self.topics[topic] = event_types

    async def drop_paper(self, paper_id: str) -> None:
        """End a paper subscription (or a refused attempt) and leave its group."""
        self.papers.pop(paper_id, None)
        await fanout().leave(paper_group(paper_id), self.member)

    async def drop(self, target: dict[str, str], user) -> None:
        """End one subscription and leave its group."""
        if "paper_id" in target:
            await self.drop_paper(target["paper_id"])
            return
        del self.topics[target["topic"]]
        await fanout().leave(topic_group(target["topic"], user), self.member)

    async def drop_all(self, user) -> None:
        """End every subscription and leave every group they joined."""
        for paper_id in list(self.papers):
            await self.drop_paper(paper_id)
        for topic in list(self.topics):
            await self.drop({"topic": topic}, user)

    async def follow_staff_flag(self, user, is_staff: bool) -> None:
        """Move topic "papers" between the staff group and the user's own as the staff flag changes."""
        subscribed = TOPIC_PAPERS in self.topics
        if subscribed:
            await fanout().leave(topic_group(TOPIC_PAPERS, user), self.member)
        user.is_staff = is_staff
        if subscribed:
            await fanout().join(topic_group(TOPIC_PAPERS, user), self.member)


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
