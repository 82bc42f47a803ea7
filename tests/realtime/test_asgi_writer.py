"""The ASGI writer (realtime/transport/asgi.py) on a fake ASGI send that waits as uvicorn's does while the socket
is full: one outbox in order, never blocking its callers, backpressure at the high- and low-water marks, the
closing error not queued behind dropped events, its task cancelled on stop; and the delivery policy and the
consumer on it."""

import asyncio
import json

import pytest

from realtime.broadcast import paper_group
from realtime.delivery import Delivery
from realtime.fanout import fanout
from realtime.transport import Outbound
from realtime.transport.asgi import HIGH_WATER, LOW_WATER, AsgiWriter
from tests.conftest import token_for
from tests.realtime.test_consumer import TIMEOUT, make_paper
from tests.realtime.test_slow_clients import event, redis_message


class BlockingSend:
    """An ASGI send that waits for a permit per message, as uvicorn's waits while the socket's buffer is full;
    it records what was sent, the message each send was called with, and the sends cancelled while waiting."""

    def __init__(self, open_: bool = False):
        self.permits = asyncio.Semaphore(0)
        self.open = open_
        self.called: list[dict] = []
        self.sent: list[dict] = []
        self.cancelled: list[dict] = []
        self.changed = asyncio.Condition()

    async def __call__(self, message: dict) -> None:
        await self._note(self.called, message)
        if not self.open:
            try:
                await self.permits.acquire()
            except asyncio.CancelledError:
                self.cancelled.append(message)
                raise
        await self._note(self.sent, message)

    async def _note(self, into: list, message: dict) -> None:
        async with self.changed:
            into.append(message)
            self.changed.notify_all()

    def allow(self, count: int) -> None:
        for _ in range(count):
            self.permits.release()

    async def until(self, condition) -> None:
        """Wait until condition() holds for what was called and sent."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(condition), TIMEOUT)

    def texts(self) -> list[str]:
        return [message.get("text", message["type"]) for message in self.sent]


def completes_at_once(awaitable) -> bool:
    """Whether a coroutine runs to its end without waiting for anything (never suspends); a plain call that left
    nothing to await (Delivery.deliver while the socket keeps up) did not wait either."""
    if awaitable is None:
        return True
    try:
        awaitable.send(None)
    except StopIteration:
        return True
    awaitable.close()
    return False


def at_once(awaitable) -> None:
    """Run a call that must never wait (queueing an event or a message), failing the test if it would."""
    assert completes_at_once(awaitable), "queueing waited for the socket"


def text_of(size: int, tag: str = "") -> Outbound:
    return Outbound((tag + "x" * size)[:size])


async def test_events_and_other_messages_go_out_in_the_order_they_were_sent():
    send = BlockingSend()
    writer = AsgiWriter(send)
    writer.send_event(Outbound("e1"))
    at_once(writer.send_message({"type": "websocket.send", "text": "reply"}))
    writer.send_event(Outbound("e2"))
    at_once(writer.send_message({"type": "websocket.close", "code": 4000}))
    send.allow(4)
    await send.until(lambda: len(send.sent) == 4)
    assert send.texts() == ["e1", "reply", "e2", "websocket.close"]
    writer.stop()


async def test_sending_never_waits_for_a_send_the_server_has_not_finished():
    send = BlockingSend()
    writer = AsgiWriter(send)
    writer.send_event(Outbound("first"))
    await send.until(lambda: len(send.called) == 1)  # the writer task now waits in the server's send
    for index in range(100):
        writer.send_event(text_of(1000, f"e{index}"))
    assert completes_at_once(writer.send_message({"type": "websocket.send", "text": "reply"}))
    assert len(send.called) == 1 and send.sent == []
    send.allow(102)
    await send.until(lambda: len(send.sent) == 102)
    assert send.texts()[0] == "first" and send.texts()[-1] == "reply"
    writer.stop()


async def test_paused_past_the_high_water_mark_while_a_send_waits_and_drained_at_the_low_water_mark():
    send = BlockingSend()
    writer = AsgiWriter(send)
    size = 4096
    count = HIGH_WATER // size  # exactly at the mark: not over it
    for _ in range(count):
        writer.send_event(text_of(size))
    await send.until(lambda: len(send.called) == 1)
    assert writer.unsent == HIGH_WATER and writer.paused is False
    writer.send_event(text_of(size))
    assert writer.paused is True
    drained = asyncio.ensure_future(writer.drained())
    # Sending one at a time: paused until what is unsent (in flight included) is down to the low-water mark.
    sent = 0
    while writer.unsent - size > LOW_WATER:
        send.allow(1)
        sent += 1
        await send.until(lambda n=sent: len(send.sent) == n and len(send.called) == n + 1)
        assert writer.paused is True and not drained.done(), writer.unsent
    send.allow(1)
    await send.until(lambda: len(send.sent) == sent + 1)
    await asyncio.wait_for(drained, TIMEOUT)
    assert writer.unsent <= LOW_WATER and writer.paused is False
    writer.stop()


async def test_a_batch_queued_at_once_is_not_backpressure_until_a_send_waits():
    send = BlockingSend()
    writer = AsgiWriter(send)
    for _ in range(40):  # 160 KiB queued before the writer task ran: it has not tried the socket yet
        writer.send_event(text_of(4096))
    assert writer.paused is False
    await send.until(lambda: len(send.called) == 1)
    assert writer.paused is True, "now a send waits with more than the high-water mark behind it"
    writer.stop()


async def test_a_socket_that_keeps_up_is_never_paused():
    send = BlockingSend(open_=True)
    writer = AsgiWriter(send)
    for round_ in range(3):
        for _ in range(40):
            writer.send_event(text_of(4096))
        await send.until(lambda n=40 * (round_ + 1): len(send.sent) == n)
        assert writer.paused is False and writer.unsent == 0
    writer.stop()


async def test_discarding_drops_queued_events_and_the_waiting_event_so_the_error_and_close_go_next():
    send = BlockingSend()
    writer = AsgiWriter(send)
    writer.send_event(Outbound("e1"))
    await send.until(lambda: len(send.called) == 1)
    at_once(writer.send_message({"type": "websocket.send", "text": "reply"}))
    for index in range(2, 30):
        writer.send_event(text_of(4096, f"e{index}"))
    writer.discard_events()
    at_once(writer.send_message({"type": "websocket.send", "text": "error"}))
    at_once(writer.send_message({"type": "websocket.close", "code": 4011}))
    await send.until(lambda: len(send.called) == 2)  # the waiting send of e1 was abandoned, the task went on
    assert [message["text"] for message in send.cancelled] == ["e1"]
    send.allow(3)
    await send.until(lambda: len(send.sent) == 3)
    assert send.texts() == ["reply", "error", "websocket.close"], "replies kept, events dropped"
    assert writer.unsent == 0 and writer.paused is False
    writer.send_event(Outbound("after"))
    assert not writer.outbox and writer.task is not None, "nothing is queued after the close"
    writer.stop()


async def test_a_waiting_reply_is_not_abandoned():
    send = BlockingSend()
    writer = AsgiWriter(send)
    at_once(writer.send_message({"type": "websocket.send", "text": "reply"}))
    await send.until(lambda: len(send.called) == 1)
    writer.send_event(Outbound("e1"))
    writer.discard_events()
    at_once(writer.send_message({"type": "websocket.close", "code": 4011}))
    send.allow(2)
    await send.until(lambda: len(send.sent) == 2)
    assert send.texts() == ["reply", "websocket.close"] and send.cancelled == []
    writer.stop()


async def test_stop_cancels_the_writer_task_and_nothing_is_sent_after():
    send = BlockingSend()
    writer = AsgiWriter(send)
    writer.send_event(Outbound("e1"))
    writer.send_event(Outbound("e2"))
    await send.until(lambda: len(send.called) == 1)
    task = writer.task
    writer.stop()
    await asyncio.wait([task], timeout=TIMEOUT)
    assert task.cancelled()
    assert [message["text"] for message in send.cancelled] == ["e1"]
    writer.send_event(Outbound("e3"))
    assert writer.task is None, "a stopped writer starts no task again"
    send.allow(5)
    assert send.sent == []


async def test_an_idle_writer_task_is_cancelled_by_stop_too():
    writer = AsgiWriter(BlockingSend(open_=True))
    writer.send_event(Outbound("e1"))
    task = writer.task
    await writer.send.until(lambda: len(writer.send.sent) == 1)
    writer.stop()
    await asyncio.wait([task], timeout=TIMEOUT)
    assert task.cancelled()


async def test_a_send_that_fails_ends_the_writer_without_raising_into_its_callers():
    calls = []

    async def disconnected(message):
        calls.append(message)
        raise OSError("client disconnected")  # uvicorn's ClientDisconnected is an OSError

    writer = AsgiWriter(disconnected)
    writer.send_event(Outbound("e1"))
    writer.send_event(Outbound("e2"))
    task = writer.task
    await asyncio.wait([task], timeout=TIMEOUT)
    assert task.done() and task.exception() is None
    assert [message["text"] for message in calls] == ["e1"]
    writer.send_event(Outbound("e3"))
    assert writer.unsent == 0 and not writer.outbox and writer.paused is False


# --- the delivery policy on this writer: what uvicorn now gets ---


async def test_the_delivery_policy_caps_a_stalled_socket_then_the_error_and_close_go_out_next():
    send = BlockingSend()
    writer = AsgiWriter(send)

    async def too_slow() -> None:  # what the consumer's _fail does for too_slow
        policy.closing = True
        await policy.send_message({"type": "websocket.send", "text": "too_slow"})
        await policy.send_message({"type": "websocket.close", "code": 4011})

    policy = Delivery(writer, 100_000, too_slow)
    at_once(policy.deliver("a", "entity_extracted", Outbound("seq-1 " + "x" * 9994)))
    at_once(policy.deliver("a", "entity_extracted", Outbound("seq-2 " + "x" * 9994)))
    await send.until(lambda: len(send.called) == 1)  # the socket is full: this send waits
    send.allow(1)  # the socket takes one more, then is full again
    await send.until(lambda: len(send.called) == 2)
    for seq in range(3, 60):  # 10 KB each, 560 KB in all: over the 100 KB cap once paused
        at_once(policy.deliver("a", "entity_extracted", Outbound(f"seq-{seq} " + "x" * 9994)))
    assert policy.too_slow
    send.allow(100)
    await send.until(lambda: send.sent and send.sent[-1]["type"] == "websocket.close")
    texts = send.texts()
    assert texts[-2:] == ["too_slow", "websocket.close"]
    seqs = [int(text.split()[0].removeprefix("seq-")) for text in texts[:-2]]
    assert seqs == [1], "the events queued behind the full socket were dropped, none sent after the error"
    assert send.cancelled and send.cancelled[0]["text"].startswith("seq-2 ")
    policy.stop()


async def test_progress_is_coalesced_on_this_writer_and_the_latest_sent_once_drained():
    send = BlockingSend()
    writer = AsgiWriter(send)
    policy = Delivery(writer, 10_000_000, None)
    for _ in range(HIGH_WATER // 4096 + 2):
        at_once(policy.deliver("other", "status_changed", text_of(4096, "status")))
    await send.until(lambda: len(send.called) == 1)
    assert writer.paused
    for seq in range(1, 51):
        at_once(policy.deliver("a", "progress_updated", Outbound(f"progress-{seq}")))
    send.open = True
    send.allow(1)
    await asyncio.wait_for(policy.flusher, TIMEOUT)
    await send.until(lambda: send.texts()[-1] == "progress-50")
    assert [text for text in send.texts() if text.startswith("progress")] == ["progress-50"]
    policy.stop()


# --- the consumer on this writer (any ASGI server but this project's Daphne) ---


class ObservedWriter(AsgiWriter):
    """The consumer's AsgiWriter, telling the test when a message other than an event was queued."""

    def __init__(self, send):
        super().__init__(send)
        self.messages: list[dict] = []
        self.queued = asyncio.Event()

    async def send_message(self, message: dict) -> None:
        await super().send_message(message)
        self.messages.append(message)
        self.queued.set()


