"""Everything that touches Daphne, Twisted or Autobahn, and the startup check of what it relies on.

The project's Daphne server (heartbeat, inbound size limit, permessage-deflate, HTTP body limit) and its writer,
which writes each event's shared frame straight to the socket with Twisted's backpressure; plus the startup
check of the versions and private internals it needs.
"""

import asyncio
import errno
import json
import re
import zlib
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version

import daphne.http_protocol
import daphne.server
import daphne.ws_protocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.compress_deflate import PerMessageDeflate
from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import abstract, reactor, tcp

from .. import connlog
from . import HTTP_BACKPRESSURE_EXTENSION, WRITER_EXTENSION, Outbound

# --- startup check: the versions tested, and the private internals relied on ---

# [lowest, first untested) release of each package this module was tested with.
TESTED_VERSIONS = {
    "daphne": ((4, 2), (4, 3)),
    "twisted": ((26, 10), (26, 11)),
    "autobahn": ((26, 10), (26, 11)),
}


@dataclass(frozen=True)
class Internal:
    """An attribute of Daphne, Twisted or Autobahn outside their documented API that this module relies on: on
    the class (or a base), or, with `set_in`, an instance attribute that the named method assigns."""

    owner: type
    name: str
    set_in: str | None = None

    def __str__(self) -> str:
        where = f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"
        return where + (f" (assigned in {self.set_in}())" if self.set_in else "")

    def present(self) -> bool:
        """Whether the installed package still has it."""
        if self.set_in is None:
            return hasattr(self.owner, self.name)
        code = getattr(getattr(self.owner, self.set_in, None), "__code__", None)
        return code is not None and self.name in code.co_names


INTERNALS = (
    # PaperWebSocketProtocol: one ping at a time; the options copied before Autobahn's connection set-up.
    Internal(daphne.ws_protocol.WebSocketProtocol, "CONFIG_ATTRS"),
    Internal(WebSocketProtocol, "CONFIG_ATTRS", set_in="_connectionMade"),  # read there, in fact
    Internal(WebSocketProtocol, "_sendAutoPing"),
    Internal(WebSocketProtocol, "autoPingPending", set_in="_connectionMade"),
    # DaphneWriter: the negotiated compression, Autobahn's own queue of writes, the frame builder.
    Internal(WebSocketProtocol, "_perMessageCompress", set_in="_connectionMade"),
    Internal(WebSocketProtocol, "send_queue", set_in="_connectionMade"),
    Internal(PerMessageDeflate, "server_no_context_takeover", set_in="__init__"),
    Internal(PerMessageDeflate, "server_max_window_bits", set_in="__init__"),
    Internal(PreparedMessage, "payloadHybi", set_in="__init__"),
    # DaphneWriter._write: whether anything is queued in Twisted's write buffer, and the socket to send on.
    Internal(abstract.FileDescriptor, "_tempDataLen", set_in="__init__"),
    Internal(abstract.FileDescriptor, "offset"),
    Internal(abstract.FileDescriptor, "dataBuffer"),
    Internal(abstract.FileDescriptor, "_writeDisconnected"),
    Internal(tcp.Connection, "socket", set_in="__init__"),
    # PaperServer: the factories Server.run builds, and the hook giving each connection its writer.
    Internal(Server, "http_factory", set_in="run"),
    Internal(Server, "ws_factory", set_in="run"),
    Internal(Server, "create_application"),
    # PaperServer.create_application: Daphne's per-connection bookkeeping and its reply path.
    Internal(Server, "connections", set_in="run"),
    Internal(Server, "handle_reply"),
    # LimitedWebRequest: where Twisted's request reads its body, and Daphne's server on the request.
    Internal(daphne.http_protocol.WebRequest, "server", set_in="__init__"),
    Internal(daphne.http_protocol.WebRequest, "gotLength"),
    Internal(daphne.http_protocol.WebRequest, "handleContentChunk"),
    Internal(daphne.http_protocol.WebRequest, "requestReceived"),
)


class TransportMismatch(RuntimeError):
    """The installed Daphne, Twisted or Autobahn differ from what realtime.transport.daphne was tested with."""


