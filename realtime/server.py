"""Daphne with the project's WebSocket settings: heartbeat, inbound size limit, write backpressure,
permessage-deflate, and events framed once for every socket that receives them; and HTTP request bodies over
HTTP_MAX_BODY_BYTES refused with 413 before they are read.

Run it like daphne itself: `python -m realtime.server -b 127.0.0.1 -p 8000 paperpipeline.asgi:application`.
"""

import asyncio
import json
import os
import sys
import zlib

import daphne.http_protocol
import daphne.server
import daphne.ws_protocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.protocol import PreparedMessage
from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor, tcp


class PaperWebSocketProtocol(daphne.ws_protocol.WebSocketProtocol):
    """Daphne's WebSocket protocol, pinging only once the previous ping was answered."""

    def _sendAutoPing(self) -> None:
        """Daphne pings every interval; a second ping would replace the first one's timeout without cancelling
        it, so a pong later than the interval (but within the timeout) would still drop the connection."""
        if self.autoPingPending is None:
            super()._sendAutoPing()


class PaperWebSocketFactory(daphne.server.WebSocketFactory):
    """Daphne's WebSocket factory with the options Daphne does not expose."""

    protocol = PaperWebSocketProtocol

    def setProtocolOptions(self, **options):
        """Send a close frame with its code (1009, 4011, ping timeout) and give the peer time to read it."""
        options.setdefault("failByDrop", False)
        options.setdefault("closeHandshakeTimeout", 5)
        from django.conf import settings

        if settings.WS_COMPRESSION:
            options.setdefault("perMessageCompressionAccept", accept_deflate)
        super().setProtocolOptions(**options)


# Events are deflated once for all compressed sockets, each on its own (server_no_context_takeover), and
# clients that can are asked not to carry context between their own frames either. Autobahn still keeps one
# zlib compressor (for replies) and one decompressor per compressed connection: small windows keep them small.


class DeflateAccept(PerMessageDeflateOfferAccept):
    """Autobahn's accept, also announcing server_no_context_takeover when the client did not ask for it (RFC 7692
    §7.1.1.1 allows it), so the client may drop its inflate context after each message too."""

    def get_extension_string(self) -> str:
        extension = super().get_extension_string()
        if self.no_context_takeover and "server_no_context_takeover" not in extension:
            extension += "; server_no_context_takeover"
        return extension


DEFLATE_WINDOW_BITS = 10
DEFLATE_MEM_LEVEL = 1


