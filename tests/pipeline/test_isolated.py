"""Text extraction in a child process: same results, errors relayed, and a reader crash fails only the paper."""

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from papers.pipeline.isolated import extract_text_isolated
from papers.pipeline.text import TextExtractionError, extract_text
from tests.conftest import papers_dir
from tests.pipeline.test_limits import shared_stream_pdf

ROOT = Path(__file__).resolve().parents[2]


def children() -> set[int]:
    """Pids of this process's children (a leftover zombie included)."""
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as handle:
        return {int(pid) for pid in handle.read().split()}


def test_the_child_returns_the_same_text_and_pages_as_extracting_in_process():
    path = str(papers_dir() / "LayoutLM.pdf")
    pages_in, pages_out = [], []
    before = children()
    assert extract_text_isolated(path, on_page=lambda *p: pages_out.append(p)) == extract_text(
        path, on_page=lambda *p: pages_in.append(p)
    )
    assert pages_out == pages_in and len(pages_out) > 1
    assert children() == before  # reaped


def test_the_childs_extraction_error_is_raised_with_its_code(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "three.pdf", pages=3, lines=1, chars=5)
    with pytest.raises(TextExtractionError) as caught:
        extract_text_isolated(str(pdf), max_pages=2)
    assert caught.value.code == "too_many_pages"


def test_an_exception_from_on_page_stops_and_reaps_the_child(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "pages.pdf", pages=50, lines=1, chars=5)
    before = children()

    def cancel(done, total):
        raise KeyError("cancelled")

    with pytest.raises(KeyError):
        extract_text_isolated(str(pdf), on_page=cancel)
    assert children() == before


PDFIUM_BOMB = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (400 * 1024 * 1024, resource.RLIM_INFINITY))
from papers.pipeline.isolated import extract_text_isolated
from papers.pipeline.text import TextExtractionError
try:
    extract_text_isolated(sys.argv[1])
except TextExtractionError as exc:
    print(exc.code, exc)
"""


@pytest.mark.timeout(120)
def test_a_page_that_makes_pdfium_abort_under_the_memory_limit_fails_with_out_of_memory(tmp_path):
    # One page drawing a 230,000-character stream 2,000 times: pdfium aborts the process when an allocation
    # fails, so in-process this killed the worker (and every worker it was redelivered to).
    bomb = shared_stream_pdf(tmp_path / "page.pdf", pages=1, lines=1150, repeats=2000)
    assert bomb.stat().st_size < 20_000
    done = subprocess.run(
        [sys.executable, "-c", PDFIUM_BOMB, str(bomb)], cwd=ROOT, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stderr  # the process that asked survived
    assert done.stdout.strip() == (
        "out_of_memory The PDF reader ran out of memory on this file (it needed more than the 400 MiB allowed)."
    )


STUCK_EXTRACTION = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3072 * 1024 * 1024, resource.RLIM_INFINITY))
from papers.pipeline.isolated import extract_text_isolated
extract_text_isolated(sys.argv[1], on_page=lambda done, total: print(done, flush=True))
"""


@pytest.mark.timeout(60)
def test_the_child_dies_with_its_parent_even_inside_a_page(tmp_path):
    # A hard time limit SIGKILLs the pool process; its extraction child, busy in pdfium with one page that
    # takes it tens of seconds (and memory up to the limit), must not go on without it.
    pdf = shared_stream_pdf(tmp_path / "stuck.pdf", pages=2, lines=1150, repeats=1, last_repeats=2000)
    parent = subprocess.Popen(
        [sys.executable, "-c", STUCK_EXTRACTION, str(pdf)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline().strip() == "1"  # page 1 done: the child is inside page 2
        with open(f"/proc/{parent.pid}/task/{parent.pid}/children") as handle:
            (child,) = [int(pid) for pid in handle.read().split()]
        watch = os.pidfd_open(child)
        parent.kill()
        parent.wait()
        readable, _, _ = select.select([watch], [], [], 2)  # a pidfd turns readable when its process ends
        os.close(watch)
        assert readable, "the extraction child outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()