def _release(text: str) -> tuple[int, ...]:
    """The leading numeric parts of a version string ("26.10.2rc1" → (26, 10, 2))."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def differences() -> list[str]:
    """Every way the installed packages differ from the tested ones: versions out of range, internals gone."""
    found = []
    for package, (lowest, beyond) in TESTED_VERSIONS.items():
        tested = f">={'.'.join(map(str, lowest))},<{'.'.join(map(str, beyond))}"
        try:
            installed = version(package)
        except PackageNotFoundError:
            found.append(f"{package} is not installed (tested with {package}{tested})")
            continue
        if not lowest <= _release(installed) < beyond:
            found.append(f"{package} {installed} is installed; tested with {package}{tested}")
    found.extend(f"missing internal: {internal}" for internal in INTERNALS if not internal.present())
    return found


def check_installation() -> None:
    """Refuse to start when the installed packages differ from the tested ones, naming every difference."""
    found = differences()
    if found:
        raise TransportMismatch(
            "The WebSocket transport (realtime/transport/daphne.py) relies on internals of Daphne, Twisted and "
            "Autobahn and was not tested with what is installed:\n  - " + "\n  - ".join(found) + "\nPin the "
            "tested versions (requirements.txt), or check the transport against these and update "
            "TESTED_VERSIONS / INTERNALS (docs/architecture.md, decision record 'Transport')."
        )


# --- WebSocket protocol and factory ---


class PaperWebSocketProtocol(daphne.ws_protocol.WebSocketProtocol):
    """Daphne's WebSocket protocol, pinging only once the previous ping was answered, and connecting without
    Autobahn's eager debug dump."""

    # Autobahn's _connectionMade copies each of these options from the factory, then pretty-prints all 36 of them
    # into a debug log call whether or not debug logging is on: a third of a millisecond per connection, the
    # largest single cost of a reconnect storm's handshakes. The copy is made here and its loop gets nothing.
    FACTORY_OPTIONS = daphne.ws_protocol.WebSocketProtocol.CONFIG_ATTRS
    CONFIG_ATTRS = ()

    def _connectionMade(self) -> None:
        for name in self.FACTORY_OPTIONS:
            if not hasattr(self, name):  # an option set on the protocol itself wins, as in Autobahn's loop
                setattr(self, name, getattr(self.factory, name))
        super()._connectionMade()

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


# --- frames: built once per event, shared by every socket (cached in Outbound.frames) ---

# Cache keys in Outbound.frames: None for the plain frame, the window bits (8-15) for a deflated one.
PLAIN = None


def plain_frame(outbound: Outbound) -> bytes:
    """The event's uncompressed text frame (Autobahn's PreparedMessage framing), built on first use."""
    frame = outbound.frames.get(PLAIN)
    if frame is None:
        frame = outbound.frames[PLAIN] = PreparedMessage(outbound.text.encode(), False, False, True).payloadHybi
    return frame