class AsgiConnection:
    """The consumer through the full ASGI stack with a send that waits like uvicorn's while the socket is full."""

    def __init__(self, monkeypatch):
        from paperpipeline.asgi import application
        from realtime import consumers

        self.send = BlockingSend()
        self.writers: list[ObservedWriter] = []
        monkeypatch.setattr(consumers, "writer_for", lambda scope, send: self.writers.append(ObservedWriter(send))
                            or self.writers[-1])
        self.inbox: asyncio.Queue = asyncio.Queue()
        scope = {"type": "websocket", "path": "/ws/papers", "raw_path": b"/ws/papers", "query_string": b"",
                 "headers": [(b"host", b"localhost"), (b"origin", b"http://localhost")], "subprotocols": [],
                 "client": ["127.0.0.1", 5000], "server": ["127.0.0.1", 80]}
        self.app = asyncio.ensure_future(application(scope, self.inbox.get, self.send))

    async def receive(self) -> dict:
        """Let the socket take one more message, and return it."""
        count = len(self.send.sent)
        self.send.allow(1)
        await self.send.until(lambda: len(self.send.sent) > count)
        return self.send.sent[count]

    async def request(self, message: dict) -> dict:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(message)})
        return json.loads((await self.receive())["text"])

    async def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.app, TIMEOUT)


