"""The transport's startup check refuses untested Daphne, Twisted or Autobahn versions and missing internals,
naming each; the Daphne server builds this project's factories; writer_for picks the server's writer (the ASGI
writer itself: tests/realtime/test_asgi_writer.py)."""

import asyncio
import importlib.metadata

import daphne.http_protocol
import daphne.server
import daphne.ws_protocol
import pytest

from realtime import server
from realtime.transport import WRITER_EXTENSION, Outbound, writer_for
from realtime.transport import daphne as transport
from realtime.transport.asgi import AsgiWriter


def test_the_installed_packages_pass_the_check():
    assert transport.differences() == []
    transport.check_installation()


def installed_except(package: str, answer: str):
    """importlib.metadata.version, answering `answer` for `package` (None: not installed)."""

    def version(name: str) -> str:
        if name == package:
            if answer is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return answer
        return importlib.metadata.version(name)

    return version


@pytest.mark.parametrize("package", sorted(transport.TESTED_VERSIONS))
def test_an_untested_version_is_refused_by_name(monkeypatch, package):
    monkeypatch.setattr(transport, "version", installed_except(package, "99.1.0"))
    with pytest.raises(transport.TransportMismatch, match=rf"{package} 99\.1\.0 is installed; tested with {package}>="):
        transport.check_installation()


@pytest.mark.parametrize("package", sorted(transport.TESTED_VERSIONS))
def test_an_older_version_is_refused_too(monkeypatch, package):
    monkeypatch.setattr(transport, "version", installed_except(package, "1.0"))
    with pytest.raises(transport.TransportMismatch, match=rf"{package} 1\.0 is installed"):
        transport.check_installation()


def test_a_missing_package_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(transport, "version", installed_except("autobahn", None))
    with pytest.raises(transport.TransportMismatch, match="autobahn is not installed"):
        transport.check_installation()


def remove(monkeypatch, internal: transport.Internal) -> None:
    """Make the installed package lack the internal: delete the attribute where it is defined, or replace the
    method that assigns it with one that does not."""
    if internal.set_in is not None:
        monkeypatch.setattr(internal.owner, internal.set_in, lambda self, *args, **kwargs: None)
        return
    defining = [cls for cls in internal.owner.__mro__ if internal.name in vars(cls)]
    assert defining, f"{internal} is not defined anywhere"
    for cls in defining:
        monkeypatch.delattr(cls, internal.name)


@pytest.mark.parametrize("internal", transport.INTERNALS, ids=str)
def test_a_missing_internal_is_refused_by_name(monkeypatch, internal):
    remove(monkeypatch, internal)
    with pytest.raises(transport.TransportMismatch) as refused:
        transport.check_installation()
    assert f"missing internal: {internal}" in str(refused.value)


def test_the_server_command_refuses_to_start_with_the_message(monkeypatch):
    started = []
    monkeypatch.setattr(transport, "version", installed_except("twisted", "27.1.0"))
    monkeypatch.setattr(transport, "run", lambda argv, when_running=None: started.append(argv))
    with pytest.raises(SystemExit) as refused:
        server.main(["-p", "0", "paperpipeline.asgi:application"])
    assert "twisted 27.1.0 is installed" in str(refused.value.code)
    assert started == [], "Daphne never ran"


def test_the_server_command_runs_daphne_once_the_check_passes(monkeypatch):
    started = []
    monkeypatch.setattr(transport, "run", lambda argv, when_running=None: started.append((argv, when_running)))
    server.main(["-p", "0", "paperpipeline.asgi:application"])
    # Once the reactor runs: the start-up heap frozen, full collections deferred (tests/realtime/test_gctune.py,
    # tests/e2e/test_gc_live.py).
    assert started == [(["-p", "0", "paperpipeline.asgi:application"], server.started)]