def deflated_frame(outbound: Outbound, window_bits: int) -> bytes:
    """The frame compressed on its own (no context takeover), with RSV1 set as permessage-deflate says."""
    frame = outbound.frames.get(window_bits)
    if frame is None:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
        payload = compressor.compress(outbound.text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        framed = bytearray(PreparedMessage(payload[:-4], False, False, True).payloadHybi)
        framed[0] |= 0x40
        frame = outbound.frames[window_bits] = bytes(framed)
    return frame


# --- the writer ---

# Why not Autobahn's public sendPreparedMessage(): on a compressed socket it deflates the message again for
# every socket (with that socket's context), and on a plain one it goes through sendData(), which formats a
# debug log line per call and hands the frame to Twisted's buffered write (an epoll registration and a reactor
# turn per frame, per socket). The frames here are PreparedMessage's own bytes, written with DaphneWriter._write().
# Measured with the bench (docs/architecture.md, decision record "Transport"): through sendPreparedMessage the
# server needed 71 % CPU instead of 45 % at 40,000 deliveries/s, lost events at 80,000/s, and, compressed,
# from 50,000/s on; the direct write delivered all of them.


class DaphneWriter:
    """Write side of one WebSocket under Daphne: backpressure as a Twisted streaming producer (Twisted pauses it
    while the socket's write buffer is over its high-water mark, 64 KiB, and resumes it once the buffer
    drained), and the direct write of events' shared frames, held and written together while the fan-out
    hands out a batch."""

    # Slots, and the event and the list made only when first needed: one of these lives per connection.
    __slots__ = ("protocol", "socket", "send", "held", "holding", "paused", "resumed")

    def __init__(self, protocol):
        self.protocol = protocol
        self.socket = None  # the plain TCP socket written to directly (attach()); None: through the transport
        self.send = None  # the application's ASGI send, for messages other than events (bind())
        self.held: list[bytes] | None = None  # frames of the batch being handed out, written by release()
        self.holding = False  # between hold() and release()
        self.paused = False
        self.resumed: asyncio.Event | None = None  # set while not paused; made by the first drained()

    @classmethod
    def attach(cls, protocol) -> "DaphneWriter":
        """Register as the transport's producer in place of the one there, Daphne's upgraded HTTP channel.

        That channel produces nothing once upgraded: its request is never finished, and Twisted's HTTPChannel then
        passes pause and resume only to a request's producer, which a WebSocket never registers. Keeping it
        informed kept it alive too, with its request and headers (~3 KiB per connection)."""
        transport = protocol.transport
        if transport.producer is not None:
            transport.unregisterProducer()
        writer = cls(protocol)
        if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
            writer.socket = transport.socket
        transport.registerProducer(writer, True)
        return writer

    def send_event(self, outbound: Outbound) -> None:
        """Write an event's shared frame to this socket (the bytes Autobahn would frame, built once)."""
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return  # closing or closed: Autobahn would refuse the message too
        deflate = protocol._perMessageCompress
        if deflate is None:
            frame = outbound.frames.get(PLAIN) or plain_frame(outbound)
        elif deflate.server_no_context_takeover:
            frame = deflated_frame(outbound, deflate.server_max_window_bits)
        else:  # never negotiated by accept_deflate; kept correct for any other accept policy
            self.release()
            protocol.sendMessage(outbound.text.encode())
            return
        if not self.holding:
            self._write(frame)
        elif self.held is None:
            self.held = [frame]
        else:
            self.held.append(frame)

    def bind(self, send) -> None:
        """Take the application's ASGI send (realtime.transport.writer_for), through which Daphne sends replies,
        errors and the close."""
        self.send = send

    async def send_message(self, message) -> None:
        """Write the frames collected so far, then send the message through Daphne: behind them on the socket."""
        self.release()
        await self.send(message)

    def discard_events(self) -> None:
        """Nothing to drop: every event was written to Twisted's buffer, which never makes a write wait, so the
        closing error and the close follow them there."""

    def stop(self) -> None:
        """Nothing to stop: Twisted unregisters the producer when the connection is lost."""

    def hold(self) -> None:
        """Collect frames instead of writing each: one send(2) for a batch of events."""
        self.holding = True

    def release(self) -> None:
        """Write the frames collected since hold(), in order, in one write; anything sent otherwise (replies,
        closes) must call this first."""
        self.holding = False
        held = self.held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()  # the list is kept for the next batch
            self._write(data)

    def drained(self):
        """Resolves once Twisted resumed this producer (the socket's buffer drained)."""
        if self.resumed is None:
            self.resumed = asyncio.Event()
            if not self.paused:
                self.resumed.set()
        return self.resumed.wait()

    def _write(self, data: bytes) -> None:
        """Write now: one send(2) when nothing is queued before `data` on a plain TCP socket (as asyncio's transports
        do); else, and for what the kernel did not take, through Twisted's buffer, keeping the order.

        Twisted's own write() always buffers and registers the socket with the reactor, then sends and unregisters
        it on the next loop turn: two epoll_ctl calls and a turn of latency per frame, per socket. Autobahn's
        sendData formats a debug log line on every call. This runs once per delivery, so it is one function."""
        protocol = self.protocol
        if protocol.send_queue:
            protocol.sendData(data)  # behind Autobahn's own queued writes, to keep their order
            return
        transport = protocol.transport
        sock = self.socket
        if sock is None or not transport.connected or transport.disconnecting or transport._writeDisconnected \
                or transport._tempDataLen or transport.offset != len(transport.dataBuffer):
            transport.write(data)
            return
        try:
            sent = sock.send(data)  # Python retries EINTR itself (PEP 475)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            if error.errno != errno.ENOBUFS:
                return  # the connection is lost; Twisted notices on its read side and closes it
            sent = 0
        if sent < len(data):
            transport.write(data[sent:])  # the rest waits for the socket to drain; backpressure applies

    # IPushProducer, called by Twisted.

    def pauseProducing(self) -> None:
        self.paused = True
        if self.resumed is not None:
            self.resumed.clear()

    def resumeProducing(self) -> None:
        self.paused = False
        if self.resumed is not None:
            self.resumed.set()

    def stopProducing(self) -> None:
        self.paused = False
        if self.resumed is not None:
            self.resumed.set()


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


# --- the server ---


class PaperServer(Server):
    """Daphne's server with this project's factories, the inbound WebSocket message limit and the HTTP body
    limit taken from settings, and a DaphneWriter for every WebSocket connection."""

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        self.http_max_body_bytes = settings.HTTP_MAX_BODY_BYTES
        if kwargs.get("action_logger") is not None and settings.LOG_FORMAT == "json":
            kwargs["action_logger"] = connlog.server_action  # the access log as JSON lines, like every other

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

    # Server.run() builds its factories from module globals (daphne.server.HTTPFactory, WebSocketFactory) and
    # offers no hook to choose them. Rather than reassigning those globals (process-wide), the two attributes
    # run() assigns are properties here: each assignment of Daphne's factory is replaced by this project's,
    # built with the same arguments. run() then sets the WebSocket options on ours. The startup check
    # (INTERNALS) verifies that run() still assigns both attributes.

    @property
    def http_factory(self) -> PaperHTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, daphnes: daphne.http_protocol.HTTPFactory) -> None:
        self._http_factory = PaperHTTPFactory(self)

    @property
    def ws_factory(self) -> PaperWebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, daphnes: daphne.server.WebSocketFactory) -> None:
        self._ws_factory = PaperWebSocketFactory(self, server=self.server_name)

    def create_application(self, protocol, scope):
        """Give each WebSocket application its connection's writer (ASGI scope extension) and a lean input queue;
        otherwise Daphne's own, an HTTP request with a way to hear of its socket's backpressure (scope extension)."""
        if scope["type"] == "http":
            scope["extensions"] = {**scope.get("extensions", {}),
                                   HTTP_BACKPRESSURE_EXTENSION: partial(watch_backpressure, protocol)}
        if scope["type"] != "websocket":
            return super().create_application(protocol, scope)
        # Daphne's create_application, with InputQueue for asyncio.Queue.
        if protocol not in self.connections:
            return None
        assert "application_instance" not in self.connections[protocol]
        writer = DaphneWriter.attach(protocol)
        scope["extensions"] = {**scope.get("extensions", {}), WRITER_EXTENSION: writer}
        scope.setdefault("asgi", {"version": "3.0"})
        queue = InputQueue()
        application = self.application(scope=scope, receive=queue.get, send=partial(self.handle_reply, protocol))
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(application)
        return queue


