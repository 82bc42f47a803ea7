"""An entity extractor for end-to-end tests: papers marked SLOW-PAPER take a few seconds, papers marked GATED-PAPER
wait until the test creates the file named by E2E_GATE_FILE, papers marked HUNGRY-PAPER allocate gigabytes, papers
marked STUBBORN-PAPER ignore the soft time limit for a minute; others run as usual."""

import os
import time

from celery.exceptions import SoftTimeLimitExceeded

from papers.pipeline.entities import extract_entities as real_extract_entities

MARKER = "SLOW-PAPER"
TICKS = 40
GATE_MARKER = "GATED-PAPER"
GATE_LIMIT = 180  # seconds: a test that never opens the gate does not hold a worker for ever
HUNGRY_MARKER = "HUNGRY-PAPER"
HUNGRY_BYTES = 4 * 1024**3  # calloc'd: address space, not resident memory, so harmless without a limit
STUBBORN_MARKER = "STUBBORN-PAPER"
STUBBORN_SECONDS = 60


def extract_entities(text: str, *, on_progress=None):
    """Report progress slowly for marked papers (a window to kill the worker in), then extract for real."""
    if GATE_MARKER in text:
        gate = os.environ.get("E2E_GATE_FILE", "")
        deadline = time.monotonic() + GATE_LIMIT
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)  # a file is the one signal the test process and the worker share
    if HUNGRY_MARKER in text:
        bytes(HUNGRY_BYTES)
    if STUBBORN_MARKER in text:
        deadline = time.monotonic() + STUBBORN_SECONDS
        while time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except SoftTimeLimitExceeded:
                pass  # as code stuck in a C call would: only the hard time limit stops it
    if MARKER in text:
        for tick in range(TICKS):
            time.sleep(0.1)
            if on_progress:
                on_progress(tick / TICKS)
    return real_extract_entities(text, on_progress=on_progress)
