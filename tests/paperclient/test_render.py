"""Unit tests: watch_paper's output, plain when not on a terminal, progress bars and entity lines on one."""

import io

from paperclient import Disconnected, parse_event
from paperclient.render import PlainRenderer, RichRenderer, make_renderer
from tests.paperclient.test_events import wire


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def messages():
    return [parse_event(wire(kind)) for kind in
            ("status_changed", "progress_updated", "entity_extracted", "relationship_extracted", "error")]


def test_plain_output_off_a_terminal_names_entities_and_relationships_by_name():
    stream = io.StringIO()
    renderer = make_renderer(stream=stream)
    assert type(renderer) is PlainRenderer
    for message in [*messages(), Disconnected(code=1006, reason="connection lost", retry_in=1.5)]:
        renderer.show(message)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "123e4567 status uploaded -> processing: Processing started"
    assert lines[2] == "123e4567 entity MODEL Transformer (0.95)"
    assert lines[3] == "123e4567 relationship Transformer EVALUATED_ON ent-456 BLEU 28.4 (0.85)"
    assert lines[4] == "123e4567 error processing_failed: Failed to extract entities"
    assert lines[5] == "disconnected (connection lost); reconnecting in 1.5 s"


def test_a_terminal_gets_a_progress_bar_and_the_entities_above_it():
    stream = Terminal()
    renderer = make_renderer(stream=stream)
    assert isinstance(renderer, RichRenderer)
    for message in messages():
        renderer.show(message)
    renderer.close()
    out = stream.getvalue()
    assert "entity MODEL Transformer (0.95)" in out and "\x1b[" in out
    assert renderer.progress.tasks[0].completed == 0.35
    assert make_renderer(stream=Terminal(), plain=True).__class__ is PlainRenderer


def test_control_characters_from_the_server_never_reach_the_terminal():
    import io

    from paperclient.events import parse_event
    from paperclient.render import PlainRenderer

    out = io.StringIO()
    renderer = PlainRenderer(out)
    event = {
        "event_type": "entity_extracted", "paper_id": "123e4567-e89b-12d3-a456-426614174000",
        "timestamp": "2026-11-25T22:01:05.000Z", "entity_id": "e1", "entity_type": "MODEL",
        "entity_name": "Nova\x1b]0;pwned\x07Net\u202e\x9b2J", "confidence": 0.9, "seq": 3, "event_id": "x",
    }
    renderer.show(parse_event(event))
    line = out.getvalue()
    assert "NovaNet" not in line and "Nova\ufffd]0;pwned\ufffdNet\ufffd\ufffd2J" in line
    assert not any(c in line for c in "\x1b\x07\u202e\x9b")
