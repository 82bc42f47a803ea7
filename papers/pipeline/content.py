"""The one content sniffing rule: what a file is (a PDF, UTF-8 plain text, or neither) from its first bytes.

Upload validation (papers.services.paper_file_validate) and text extraction (papers.pipeline.text) both ask it,
so a file the upload accepts as text is read as text, and one it refuses would be refused by extraction too."""

from __future__ import annotations

from dataclasses import dataclass

PDF = "application/pdf"
TEXT = "text/plain"
PDF_MAGIC = b"%PDF-"
# How much of a file the rule reads.
SNIFF_BYTES = 8192
# UTF-8 encodes a character in at most 4 bytes: a window can end inside one.
UTF8_MAX_CUT = 3

# Signatures of binary formats that are neither PDF nor text (some of them are valid ASCII, such as RTF).
BINARY_MAGICS: tuple[bytes, ...] = (
    b"PK\x03\x04",  # zip, docx, epub
    b"\x89PNG",
    b"\xff\xd8\xff",  # jpeg
    b"GIF8",
    b"\xd0\xcf\x11\xe0",  # legacy MS Office
    b"\x1f\x8b",  # gzip
    b"{\\rtf",
)


@dataclass(frozen=True)
class Sniffed:
    """The verdict: a content type, or None with why ("binary", or "not_utf8" for text in another encoding)."""

    content_type: str | None
    reason: str = ""


def sniff(head: bytes) -> Sniffed:
    """Classify a file by its first SNIFF_BYTES bytes (all of it when shorter).

    A PDF starts with %PDF-. Plain text has no NUL byte, starts with no binary signature, and is UTF-8 (a
    UTF-8 byte-order mark allowed); a character cut by the end of a full window does not count against it."""
    head = head[:SNIFF_BYTES]
    if head.startswith(PDF_MAGIC):
        return Sniffed(PDF)
    if b"\x00" in head or head.startswith(BINARY_MAGICS):
        return Sniffed(None, "binary")  # UTF-16 too: it has NUL bytes in any Latin text
    if not _decodes_as_utf8(head):
        return Sniffed(None, "not_utf8")
    return Sniffed(TEXT)


def sniff_file(path: str) -> Sniffed:
    """sniff() on a file's first bytes; OSError if it cannot be read."""
    with open(path, "rb") as handle:
        return sniff(handle.read(SNIFF_BYTES))


def _decodes_as_utf8(head: bytes) -> bool:
    """Whether bytes are UTF-8, allowing a character cut at the end of a full sniffing window."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = exc.reason == "unexpected end of data" and exc.start >= len(head) - UTF8_MAX_CUT
        return cut and len(head) == SNIFF_BYTES
    return True