def accept_deflate(offers):
    """Accept the client's first permessage-deflate offer, without context takeover on our side."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            # Small windows and memory level: events are a few hundred bytes, and the zlib state Autobahn
            # keeps per connection for replies (and for inflating client frames) would otherwise cost
            # ~300 KiB per compressed connection (window 32 KiB, memLevel 8).
            return DeflateAccept(
                offer,
                request_no_context_takeover=offer.accept_no_context_takeover,
                request_max_window_bits=DEFLATE_WINDOW_BITS if offer.accept_max_window_bits else 0,
                no_context_takeover=True,
                window_bits=min(DEFLATE_WINDOW_BITS, offer.request_max_window_bits or DEFLATE_WINDOW_BITS),
                mem_level=DEFLATE_MEM_LEVEL,
            )
    return None


class PreparedText:
    """A text message framed once for every socket that sends it, and deflated once for those that compress."""

    __slots__ = ("text", "_plain", "_deflated")

    def __init__(self, text: str):
        self.text = text
        self._plain: bytes | None = None
        self._deflated: dict[int, bytes] = {}

    def plain(self) -> bytes:
        """The uncompressed frame."""
        if self._plain is None:
            self._plain = PreparedMessage(self.text.encode(), False, False, True).payloadHybi
        return self._plain

    def deflated(self, window_bits: int) -> bytes:
        """The frame compressed on its own (no context takeover), with RSV1 set as permessage-deflate says."""
        if window_bits not in self._deflated:
            compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
            payload = compressor.compress(self.text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
            frame = bytearray(PreparedMessage(payload[:-4], False, False, True).payloadHybi)
            frame[0] |= 0x40
            self._deflated[window_bits] = bytes(frame)
        return self._deflated[window_bits]


FLOW_EXTENSION = "paperpipeline.flow"


class TransportFlow:
    """Write side of one WebSocket: backpressure as a Twisted streaming producer (Twisted pauses it while the
    socket's write buffer is over its high-water mark, 64 KiB, and resumes it once the buffer drained), and
    the direct write of prepared events, held and written together while the fan-out hands out a batch."""

    def __init__(self, protocol=None, forward=None):
        self.protocol = protocol  # None in unit tests: events then go through ASGI like any other send
        self.forward = forward  # the producer registered before (Daphne's upgraded HTTP channel), kept informed
        self.held: list[bytes] | None = None  # frames of the batch being handed out, written by release()
        self.paused = False
        self.resumed = asyncio.Event()
        self.resumed.set()

    @classmethod
    def attach(cls, protocol) -> "TransportFlow":
        """Register as the transport's producer, taking over (and forwarding to) the one already there."""
        transport = protocol.transport
        previous = transport.producer
        if previous is not None:
            transport.unregisterProducer()
        flow = cls(protocol, forward=previous)
        transport.registerProducer(flow, True)
        return flow

    def send_prepared(self, prepared: PreparedText) -> bool:
        """Write an event's shared frame to this socket (the bytes Autobahn would frame, built once); False
        when there is no socket to write to directly."""
        protocol = self.protocol
        if protocol is None:
            return False
        if protocol.state != protocol.STATE_OPEN:
            return True  # closing or closed: Autobahn would refuse the message too
        deflate = protocol._perMessageCompress
        if deflate is None:
            frame = prepared.plain()
        elif deflate.server_no_context_takeover:
            frame = prepared.deflated(deflate.server_max_window_bits)
        else:  # never negotiated by accept_deflate; kept correct for any other accept policy
            protocol.sendMessage(prepared.text.encode())
            return True
        if self.held is not None:
            self.held.append(frame)
        else:
            self._write(frame)
        return True

    def hold(self) -> None:
        """Collect prepared frames instead of writing each: one send(2) for a batch of events (without a
        socket, as in unit tests, nothing is ever collected)."""
        if self.held is None:
            self.held = []

    def release(self) -> None:
        """Write the frames collected since hold(), in order, in one write; anything sent otherwise (replies,
        closes) must call this first."""
        held, self.held = self.held, None
        if held:
            self._write(held[0] if len(held) == 1 else b"".join(held))

    def _write(self, data: bytes) -> None:
        if self.protocol.send_queue:
            self.protocol.sendData(data)  # behind Autobahn's own queued writes, to keep their order
        else:
            # Straight to the transport: Autobahn's sendData formats a debug log line on every call.
            write_through(self.protocol.transport, data)

    def pauseProducing(self) -> None:
        self.paused = True
        self.resumed.clear()
        if self.forward is not None:
            self.forward.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self.resumed.set()
        if self.forward is not None:
            self.forward.resumeProducing()

    def stopProducing(self) -> None:
        self.paused = False
        self.resumed.set()
        if self.forward is not None:
            self.forward.stopProducing()


def write_through(transport, data: bytes) -> None:
    """Send now when nothing is queued before `data` on this plain TCP transport (one send(2), as asyncio's
    transports do); else, and for what the kernel did not take, queue in Twisted's buffer, keeping order.

    Twisted's own write() always buffers and registers the socket with the reactor, then sends and
    unregisters it on the next loop turn: two epoll_ctl calls and a turn of latency per frame, per socket."""
    plain = isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False)
    idle = plain and transport.connected and not transport.disconnecting and not transport._writeDisconnected \
        and not transport._tempDataLen \
        and transport.offset == len(transport.dataBuffer)
    if not idle:
        transport.write(data)
        return
    sent = transport.writeSomeData(data)
    if not isinstance(sent, int):
        return  # the connection is lost; Twisted notices on its read side and closes it
    if sent < len(data):
        transport.write(data[sent:])  # the rest waits for the socket to drain; backpressure applies


# --- HTTP: request bodies over the limit are refused before they are read ---

