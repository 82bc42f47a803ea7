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
from .protocol import ProtocolError, listed
from .snapshots import visible_paper_state
from .subscriptions import Subscriptions
from .transport import Outbound


class Forwarder:
    """Filters, de-duplicates and hands to the delivery policy what the fan-out brings one connection."""

    __slots__ = ("subscriptions", "delivery", "identity", "on_control", "holding")

    def __init__(self, subscriptions: Subscriptions, delivery: Delivery, identity: Identity,
                 on_control: Callable[[dict[str, Any]], None]):
        self.subscriptions = subscriptions
        self.delivery = delivery
        self.identity = identity  # who the connection acts for now (its user is None until it authenticates)
        self.on_control = on_control
        self.holding: list[dict[str, Any]] | None = None

    def take(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Take one message of a group the connection is in: forward an event, pass on a control message. Returns
        None, or what the caller must await (closing a client found too slow)."""
        # Runs once per event per connection, so it is a plain call (no coroutine to create) that decides with
        # dict and set lookups what Subscriptions keeps ready.
        if self.holding is not None:
            self.holding.append(message)
        elif message["type"] == PAPER_MESSAGE:
            # A paper subscription was authorized when made (and is revoked on change); topic events are
            # authorized one by one, since a connection may sit in a paper's group it was refused.
            if self.subscriptions.accepts(message, self.identity.user):
                return self.delivery.deliver(message["paper_id"], message["event_type"], message["prepared"])
        elif message["type"] == SYSTEM_MESSAGE:
            if self.subscriptions.wants_system():
                self.delivery.write(message["prepared"])
        else:
            self.on_control(message)
        return None

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
            self.subscriptions.record_paper(paper_id, event_types,
                                            self.covered_by_snapshot(state.snapshot["seq"], state.owner_id))
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
                pending = self.take(message)
                if pending is not None:
                    await pending

    def covered_by_snapshot(self, seq: int, owner_id: Any) -> int:
        """The seq up to which held events are covered by a snapshot current to `seq` (and so dropped): `seq`,
        or 0 when topic "papers" was already bringing the connection this paper's events (nothing may be dropped)."""
        if self.subscriptions.topic_types and paper_visible_to(self.identity.user, owner_id):
            return 0
        return seq

    async def replay(self, paper_id: str, event_types: frozenset[str] | None, payloads: list[dict[str, Any]]) -> None:
        """Send logged events a resuming client missed; the replay obeys backpressure like live events."""
        metrics.WS_REPLAYED_EVENTS.inc(len(payloads))  # once per replay, not per event
        for payload in payloads:
            if event_types is None or payload["event_type"] in event_types:
                pending = self.delivery.deliver(paper_id, payload["event_type"], Outbound(encode(payload)))
                if pending is not None:
                    await pending
