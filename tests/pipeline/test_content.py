"""The one sniffing rule, and that upload validation and text extraction both follow it."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from papers.pipeline.content import PDF, SNIFF_BYTES, TEXT, sniff
from papers.pipeline.text import TextExtractionError, extract_text
from papers.services import paper_file_validate

CUT_EURO = "€".encode()[:2]  # the first two of the three bytes of "€"

CASES = {
    "pdf": (b"%PDF-1.7\n...", PDF, ""),
    "utf-8 text": ("Résumé of GPT-2".encode(), TEXT, ""),
    "utf-8 with a byte-order mark": ("\ufeffBERT".encode(), TEXT, ""),
    "a character cut by the window": (b"a" * (SNIFF_BYTES - 2) + "€".encode() + b"more", TEXT, ""),
    "pdf header after junk": (b"junk\n%PDF-1.7\n", TEXT, ""),
    "utf-16": ("Résumé".encode("utf-16"), None, "binary"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00", None, "binary"),
    "rtf (ASCII, but a binary format)": (b"{\\rtf1\\ansi hello}", None, "binary"),
    "latin-1": ("café crème".encode("latin-1"), None, "not_utf8"),
    "a bad byte at the window's end": (b"a" * (SNIFF_BYTES - 2) + b"\xe2\x41" + b"more", None, "not_utf8"),
    "a cut character in a short file": (b"abc" + CUT_EURO, None, "not_utf8"),
}


@pytest.mark.parametrize("name", CASES)
def test_the_rule(name):
    content, content_type, reason = CASES[name]
    verdict = sniff(content[:SNIFF_BYTES])
    assert (verdict.content_type, verdict.reason) == (content_type, reason)


@pytest.mark.parametrize("name", CASES)
def test_upload_and_extraction_agree(name, tmp_path):
    content, content_type, reason = CASES[name]
    extension = ".pdf" if content_type == PDF else ".txt"
    try:
        accepted = paper_file_validate(file=SimpleUploadedFile(f"f{extension}", content))
    except ValidationError as exc:
        accepted = exc.code
    path = tmp_path / f"f{extension}"
    path.write_bytes(content)
    try:
        extract_text(str(path))
        extracted = "text"
    except TextExtractionError as exc:
        extracted = exc.code
    if content_type is None:
        assert accepted == "unsupported_type"
        assert extracted == ("decode_failed" if reason == "not_utf8" else "unsupported_type")
    else:
        assert accepted == content_type
        assert extracted not in ("unsupported_type", "decode_failed")
