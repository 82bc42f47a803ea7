"""What one connection subscribed to, the fan-out groups that carry it, and the events already sent to it.

What a connection accepts is kept ready for the fan-out, which asks once per event per connection: a paper
subscription's event types as a set, topic "papers"'s as another, the once-only memory as a fixed ring."""

from array import array
from typing import Any

from papers.selectors import paper_visible_to

from .broadcast import STAFF_PAPERS_GROUP, SYSTEM_GROUP, paper_group, user_group
from .events import PAPER_EVENT_TYPES
from .fanout import fanout
from .protocol import TOPIC_PAPERS, TOPIC_SYSTEM

ALL_TYPES = frozenset(PAPER_EVENT_TYPES)  # what a subscription without an event_types filter accepts
NO_TYPES = frozenset()


def topic_group(topic: str, user) -> str:
    """The fan-out group carrying a topic for this user: staff see every paper, others their own."""
    if topic == TOPIC_SYSTEM:
        return SYSTEM_GROUP
    return STAFF_PAPERS_GROUP if user.is_staff else user_group(user.pk)


class PaperSubscription:
    """One paper subscription: the event types it accepts and the seq up to which its snapshot covered the paper."""

    __slots__ = ("types", "floor")

    def __init__(self, types: frozenset[str], floor: int):
        self.types, self.floor = types, floor


class Subscriptions:
    """Papers (each with an optional event-type filter) and topics one connection subscribed to, and its
    memberships of the fan-out groups that carry them: a subscription is recorded only once its group is joined."""

    __slots__ = ("member", "papers", "topics", "topic_types", "recently_sent")

    def __init__(self, member: Any):
        self.member = member
        self.papers: dict[str, PaperSubscription] = {}
        self.topics: dict[str, frozenset[str] | None] = {}
        self.topic_types = NO_TYPES  # the paper event types topic "papers" brings (none while not subscribed)
        self.recently_sent: RecentlySent | None = None  # made with the first event that has a seq

    def accepts(self, message: dict[str, Any], user) -> bool:
        """Whether to forward a paper event: a subscription covers it and it was not sent before. Topic "papers"
        covers only papers the user may see (the access rule runs only when the topic is what brings the event);
        events a paper subscription's snapshot covered count as sent."""
        event_type, seq = message["event_type"], message.get("seq")
        subscription = self.papers.get(message["paper_id"])
        if subscription is None or event_type not in subscription.types:
            if event_type not in self.topic_types or not paper_visible_to(user, message.get("owner_id")):
                return False
        if seq is None:
            return True
        if subscription is not None and seq <= subscription.floor:
            return False
        sent = self.recently_sent
        if sent is None:
            sent = self.recently_sent = RecentlySent()
        return sent.first_time(message["paper_id"], seq)

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

    def record_paper(self, paper_id: str, event_types: frozenset[str] | None, covered: int = 0) -> None:
        """Record a paper subscription whose group was joined and whose access was checked; events up to seq
        `covered` count as sent (a snapshot current to it goes out). Subscribing again replaces the filter."""
        previous = self.papers.get(paper_id)
        floor = max(covered, previous.floor) if previous is not None else covered
        self.papers[paper_id] = PaperSubscription(ALL_TYPES if event_types is None else event_types, floor)

    async def add_topic(self, topic: str, event_types: frozenset[str] | None, user) -> None:
        """Join a topic's group, then record it: a failed join leaves no subscription."""
        await fanout().join(topic_group(topic, user), self.member)
        self.topics[topic] = event_types
        self._topics_changed()

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
        self._topics_changed()
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

    def _topics_changed(self) -> None:
        """Keep the event types topic "papers" brings ready for accepts()."""
        if TOPIC_PAPERS not in self.topics:
            self.topic_types = NO_TYPES
        else:
            self.topic_types = self.topics[TOPIC_PAPERS] or ALL_TYPES


# Seqs remembered per connection; a duplicate arrives right behind the first copy (the publisher sends an event
# to its groups in one pipelined round trip), so a window much shorter than this would do.
RECENT = 32


class RecentlySent:
    """Bounded memory of (paper, seq) already sent, since one event can reach a client through two groups (a
    paper's and topic "papers"'s). A fixed ring with one slot per hash of (paper, seq): checking and recording
    are O(1) and allocate nothing; a slot holds the latest event that hashed there."""

    __slots__ = ("seqs", "papers")

    def __init__(self):
        self.seqs = array("q", bytes(8 * RECENT))  # 0: empty (seqs start at 1)
        self.papers: list[str | None] = [None] * RECENT

    def first_time(self, paper_id: str, seq: int) -> bool:
        """Record the event; False if it was sent before (and is still remembered)."""
        slot = (hash(paper_id) + seq) % RECENT  # str caches its hash
        if self.seqs[slot] == seq and self.papers[slot] == paper_id:
            return False
        self.seqs[slot] = seq
        self.papers[slot] = paper_id
        return True
