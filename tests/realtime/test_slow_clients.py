"""Delivery policy for a connection whose socket is backed up: progress coalesced, the rest capped then closed."""

import json

import pytest

from realtime import bus
from realtime.broadcast import broadcast_event, layer_message, paper_group
from realtime.events import SystemStatusEvent
from realtime.fanout import fanout
from realtime.protocol import CLOSE_TOO_SLOW
from realtime.transport import WRITER_EXTENSION
from realtime.transport.daphne import DaphneWriter
from tests.conftest import communicator, token_for
from tests.realtime.test_consumer import TIMEOUT, make_paper, send

pytestmark = pytest.mark.django_db(transaction=True)


def event(paper_id: str, seq: int, event_type: str, size: int = 0) -> dict:
    """A paper event payload as the outbox would publish it (fields beyond the routing ones are opaque here)."""
    return {"event_type": event_type, "paper_id": paper_id, "seq": seq, "padding": "x" * size}


async def subscribed_with_flow(user, paper):
    """A connection on Daphne's writer whose write backpressure the test controls, as Twisted would."""
    ws = communicator()
    flow = DaphneWriter(SocketlessProtocol(ws.output_queue))
    ws.scope["extensions"] = {WRITER_EXTENSION: flow}
    await ws.connect(timeout=TIMEOUT)
    await send(ws, {"type": "authenticate", "token": token_for(user)})
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await send(ws, {"type": "subscribe", "topic": "system"})
    return ws, flow


async def processed(ws) -> None:
    """Wait until the consumer handled everything published so far (a system event is never held back)."""
    await broadcast_event(SystemStatusEvent(queue_size=7, active_workers=0, processing_rate=0, system_load=0))
    assert json.loads(await ws.receive_from(timeout=TIMEOUT))["event_type"] == "system_status"


async def receive_seqs(ws, count: int) -> list[int]:
    return [json.loads(await ws.receive_from(timeout=TIMEOUT))["seq"] for _ in range(count)]


async def test_progress_is_coalesced_while_backed_up_and_the_latest_sent_on_drain(user):
    paper = await make_paper(user)
    ws, flow = await subscribed_with_flow(user, paper)
    paper_id = str(paper.pk)
    flow.pauseProducing()
    for seq in range(1, 51):
        await broadcast_event(event(paper_id, seq, "progress_updated"), owner_id=user.pk)
    await broadcast_event(event(paper_id, 51, "progress_updated"), owner_id=user.pk)
    await processed(ws)
    flow.resumeProducing()
    assert await receive_seqs(ws, 1) == [51], "only the latest progress survives"
    await broadcast_event(event(paper_id, 52, "status_changed"), owner_id=user.pk)
    assert await receive_seqs(ws, 1) == [52]
    await ws.disconnect()


async def test_other_events_keep_order_and_are_never_dropped_silently(user, settings):
    settings.WS_SLOW_CLIENT_MAX_BYTES = 10_000
    paper = await make_paper(user)
    ws, flow = await subscribed_with_flow(user, paper)
    paper_id = str(paper.pk)
    flow.pauseProducing()
    await broadcast_event(event(paper_id, 1, "progress_updated"), owner_id=user.pk)
    await broadcast_event(event(paper_id, 2, "entity_extracted", size=100), owner_id=user.pk)
    assert await receive_seqs(ws, 2) == [1, 2], "a held progress goes out before the paper's next event"
    for seq in range(3, 200):  # 2 KB each: over the 10 KB cap after a few
        await broadcast_event(event(paper_id, seq, "entity_extracted", size=2000), owner_id=user.pk)
    delivered = []
    while True:
        output = await ws.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            break
        message = json.loads(output["text"])
        if message.get("type") == "error":
            assert message["code"] == "too_slow"
        else:
            delivered.append(message["seq"])
    assert output["code"] == CLOSE_TOO_SLOW
    assert delivered == list(range(3, 3 + len(delivered))) and len(delivered) < 10, "capped, in order, then closed"


class SocketlessProtocol:
    """What DaphneWriter reads of Autobahn's protocol; its transport hands each frame written to the socket
    to the test's ASGI output queue, so frames written directly and ASGI messages share one order, as on a
    real socket."""

    STATE_OPEN = "open"
    state = STATE_OPEN
    _perMessageCompress = None
    send_queue = ()

    def __init__(self, output_queue):
        self.transport = self
        self.output_queue = output_queue

    def write(self, data: bytes) -> None:
        """Split unmasked server frames (as plain_frame frames them) and queue each text as ASGI would."""
        while data:
            length, start = data[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(data[2:4]), 4
            elif length == 127:
                length, start = int.from_bytes(data[2:10]), 10
            self.output_queue.put_nowait({"type": "websocket.send", "text": data[start:start + length].decode()})
            data = data[start + length:]


def redis_message(group: str, payload: dict, owner_id: int) -> dict:
    """A message as the fan-out reads it from Redis: the group's bus channel and the bus's encoding."""
    return {"channel": bus.channel(group).encode(), "data": bus.encode(layer_message(payload, owner_id))}


async def test_the_too_slow_error_is_the_last_message_before_the_close_even_mid_batch(user, settings):
    settings.WS_SLOW_CLIENT_MAX_BYTES = 10_000
    paper = await make_paper(user)
    paper_id = str(paper.pk)
    ws = communicator()
    flow = DaphneWriter(SocketlessProtocol(ws.output_queue))
    ws.scope["extensions"] = {WRITER_EXTENSION: flow}
    await ws.connect(timeout=TIMEOUT)
    await send(ws, {"type": "authenticate", "token": token_for(user)})
    await send(ws, {"type": "subscribe", "paper_id": paper_id})
    flow.pauseProducing()
    # One batch, as the fan-out reads what Redis sent together: the events before the cap are collected for
    # one write at the end of the batch, and the cap is crossed inside it.
    batch = [redis_message(paper_group(paper_id), event(paper_id, seq, "entity_extracted", size=2000), user.pk)
             for seq in range(1, 21)]
    await fanout()._deliver(batch)
    outputs = []
    while (output := await ws.receive_output(timeout=TIMEOUT))["type"] != "websocket.close":
        outputs.append(json.loads(output["text"]))
    assert output["code"] == CLOSE_TOO_SLOW
    assert (outputs[-1].get("type"), outputs[-1].get("code")) == ("error", "too_slow"), outputs[-2:]
    seqs = [message["seq"] for message in outputs[:-1]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 20, "in order, capped, all before the error"
    await ws.disconnect()
