"""Where the shipped model lives, and loading it once per process."""

from __future__ import annotations

from pathlib import Path

from ..entities import _all_mentions

MODEL_DIR = Path(__file__).resolve().parent / "model"
TAGGER_FILE = "tagger.crfsuite"
SALIENCE_FILE = "salience.json"


def gazetteer_spans(text: str) -> list[tuple[int, int, str]]:
    """Character spans and types of the gazetteer's mentions (the tagger's first pass)."""
    mentions, _own = _all_mentions(text)
    return [(m.start, m.end, m.entity_type) for m in mentions]