# After refusing, the connection keeps reading (and dropping) what the client is still sending for this long,
# with our side already closed: a client busy sending its body then reads the 413 instead of a reset.
REFUSED_BODY_LINGER = 2.0


class LimitedWebRequest(daphne.http_protocol.WebRequest):
    """Daphne's HTTP request, answering 413 to a body over the server's `http_max_body_bytes` before reading it.

    Daphne hands the application the whole body at once, read from Twisted's buffer: a declared length over
    the limit is refused as soon as the headers are in, and a chunked body (no length) once it passes it."""

    body_refused = False
    body_received = 0

    def gotLength(self, length):
        """Refuse a declared Content-Length over the limit now: not a byte of the body is kept."""
        over = length is not None and length > self.server.http_max_body_bytes
        super().gotLength(0 if over else length)
        if over:
            self.refuse_body()

    def handleContentChunk(self, data: bytes) -> None:
        """Count the body as it arrives and refuse it past the limit; a refused body is dropped."""
        if self.body_refused:
            return
        self.body_received += len(data)
        if self.body_received > self.server.http_max_body_bytes:
            self.refuse_body()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        """A refused request never reaches the application, even if the rest of its body came in already."""
        if not self.body_refused:
            super().requestReceived(command, path, version)

    def refuse_body(self) -> None:
        """Answer 413 with a short JSON body, close our side, and drop what still arrives until the peer closes."""
        self.body_refused = True
        # Twisted answers "100 Continue" right after the headers: a refused request must not be told to send.
        self.requestHeaders.removeHeader(b"expect")
        limit = self.server.http_max_body_bytes
        body = json.dumps(
            {"detail": f"The request body is over the limit of {limit} bytes.", "code": "request_too_large"}
        ).encode()
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.channel.persistent = False
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
            reactor.callLater(REFUSED_BODY_LINGER, transport.loseConnection)
        else:
            transport.loseConnection()


class PaperHTTPFactory(daphne.http_protocol.HTTPFactory):
    """Daphne's HTTP factory making LimitedWebRequest requests."""

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = LimitedWebRequest
        return protocol


class PaperServer(Server):
    """Daphne's server with the inbound WebSocket message limit and the HTTP body limit taken from settings."""

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        self.http_max_body_bytes = settings.HTTP_MAX_BODY_BYTES

        # Autobahn closes a connection that sends more with 1009 (message too big), before the app sees it.
        kwargs["websocket_max_message_size"] = settings.WS_MAX_MESSAGE_BYTES
        kwargs["websocket_max_frame_size"] = settings.WS_MAX_MESSAGE_BYTES
        super().__init__(*args, **kwargs)
        # Twisted listens with a backlog of 50: a reconnect storm overflows it and clients wait out SYN
        # retransmits (1 s, 3 s, 7 s…) before Daphne even sees them.
        self.endpoints = [
            f"{endpoint}:backlog={settings.WS_LISTEN_BACKLOG}"
            if endpoint.startswith("tcp:") and ":backlog=" not in endpoint else endpoint
            for endpoint in self.endpoints
        ]

    def create_application(self, protocol, scope):
        """Give each WebSocket application its connection's flow state (ASGI scope extension)."""
        if scope["type"] == "websocket":
            flow = TransportFlow.attach(protocol)
            scope["extensions"] = {**scope.get("extensions", {}), FLOW_EXTENSION: flow}
        return super().create_application(protocol, scope)

    def run(self):
        """Run Daphne with this project's factory (Server.run builds it from the module global)."""
        daphne.server.WebSocketFactory = PaperWebSocketFactory
        daphne.server.HTTPFactory = PaperHTTPFactory
        super().run()


def main(argv: list[str] | None = None) -> None:
    """Start Daphne with ping interval and timeout from settings unless the command line sets them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
    import django

    django.setup()
    from django.conf import settings

    args = list(sys.argv[1:] if argv is None else argv)
    defaults = ["--ping-interval", str(settings.WS_PING_INTERVAL), "--ping-timeout", str(settings.WS_PING_TIMEOUT)]
    cli = CommandLineInterface()
    cli.server_class = PaperServer
    cli.run(defaults + args)


if __name__ == "__main__":
    main()