class InputQueue:
    """What a WebSocket connection received, for its application's ASGI receive: the part of asyncio.Queue that
    Daphne uses (put_nowait, get), without its three deques (~2 KiB per idle connection). One receiver at a time,
    as an ASGI application receives."""

    __slots__ = ("items", "waiter")

    def __init__(self):
        self.items: list[dict] = []
        self.waiter: asyncio.Future | None = None  # the receiver's, while it waits

    def put_nowait(self, message: dict) -> None:
        """Queue a message and wake the receiver (never blocks: the queue is unbounded, as Daphne's is)."""
        self.items.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> dict:
        """The next message, waiting for one."""
        while not self.items:
            if self.waiter is not None:
                raise RuntimeError("InputQueue has one receiver at a time")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)


class _PushProducer:
    """Twisted's IPushProducer names over a producer of the HTTP backpressure extension."""

    def __init__(self, producer):
        self.producer = producer

    def pauseProducing(self) -> None:
        self.producer.pause_producing()

    def resumeProducing(self) -> None:
        self.producer.resume_producing()

    def stopProducing(self) -> None:
        self.producer.stop_producing()


def watch_backpressure(request, producer):
    """Register a streaming response's producer on its Twisted request: the HTTP channel pauses it while the
    socket's write buffer is over 64 KiB and resumes it once drained. Returns the unregistering callable."""
    request.registerProducer(_PushProducer(producer), True)

    def stop() -> None:
        if request.producer is not None and request.channel is not None:  # the channel goes with the connection
            request.unregisterProducer()

    return stop


def run(argv: list[str], when_running=None) -> None:
    """Run Daphne's command line with PaperServer, ping interval and timeout from settings unless `argv` sets
    them (Django must be set up); `when_running` is called once the reactor runs, with the sockets listening."""
    from django.conf import settings

    if when_running is not None:
        reactor.callWhenRunning(when_running)
    defaults = ["--ping-interval", str(settings.WS_PING_INTERVAL), "--ping-timeout", str(settings.WS_PING_TIMEOUT)]
    cli = CommandLineInterface()
    cli.server_class = PaperServer
    cli.run(defaults + argv)