async def handed_out(payload: dict, user) -> None:
    """Hand one event to the process's connections as the fan-out does; it must not wait for any socket."""
    batch = [redis_message(paper_group(payload["paper_id"]), payload, user.pk)]
    await asyncio.wait_for(fanout()._deliver(batch), TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_an_event_a_reply_and_an_event_reach_the_client_in_that_order_while_its_socket_is_full(
    user, monkeypatch
):
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    ws = AsgiConnection(monkeypatch)
    ws.inbox.put_nowait({"type": "websocket.connect"})
    assert (await ws.receive())["type"] == "websocket.accept"
    assert (await ws.request({"type": "authenticate", "token": token_for(user)}))["type"] == "authenticated"
    assert (await ws.request({"type": "subscribe", "paper_id": paper_id}))["type"] == "subscribed"
    [writer] = ws.writers
    # From here the socket takes nothing: event 1 waits in the server's send, the rest in the outbox.
    await handed_out(event(paper_id, 1, "status_changed"), user)
    writer.queued.clear()
    ws.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps({"type": "ping", "id": "p"})})
    await asyncio.wait_for(writer.queued.wait(), TIMEOUT)  # the consumer answered: the pong is queued
    await handed_out(event(paper_id, 2, "status_changed"), user)
    first, reply, second = [json.loads((await ws.receive())["text"]) for _ in range(3)]
    assert (first["seq"], reply["type"], reply["id"], second["seq"]) == (1, "pong", "p", 2)
    task = writer.task
    await ws.disconnect()
    await asyncio.wait([task], timeout=TIMEOUT)
    assert task.cancelled(), "the writer task ends with the connection"
    assert writer.task is None


@pytest.mark.django_db(transaction=True)
async def test_the_writer_task_is_cancelled_when_the_client_disconnects_while_a_send_waits(user, monkeypatch):
    paper = await make_paper(user)
    ws = AsgiConnection(monkeypatch)
    ws.inbox.put_nowait({"type": "websocket.connect"})
    assert (await ws.receive())["type"] == "websocket.accept"
    ws.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps({"type": "ping", "id": "p"})})
    [writer] = ws.writers
    await ws.send.until(lambda: len(ws.send.called) == 2)  # the pong waits for a socket that takes nothing
    task = writer.task
    await ws.disconnect()
    await asyncio.wait([task], timeout=TIMEOUT)
    assert task.cancelled() and [message["type"] for message in ws.send.cancelled] == ["websocket.send"]
    assert paper is not None
