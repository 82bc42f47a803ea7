"""The delivery policy (realtime.delivery) on a fake writer: coalescing, the cap, order, the closing error, other
messages, and batches; no server, no Redis."""

import asyncio

from realtime.delivery import Delivery
from realtime.transport import Outbound

A, B = "paper-a", "paper-b"


class FakeWriter:
    """A writer whose backpressure the test switches, recording what it is asked to do in order."""

    def __init__(self):
        self.paused = False
        self.log: list[str] = []
        self._drained = asyncio.Event()
        self._drained.set()

    def pause(self) -> None:
        self.paused = True
        self._drained.clear()

    def resume(self) -> None:
        self.paused = False
        self._drained.set()

    def send_event(self, outbound: Outbound) -> None:
        self.log.append(outbound.text)

    def hold(self) -> None:
        self.log.append("<hold>")

    def release(self) -> None:
        self.log.append("<release>")

    def drained(self):
        return self._drained.wait()

    async def send_message(self, message: dict) -> None:
        self.log.append(message["text"])

    def discard_events(self) -> None:
        self.log.append("<discard>")

    def stop(self) -> None:
        self.log.append("<stop>")


class Closer:
    """The consumer's side of a too_slow close: counts the calls."""

    def __init__(self):
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def settle(pending) -> None:
    """Await what Delivery.deliver left to await (the close of a client too slow), as the fan-out does."""
    if pending is not None:
        await pending


def delivery(max_backlog_bytes: int = 1000) -> tuple[Delivery, FakeWriter, Closer]:
    writer, closer = FakeWriter(), Closer()
    return Delivery(writer, max_backlog_bytes, closer), writer, closer


async def test_events_go_straight_to_the_writer_while_it_keeps_up():
    policy, writer, _ = delivery()
    await settle(policy.deliver(A, "progress_updated", Outbound("p1")))
    await settle(policy.deliver(A, "status_changed", Outbound("s2")))
    assert writer.log == ["p1", "s2"]
    assert policy.flusher is None


async def test_progress_is_coalesced_per_paper_while_paused_and_the_latest_sent_on_drain():
    policy, writer, closer = delivery()
    writer.pause()
    for text in ("a1", "a2", "a3"):
        await settle(policy.deliver(A, "progress_updated", Outbound(text)))
    await settle(policy.deliver(B, "progress_updated", Outbound("b1")))
    assert writer.log == [], "nothing is written while the socket is backed up"
    flusher = policy.flusher
    assert flusher is not None
    writer.resume()
    await flusher
    assert writer.log == ["a3", "b1"], "only the latest progress of each paper, once drained"
    assert policy.flusher is None and policy.held_progress == {}
    assert closer.calls == 0


async def test_a_held_progress_goes_out_before_the_next_event_of_its_paper():
    policy, writer, _ = delivery()
    writer.pause()
    await settle(policy.deliver(A, "progress_updated", Outbound("a-progress")))
    await settle(policy.deliver(B, "progress_updated", Outbound("b-progress")))
    await settle(policy.deliver(A, "entity_extracted", Outbound("a-entity")))
    assert writer.log == ["a-progress", "a-entity"], "in seq order; the other paper's progress stays held"
    assert set(policy.held_progress) == {B}
    policy.stop()


async def test_past_the_cap_the_connection_is_closed_exactly_once_and_nothing_more_is_sent():
    policy, writer, closer = delivery(max_backlog_bytes=100)
    writer.pause()
    await settle(policy.deliver(A, "entity_extracted", Outbound("x" * 60)))
    await settle(policy.deliver(A, "entity_extracted", Outbound("y" * 60)))  # 120 bytes backed up: over the cap
    await settle(policy.deliver(A, "status_changed", Outbound("z")))
    await settle(policy.deliver(B, "progress_updated", Outbound("p")))
    writer.resume()
    await settle(policy.deliver(A, "status_changed", Outbound("after")))
    assert closer.calls == 1
    assert policy.too_slow
    assert writer.log == ["x" * 60], "what came before the cap, nothing after it"
    policy.stop()


async def test_the_cap_counts_one_backed_up_stretch_not_a_lifetime():
    policy, writer, closer = delivery(max_backlog_bytes=100)
    writer.pause()
    await settle(policy.deliver(A, "entity_extracted", Outbound("x" * 60)))
    writer.resume()
    await settle(policy.deliver(A, "entity_extracted", Outbound("y" * 60)))
    writer.pause()
    await settle(policy.deliver(A, "entity_extracted", Outbound("z" * 60)))
    assert closer.calls == 0
    assert writer.log == ["x" * 60, "y" * 60, "z" * 60]


async def test_a_held_progress_counts_toward_the_cap():
    policy, writer, closer = delivery(max_backlog_bytes=100)
    writer.pause()
    await settle(policy.deliver(A, "progress_updated", Outbound("p" * 50)))
    await settle(policy.deliver(A, "entity_extracted", Outbound("e" * 60)))
    assert closer.calls == 1
    assert writer.log == []
    policy.stop()


async def test_nothing_is_written_after_the_closing_error():
    policy, writer, _ = delivery()
    writer.pause()
    await settle(policy.deliver(A, "progress_updated", Outbound("held")))
    flusher = policy.flusher
    policy.closing = True
    await settle(policy.deliver(B, "status_changed", Outbound("status")))
    policy.write(Outbound("system"))
    writer.resume()
    await flusher
    assert writer.log == [], "neither new events nor the held progress follow the closing error"


async def test_a_batch_is_held_then_released_around_its_events():
    policy, writer, _ = delivery()
    policy.hold()
    await settle(policy.deliver(A, "status_changed", Outbound("s1")))
    await settle(policy.deliver(B, "status_changed", Outbound("s2")))
    policy.release()
    assert writer.log == ["<hold>", "s1", "s2", "<release>"]


async def test_stop_cancels_the_flusher():
    policy, writer, _ = delivery()
    writer.pause()
    await settle(policy.deliver(A, "progress_updated", Outbound("held")))
    flusher = policy.flusher
    policy.stop()
    writer.resume()
    await asyncio.gather(flusher, return_exceptions=True)
    assert flusher.cancelled()
    assert writer.log == ["<stop>"], "the held progress is never written"


async def test_other_messages_go_through_the_writer_after_the_events_before_them():
    policy, writer, _ = delivery()
    await settle(policy.deliver(A, "status_changed", Outbound("s1")))
    await policy.send_message({"type": "websocket.send", "text": "reply"})
    await settle(policy.deliver(A, "status_changed", Outbound("s2")))
    assert writer.log == ["s1", "reply", "s2"]


async def test_the_closing_error_of_a_backed_up_connection_drops_the_events_not_written_yet():
    policy, writer, _ = delivery()
    policy.closing = True
    await policy.send_message({"type": "websocket.send", "text": "error"})
    writer.pause()
    await policy.send_message({"type": "websocket.send", "text": "error"})
    assert writer.log == ["error", "<discard>", "error"], "only while backed up: else the events go out first"


async def test_stop_stops_the_writer():
    policy, writer, _ = delivery()
    policy.stop()
    assert writer.log == ["<stop>"]
