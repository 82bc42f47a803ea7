"""Request bodies over HTTP_MAX_BODY_BYTES are refused with 413 by the real Daphne (realtime.server), before
they are read: a declared Content-Length at once, a chunked body as soon as it passes the limit."""

import json
import socket
import time

import pytest
import requests
from django.conf import settings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROMPT = 5.0  # seconds: the refusal needs no body, so it comes as soon as the headers are in


def post_headers(port: int, *lines: str) -> socket.socket:
    """Open a connection and send the head of an anonymous upload POST."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PROMPT)
    head = ["POST /api/papers/ HTTP/1.1", "Host: 127.0.0.1", "Content-Type: multipart/form-data; boundary=b", *lines]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes its side (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def assert_413(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), response[:300]
    assert b"Connection: close" in head
    assert json.loads(body) == {
        "detail": f"The request body is over the limit of {settings.HTTP_MAX_BODY_BYTES} bytes.",
        "code": "request_too_large",
    }


def port_of(system) -> int:
    return int(system.base_url.rsplit(":", 1)[1])


@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(live_system, expect_continue):
    started = time.monotonic()
    sock = post_headers(
        port_of(live_system), f"Content-Length: {2 * 1024**3}", *(["Expect: 100-continue"] if expect_continue else [])
    )
    sock.sendall(b"--b\r\n" + b"x" * 1000)  # a little of the 2 GiB it declared, then it waits for an answer
    response = read_until_closed(sock)
    sock.close()
    assert time.monotonic() - started < PROMPT
    assert not response.startswith(b"HTTP/1.1 100"), "told to send a body it will refuse"
    assert_413(response)


def test_a_chunked_body_is_refused_once_it_passes_the_limit(live_system):
    started = time.monotonic()
    sock = post_headers(port_of(live_system), "Transfer-Encoding: chunked")
    chunk = 1024 * 1024
    left = settings.HTTP_MAX_BODY_BYTES + 1  # one byte over, and no final chunk: only the count can stop it
    while left:
        size = min(chunk, left)
        sock.sendall(b"%x\r\n" % size + b"x" * size + (b"\r\n" if size < left else b""))
        left -= size
    response = read_until_closed(sock)
    sock.close()
    assert time.monotonic() - started < PROMPT * 2
    assert_413(response)


def test_a_body_within_the_limit_still_reaches_the_application(live_system):
    """Anonymous, so the application answers 401: it read the whole body and ran."""
    body = b"x" * (settings.HTTP_MAX_BODY_BYTES - 1024)
    response = requests.post(f"{live_system.base_url}/api/papers/", data=body, timeout=30)
    assert response.status_code == 401, response.text[:300]
    chunked = requests.post(f"{live_system.base_url}/api/papers/", data=iter([b"x" * 1024] * 8), timeout=30)
    assert chunked.status_code == 401, chunked.text[:300]
