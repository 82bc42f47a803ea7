"""Where the shipped model lives (extract.load reads it once per process; train writes it)."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
TAGGER_FILE = "tagger.crfsuite"
SALIENCE_FILE = "salience.json"
