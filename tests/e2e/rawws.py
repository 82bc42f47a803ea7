"""A byte-level WebSocket client for tests that need to stop reading: handshake, masked text frames, frame parsing."""

import base64
import json
import os
import socket
import struct


def handshake(port: int, *, rcvbuf: int | None = None, source: str | None = None) -> socket.socket:
    """Open /ws/papers; a small receive buffer makes a non-reading client back up the server quickly; `source`
    is a loopback address (127.x.y.z) to connect from, a client address of its own."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        sock.bind((source, 0))
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/papers HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # byte by byte: nothing after the headers may be swallowed
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def send_json(sock: socket.socket, message: dict) -> None:
    """Send one masked text frame, as a client must."""
    send_frame(sock, 0x1, json.dumps(message).encode())


def send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """Send one masked, final frame with the given opcode (0x1 text, 0xA pong, ...)."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one server frame: (opcode, payload)."""
    first, second = _exact(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _exact(sock, 8))[0]
    return first & 0x0F, _exact(sock, length)


def read_json(sock: socket.socket) -> dict:
    """Read frames until a text frame, answering nothing (pings are ignored)."""
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 0x1:
            return json.loads(payload)
        if opcode == 0x8:
            raise EOFError(f"closed with {struct.unpack('!H', payload[:2])[0] if payload else None}")
