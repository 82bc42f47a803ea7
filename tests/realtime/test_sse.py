"""Unit tests of the SSE stream's pieces: positions (ids), hostile ids refused, and the writer's frames."""

import asyncio
import uuid

import pytest

from realtime import sse
from realtime.events import encode
from realtime.transport import Outbound

PAPER = "123e4567-e89b-12d3-a456-426614174000"


def test_an_all_papers_position_round_trips():
    cursors = {PAPER: 57, str(uuid.uuid4()): 1}
    text = sse.encode_cursors(cursors)
    assert len(text.split(",")[0]) == 22 + 1 + 2
    assert sse.parse_cursors(text) == cursors
    assert sse.parse_cursors("") == {}


@pytest.mark.parametrize("text", [
    "x" * (sse.MAX_LAST_EVENT_ID + 1), "abc.1", "A" * 22 + ".", "A" * 22 + ".-1", "A" * 22 + ".1e3",
    "A" * 22 + "." + "9" * 20, ",".join(["A" * 22 + ".1"] * (sse.CURSOR_LIMIT + 1)), "A" * 22 + ".1\n",
])
def test_a_hostile_all_papers_position_is_refused(text):
    with pytest.raises(sse.InvalidPosition):
        sse.parse_cursors(text)


@pytest.mark.parametrize("text", ["", "-1", "1.0", "٣", "9" * 20, str(2**63)])
def test_a_hostile_paper_position_is_refused(text):
    with pytest.raises(sse.InvalidPosition):
        sse.parse_seq(text)


def test_an_event_is_framed_once_with_the_streams_own_id():
    async def run():
        ids = []
        writer = sse.SseWriter(lambda paper_id, seq: ids.append((paper_id, seq)) or f"p{seq}")
        event = Outbound(encode({"event_type": "status_changed", "paper_id": PAPER, "seq": 3}))
        writer.send_event(event)
        writer.send_event(Outbound(encode({"event_type": "system_status", "queue_size": 1})))
        await writer.send_message({"type": "subscribed"}, "7")
        writer.comment("ping")
        assert event.frames[sse.SSE_FRAME][:2] == (PAPER, 3)
        assert ids == [(PAPER, 3)]
        assert b"".join(writer.queued) == (
            b'id: p3\ndata: {"event_type":"status_changed","paper_id":"' + PAPER.encode() + b'","seq":3}\n\n'
            b'data: {"event_type":"system_status","queue_size":1}\n\n'
            b'id: 7\ndata: {"type":"subscribed"}\n\n'
            b": ping\n\n"
        )

    asyncio.run(run())


def test_the_writer_is_paused_by_the_socket_or_by_what_waits_unsent():
    async def run():
        writer = sse.SseWriter(lambda paper_id, seq: str(seq))
        assert not writer.paused
        writer.pause_producing()
        assert writer.paused
        drained = asyncio.ensure_future(writer.drained())
        await asyncio.sleep(0)
        assert not drained.done()
        writer.resume_producing()
        await asyncio.wait_for(drained, 1)
        writer.comment("x" * sse.HIGH_WATER)
        assert writer.paused
        writer.discard_events()
        assert not writer.paused
        writer.end()
        writer.comment("after the end")
        assert writer.queued == []

    asyncio.run(run())
