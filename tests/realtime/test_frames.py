"""Events framed once for every socket: the shared frames are the WebSocket frames Autobahn would send."""

import struct
import zlib

from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept

from realtime.transport import Outbound
from realtime.transport.daphne import accept_deflate, deflated_frame, plain_frame


def parse(frame: bytes) -> tuple[int, bytes]:
    """(first byte, payload) of one unmasked server frame."""
    length, offset = frame[1] & 0x7F, 2
    if length == 126:
        (length,), offset = struct.unpack("!H", frame[2:4]), 4
    elif length == 127:
        (length,), offset = struct.unpack("!Q", frame[2:10]), 10
    assert not frame[1] & 0x80, "server frames are never masked"
    assert len(frame) == offset + length
    return frame[0], frame[offset:]


def test_plain_frames_carry_the_text_at_every_length_encoding():
    for size in (0, 125, 126, 65535, 65536):
        text = "é" * (size // 2) + "x" * (size % 2)
        first, payload = parse(plain_frame(Outbound(text)))
        assert first == 0x81, "FIN and text opcode, no RSV bits"
        assert payload.decode() == text


def test_deflated_frames_set_rsv1_and_inflate_to_the_text_on_their_own():
    text = '{"event_type": "entity_extracted", "entity_name": "BERT", "padding": "' + "abc" * 400 + '"}'
    outbound = Outbound(text)
    for bits in (9, 15):
        first, payload = parse(deflated_frame(outbound, bits))
        assert first == 0xC1, "FIN, RSV1 (compressed) and text opcode"
        assert len(payload) < len(text)
        # A fresh decompressor per message: what a client does under server_no_context_takeover.
        assert zlib.decompressobj(-bits).decompress(payload + b"\x00\x00\xff\xff").decode() == text
    assert deflated_frame(outbound, 15) is deflated_frame(outbound, 15), "compressed once, then shared"


def test_deflate_is_accepted_without_server_context_takeover():
    offer = PerMessageDeflateOffer(accept_no_context_takeover=True, accept_max_window_bits=True)
    accept = accept_deflate([offer])
    assert isinstance(accept, PerMessageDeflateOfferAccept)
    assert accept.no_context_takeover is True
    assert accept.request_no_context_takeover is True, "the client is asked not to keep a context either"
    assert accept.window_bits == accept.request_max_window_bits == 10, "small zlib state on both sides"
    assert accept_deflate([PerMessageDeflateOffer(request_max_window_bits=9)]).window_bits == 9, "the client's cap"
    assert accept_deflate([]) is None
