"""What one connection forwards from the fan-out: the events it wants and may see, each once, in order.

Live events are held back while a paper subscription starts; control messages go to the consumer."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.conf import settings

from paperpipeline import metrics
from papers.selectors import paper_visible_to

from .auth import Identity
from .broadcast import PAPER_MESSAGE, SYSTEM_MESSAGE
from .delivery import Delivery
from .events import encode
from .protocol import TOPIC_PAPERS, ProtocolError, listed
from .snapshots import visible_paper_state
from .subscriptions import RecentlySent, Subscriptions
from .transport import Outbound


class Forwarder:
    """Filters, de-duplicates and hands to the delivery policy what the fan-out brings one connection."""

    def __init__(self, subscriptions: Subscriptions, delivery: Delivery, identity: Identity,
                 on_control: Callable[[dict[str, Any]], None]):
        self.subscriptions = subscriptions
        self.delivery = delivery
        self.identity = identity  # who the connection acts for now (its user is None until it authenticates)
        self.on_control = on_control
        self.recently_sent = RecentlySent()
        self.holding: list[dict[str, Any]] | None = None

    async def take(self, message: dict[str, Any]) -> None:
        """Take one message of a group the connection is in: forward an event, pass on a control message."""
        # Runs once per event per connection: one frame, no helper coroutines.
        if self.holding is not None:
            self.holding.append(message)
        elif message["type"] == PAPER_MESSAGE:
            # Forward a paper event, already encoded, if a subscription wants it and it was not sent yet. A paper
            # subscription was authorized when made (and is revoked on change); topic events are authorized one
            # by one, since a connection may sit in a paper's group it was refused.
            paper_id, event_type = message["paper_id"], message["event_type"]
            if self.subscriptions.wants_paper_event(
                paper_id, event_type, self.identity.user, message.get("owner_id")
            ) and self.recently_sent.first_time(paper_id, message.get("seq")):
                await self.delivery.deliver(paper_id, event_type, message["prepared"])
        elif message["type"] == SYSTEM_MESSAGE:
            if self.subscriptions.wants_system():
                self.delivery.write(message["prepared"])
        else:
            self.on_control(message)

    async def subscribe_paper(self, paper_id: str, event_types: frozenset[str] | None, since: int | None,
                              reply: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Subscribe to a paper: reply with its snapshot (not_found if the user may not see it), replay what the
        client missed since `since`, then continue live."""
        # Join before reading the log, so no event falls between the two; live events are held until the
        # reply and replay are sent, and the floor then drops those the snapshot or replay covered.
        async with self.live_events_held():
            await self.subscriptions.join_paper(paper_id)
            state = await visible_paper_state(self.identity.user, paper_id, since, settings.REALTIME_REPLAY_LIMIT)
            if state is None:
                await self.subscriptions.drop_paper(paper_id)  # refused, or no longer visible: an earlier one ends
                raise ProtocolError("not_found", "No such paper.")
            self.snapshot_sent(paper_id, state.snapshot["seq"], state.owner_id)
            self.subscriptions.record_paper(paper_id, event_types)
            answer = {"type": "subscribed", "paper_id": paper_id, "event_types": listed(event_types),
                      "snapshot": state.snapshot}
            if state.recovery is not None:
                answer["recovery"] = state.recovery
            await reply(answer)
            await self.replay(paper_id, event_types, state.missed)

    @contextlib.asynccontextmanager
    async def live_events_held(self) -> AsyncIterator[None]:
        """Hold live events back while a subscription's reply and replay go out; forward them after, in order."""
        self.holding = []
        try:
            yield
        finally:
            held, self.holding = self.holding, None
            for message in held:
                await self.take(message)

    def snapshot_sent(self, paper_id: str, seq: int, owner_id: Any) -> None:
        """A snapshot current to `seq` is going out: held events up to it are covered by it, unless topic
        "papers" was already bringing the connection this paper's events (then nothing may be dropped)."""
        if not (TOPIC_PAPERS in self.subscriptions.topics and paper_visible_to(self.identity.user, owner_id)):
            self.recently_sent.raise_floor(paper_id, seq)

    async def replay(self, paper_id: str, event_types: frozenset[str] | None, payloads: list[dict[str, Any]]) -> None:
        """Send logged events a resuming client missed; the replay obeys backpressure like live events."""
        metrics.WS_REPLAYED_EVENTS.inc(len(payloads))  # once per replay, not per event
        for payload in payloads:
            if event_types is None or payload["event_type"] in event_types:
                await self.delivery.deliver(paper_id, payload["event_type"], Outbound(encode(payload)))
