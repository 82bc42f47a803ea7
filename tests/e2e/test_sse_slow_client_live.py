"""An SSE client that stops reading, on this project's Daphne and on uvicorn: the same policy as a WebSocket's, the
error `too_slow` after what was sent before it, in order, and memory bounded by WS_SLOW_CLIENT_MAX_BYTES."""

import asyncio
import json
import os
import socket

import pytest

from tests.conftest import token_for
from tests.e2e.conftest import SERVERS, running_system
from tests.e2e.test_slow_client_live import fast_subscriber, handed_out, owned_paper, publish  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", params=SERVERS)
def slow_system(request, django_db_setup):
    with running_system(redis_url=os.environ["REDIS_URL"], name=f"sse-slow-{request.param}-", only=("daphne",),
                        server=request.param, WS_PING_INTERVAL="20", WS_PING_TIMEOUT="30") as system:
        yield system


def stalled_stream(system, user, paper) -> tuple[socket.socket, bytes]:
    """Open the paper's stream over a raw socket with a tiny receive buffer; read its headers and first event."""
    port = int(system.base_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/papers/{paper.pk}/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Bearer {token_for(user)}\r\nAccept: text/event-stream\r\n\r\n".encode())
    received = b""
    while b'"subscribed"' not in received:
        received += sock.recv(4096)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower(), head
    return sock, rest


def read_until_ended(sock, rest: bytes) -> tuple[list[dict], int]:
    """Decode the chunked body to its end: the data messages, and the bytes of body received."""
    buffer, body = rest, b""
    while True:
        size_line, sep, after = buffer.partition(b"\r\n")
        if sep and len(after) >= int(size_line, 16) + 2:
            size = int(size_line, 16)
            if size == 0:
                break
            body += after[:size]
            buffer = after[size + 2:]
            continue
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
    messages = [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    return messages, len(body)


async def test_an_sse_client_that_stops_reading_ends_with_too_slow_and_bounded_memory(slow_system, owned_paper):  # noqa: F811
    user, paper = owned_paper
    sock, rest = await asyncio.to_thread(stalled_stream, slow_system, user, paper)
    observer = await fast_subscriber(slow_system, user)
    pad = "x" * 25_000
    payloads = [{"event_type": "entity_extracted", "paper_id": str(paper.pk), "seq": seq, "pad": pad}
                for seq in range(1, 321)]  # 8 MB for a client that reads nothing
    await asyncio.to_thread(publish, payloads, user.pk)
    await handed_out(observer)
    messages, received = await asyncio.to_thread(read_until_ended, sock, rest)
    assert messages[0]["type"] == "subscribed"
    assert (messages[-1]["type"], messages[-1]["code"]) == ("error", "too_slow"), (len(messages), messages[-1])
    seqs = [m["seq"] for m in messages[1:-1]]
    assert seqs == list(range(1, len(seqs) + 1)), "what was sent before the error is in order, without holes"
    assert len(seqs) < 320
    assert received < 4 * 1024 * 1024  # the 1 MiB cap plus socket buffers, not the 8 MB published
    sock.close()
    await observer.close()