def test_the_server_builds_this_projects_factories_where_daphne_builds_its_own():
    paper_server = transport.PaperServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    # What Server.run() does; the startup check verifies that it still assigns these two attributes.
    paper_server.http_factory = daphne.server.HTTPFactory(paper_server)
    paper_server.ws_factory = daphne.server.WebSocketFactory(paper_server, server=paper_server.server_name)
    assert isinstance(paper_server.http_factory, transport.PaperHTTPFactory)
    assert isinstance(paper_server.ws_factory, transport.PaperWebSocketFactory)
    assert paper_server.ws_factory.protocol is transport.PaperWebSocketProtocol
    assert daphne.server.WebSocketFactory is not transport.PaperWebSocketFactory, "Daphne's globals untouched"
    assert daphne.server.HTTPFactory is daphne.http_protocol.HTTPFactory


def test_a_connection_takes_the_factorys_options_without_autobahns_debug_dump(monkeypatch):
    import autobahn.websocket.protocol
    from twisted.internet.testing import StringTransport

    dumped = []
    monkeypatch.setattr(autobahn.websocket.protocol, "pformat", lambda value, *a, **k: dumped.append(value) or "")
    paper_server = transport.PaperServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    factory = transport.PaperWebSocketFactory(paper_server, server=paper_server.server_name)
    factory.setProtocolOptions(autoPingInterval=7, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)
    protocol.openHandshakeTimeout = 9  # set on the protocol itself: kept, as Autobahn's own loop keeps it
    protocol.transport = StringTransport()
    protocol._connectionMade()
    for name in daphne.ws_protocol.WebSocketProtocol.CONFIG_ATTRS:
        assert name in vars(protocol), name
    assert (protocol.autoPingInterval, protocol.openHandshakeTimeout, protocol.failByDrop) == (7, 9, False)
    assert dumped == [[]]  # nothing for Autobahn's debug line to pretty-print
    protocol.openHandshakeTimeoutCall.cancel()  # the reactor does not run here


async def test_writer_for_takes_the_servers_writer_else_writes_through_asgi():
    sent = []
    closed = asyncio.Event()

    async def send(message):
        sent.append(message)
        if message["type"] == "websocket.close":
            closed.set()

    daphne_writer = transport.DaphneWriter(protocol=None)
    assert writer_for({"extensions": {WRITER_EXTENSION: daphne_writer}}, send) is daphne_writer
    assert daphne_writer.send is send, "the server's writer sends the other messages through the ASGI send"
    asgi_writer = writer_for({"type": "websocket"}, send)
    assert isinstance(asgi_writer, AsgiWriter) and asgi_writer.paused is False
    asgi_writer.send_event(Outbound('{"x": 1}'))
    await asgi_writer.send_message({"type": "websocket.close", "code": 1000})
    await asyncio.wait_for(closed.wait(), 5)
    assert sent == [{"type": "websocket.send", "text": '{"x": 1}'}, {"type": "websocket.close", "code": 1000}]
    await asgi_writer.drained()
    asgi_writer.stop()


async def test_the_input_queue_hands_messages_in_order_and_wakes_its_receiver():
    queue = transport.InputQueue()
    queue.put_nowait({"type": "websocket.connect"})
    assert await queue.get() == {"type": "websocket.connect"}
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait({"type": "websocket.receive", "text": "1"})
    queue.put_nowait({"type": "websocket.receive", "text": "2"})
    assert await asyncio.wait_for(waiting, 5) == {"type": "websocket.receive", "text": "1"}
    assert await queue.get() == {"type": "websocket.receive", "text": "2"}


async def test_the_input_queue_has_one_receiver_and_survives_a_cancelled_one():
    queue = transport.InputQueue()
    first = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await queue.get()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    again = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await asyncio.wait_for(again, 5) == {"type": "websocket.disconnect", "code": 1000}


class ProducerSlot:
    """A TCP transport's producer registration, as the writer meets it."""

    def __init__(self, producer):
        self.producer = producer

    def registerProducer(self, producer, streaming):
        assert self.producer is None and streaming
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None


def test_the_writer_takes_the_upgraded_http_channels_place_as_producer_and_keeps_no_reference_to_it():
    channel = object()
    protocol = type("Protocol", (), {})()
    protocol.transport = ProducerSlot(channel)
    writer = transport.DaphneWriter.attach(protocol)
    assert protocol.transport.producer is writer
    assert all(getattr(writer, name, None) is not channel for name in transport.DaphneWriter.__slots__)
    writer.pauseProducing()
    assert writer.paused
    writer.resumeProducing()
    assert not writer.paused
