"""An entity extractor for end-to-end fault tests: papers marked SLOW-PAPER take a few seconds, others run as usual."""

import time

from papers.pipeline.entities import extract_entities as real_extract_entities

MARKER = "SLOW-PAPER"
TICKS = 40


def extract_entities(text: str, *, on_progress=None):
    """Report progress slowly for marked papers (a window to kill the worker in), then extract for real."""
    if MARKER in text:
        for tick in range(TICKS):
            time.sleep(0.1)
            if on_progress:
                on_progress(tick / TICKS)
    return real_extract_entities(text, on_progress=on_progress)
