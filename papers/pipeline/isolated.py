"""Text extraction in a forked child process, so a PDF that crashes the reader fails only that paper."""

# pdfium does not raise when an allocation fails: it aborts the process. Under the worker's address-space
# limit, a PDF that expands without bound (one page drawing the same compressed stream thousands of times)
# would kill the worker process itself, be redelivered and kill the next one. In a child, the crash is
# just this extraction's, and is reported with its own error code.

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection

from .text import MAX_PAGES, MAX_TEXT_CHARS, TextExtractionError, extract_text

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def extract_text_isolated(
    path: str,
    *,
    on_page: Callable[[int, int], None] | None = None,
    max_pages: int = MAX_PAGES,
    max_chars: int = MAX_TEXT_CHARS,
) -> str:
    """extract_text run in a forked child; a child killed by a signal fails with out_of_memory or unreadable_pdf."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: extract, report, and leave without running the parent's exit handlers
        try:
            os.close(read_fd)
            _child(path, Connection(write_fd, readable=False), max_pages=max_pages, max_chars=max_chars)
        finally:
            os._exit(0)  # whatever happened, the child never returns into the caller's code
    os.close(write_fd)
    reader = Connection(read_fd, writable=False)
    try:
        text = _receive(reader, on_page)
    except BaseException:  # an error reported by the child, a cancellation, a time limit: the child goes
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        reader.close()
        _pid, status = os.waitpid(pid, 0)
    if text is None:
        raise _crashed(status)
    return text


def _child(path: str, writer: Connection, *, max_pages: int, max_chars: int) -> None:
    """Extract in the child and send pages, then the text or the error, to the parent."""
    try:
        _die_with_parent()
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # the parent's time-limit handler is not the child's
        text = extract_text(
            path, on_page=lambda done, total: writer.send(("page", done, total)),
            max_pages=max_pages, max_chars=max_chars,
        )
        writer.send(("text", text))
    except TextExtractionError as exc:
        writer.send(("error", exc.code, str(exc)))
    except MemoryError:
        limit = _memory_limit() or "is available"
        writer.send(("error", "out_of_memory", f"Reading the document needed more memory than {limit}."))
    except Exception as exc:  # reported to the parent, which fails the paper with it
        writer.send(("error", "text_extraction_failed", f"Text extraction failed: {exc.__class__.__name__}: {exc}"))
    finally:
        writer.close()


def _die_with_parent() -> None:
    """Have the kernel kill this child when its parent dies (a hard time limit kills the parent with SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except AttributeError:  # no prctl outside Linux; the parent still kills the child on every other way out
        pass


def _receive(reader: Connection, on_page: Callable[[int, int], None] | None) -> str | None:
    """Relay the child's page reports; return its text, raise its error, or None if it died without either."""
    while True:
        try:
            message = reader.recv()
        except EOFError:
            return None
        if message[0] == "page":
            if on_page is not None:
                on_page(message[1], message[2])
        elif message[0] == "text":
            return message[1]
        else:
            raise TextExtractionError(message[2], code=message[1])


def _crashed(status: int) -> TextExtractionError:
    """The error for a child that ended without an answer: under a memory limit, an abort is pdfium out of memory."""
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        if os.WTERMSIG(status) == signal.SIGABRT and _memory_limit():
            return TextExtractionError(
                f"The PDF reader ran out of memory on this file (it needed more than {_memory_limit()}).",
                code="out_of_memory",
            )
        return TextExtractionError(f"The PDF reader crashed on this file ({name}).", code="unreadable_pdf")
    code = os.waitstatus_to_exitcode(status)
    return TextExtractionError(f"Text extraction ended without a result (exit status {code}).")


def _memory_limit() -> str:
    """This process's address-space limit for messages ("the 1024 MiB allowed"), or "" when there is none."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return "" if soft == resource.RLIM_INFINITY else f"the {soft // (1024 * 1024)} MiB allowed"
