"""Turn an uploaded paper (PDF or plain text) into normalized text."""

# Speed (sample papers, 9-23 pages): pypdfium2 reads 160-400 pages/s; extract_text with normalization 100-270 pages/s.

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pypdfium2 as pdfium

from .content import PDF, sniff_file
from .vocabulary import COMPOUND_TAILS, HYPHEN_PREFIXES

# Defaults of extract_text's limits (the service passes PAPER_MAX_PAGES and PAPER_MAX_TEXT_CHARS).
MAX_PAGES = 500
MAX_TEXT_CHARS = 2_000_000

class TextExtractionError(Exception):
    """Raised when a file cannot be turned into text."""

    def __init__(self, message: str, *, code: str = "text_extraction_failed"):
        super().__init__(message)
        self.code = code


def extract_text(
    path: str,
    *,
    on_page: Callable[[int, int], None] | None = None,
    max_pages: int = MAX_PAGES,
    max_chars: int = MAX_TEXT_CHARS,
) -> str:
    """Return normalized text of a PDF or plain-text file; on_page(done, total) after each page.

    A PDF of more than max_pages pages fails with "too_many_pages" before any page is read. Text longer than
    max_chars fails with "text_too_long" as soon as the count passes the limit, so a small file whose pages
    expand to millions of characters (one compressed content stream shared by every page) is never expanded
    in full. Failing rather than truncating is deliberate: entities and relationships from the first part
    of a document would look complete while most of it was ignored; a deployment with longer documents
    raises the limit instead.
    """
    try:
        sniffed = sniff_file(path)  # the rule the upload was validated by
    except OSError as exc:
        raise TextExtractionError(f"Cannot read the file: {exc.strerror or exc}") from exc
    if sniffed.reason == "not_utf8":
        raise TextExtractionError("The file is not valid UTF-8 text.", code="decode_failed")
    if sniffed.content_type is None:
        raise TextExtractionError("Only PDF and plain-text files are supported.", code="unsupported_type")
    if sniffed.content_type == PDF:
        pages = _pdf_pages(path, on_page, max_pages=max_pages, max_chars=max_chars)
    else:
        pages = [_plain_text(path, max_chars=max_chars)]
        if on_page is not None:
            on_page(1, 1)
    text = normalize_text("\n\n".join(pages))
    if not text.strip():
        raise TextExtractionError("The document contains no extractable text.", code="empty_document")
    if len(text) > max_chars:  # ligatures expand in normalization ("ﬃ" is three letters)
        raise _too_long(max_chars)
    return text


def _too_long(max_chars: int) -> TextExtractionError:
    """The error for a document with more text than the limit."""
    return TextExtractionError(
        f"The document has more than {max_chars} characters of text, the limit; nothing was extracted.",
        code="text_too_long",
    )


def _pdf_pages(
    path: str, on_page: Callable[[int, int], None] | None, *, max_pages: int, max_chars: int
) -> list[str]:
    """Raw text of every PDF page, in order, refusing more pages or characters than the limits."""
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise TextExtractionError(f"The PDF cannot be opened: {exc}", code="unreadable_pdf") from exc
    try:
        total = len(document)
        if total == 0:
            raise TextExtractionError("The PDF has no pages.", code="empty_document")
        if total > max_pages:
            raise TextExtractionError(
                f"The PDF has {total} pages; the limit is {max_pages}.", code="too_many_pages"
            )
        pages = []
        remaining = max_chars
        for index in range(total):
            # Asking for one character more than the budget tells "over the limit" without copying the rest.
            page_text = _pdf_page_text(document, index, remaining + 1)
            remaining -= len(page_text)
            if remaining < 0:
                raise _too_long(max_chars)
            pages.append(page_text)
            if on_page is not None:
                on_page(index + 1, total)
        return pages
    finally:
        document.close()


def _pdf_page_text(document: pdfium.PdfDocument, index: int, max_chars: int) -> str:
    """Raw text of one page (at most max_chars characters), closing pdfium handles even on failure."""
    page = textpage = None
    try:
        page = document[index]
        textpage = page.get_textpage()
        return textpage.get_text_range(count=min(textpage.count_chars(), max_chars))
    except pdfium.PdfiumError as exc:
        raise TextExtractionError(f"Page {index + 1} of the PDF cannot be read: {exc}", code="unreadable_pdf") from exc
    finally:
        if textpage is not None:
            textpage.close()
        if page is not None:
            page.close()


def _plain_text(path: str, *, max_chars: int) -> str:
    """Decode a file sniffed as text strictly as UTF-8 (a BOM dropped), refusing more than max_chars characters."""
    try:
        with open(path, encoding="utf-8-sig", errors="strict", newline="") as handle:
            text = handle.read(max_chars + 1)
    except UnicodeDecodeError as exc:
        message = f"The file is not valid UTF-8 text (byte {exc.start})."
        raise TextExtractionError(message, code="decode_failed") from exc
    except OSError as exc:
        raise TextExtractionError(f"Cannot read the file: {exc.strerror or exc}") from exc
    if len(text) > max_chars:
        raise _too_long(max_chars)
    return text


# --- normalization ---

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
# Spaces that look like a space but are not " "; zero-width characters vanish.
SPACE_CHARS = {
    c: " " for c in "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t\f\v"
}
ZERO_WIDTH = {c: "" for c in "\u200b\u200c\u200d\u2060\ufeff"}
# pdfium marks a line-end hyphen it removed (line break included) with U+FFFE (older builds: U+0002).
HYPHEN_MARK = "\ufffe"
# Other control characters carry nothing readable, and databases refuse NUL in text.
CONTROL_CHARS = {chr(c): "" for c in range(32) if chr(c) not in "\n\r\t\f\v"} | {"\x02": HYPHEN_MARK}
TRANSLATION = str.maketrans({**LIGATURES, **SPACE_CHARS, **ZERO_WIDTH, **CONTROL_CHARS})

SOFT_HYPHEN = "\u00ad"
_WORD = r"[^\W_]+"
# Linear time on hostile text: a match starts only where a word starts and takes the word and the break whole
# (possessive), so an unbroken run of letters or spaces is read once instead of once per position.
_BROKEN = re.compile(
    rf"(?<![^\W_])([^\W_]++)(?>-[ ]*+\n\s*+|{SOFT_HYPHEN}[ ]*+\n?\s*+|{HYPHEN_MARK}[ ]*+\n?\s*+)({_WORD})"
)
_HYPHENATED_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_HYPHENATED_REST = re.compile(r"(?:-[^\W\d_]+)+")

# Some fonts map the fi/ffi/ff/fl ligature glyphs to "!", '"', "#", "$" (e.g. "veri!ed", "e#orts").
_GLYPH_LIGATURES = {"!": "fi", '"': "ffi", "#": "ff", "$": "fl"}
_BROKEN_GLYPH = re.compile(r"(?<=[a-z])[!\"#$](?=[a-z]|-\n)|(?<![^\s(/\[-])!(?=[a-z])")
LIGATURE_SPELLINGS = ("fi", "ffi", "ff", "fl")
_LETTERS = re.compile(r"[^\W\d_]+")
_LETTERS_AT_END = re.compile(r"[^\W\d_]+$")
# Only trust the repair when the document clearly has that defect, so genuine "!" and "$" survive elsewhere.
BROKEN_GLYPH_MIN_HITS = 5


def normalize_text(text: str) -> str:
    """Fix ligatures, soft/line-end hyphenation and whitespace; keep line and paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(TRANSLATION)
    text = _repair_glyph_ligatures(text)
    text = _join_broken_words(text)
    text = text.replace(HYPHEN_MARK, "").replace(SOFT_HYPHEN, "")
    text = re.sub(r" {2,}", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _repair_glyph_ligatures(text: str) -> str:
    """Undo fonts that map ligature glyphs to ASCII punctuation, when the document shows that defect."""
    if len(_BROKEN_GLYPH.findall(text)) < BROKEN_GLYPH_MIN_HITS:
        return text
    # Fonts disagree on which glyph is which ligature (bold '"' is "fi", regular '"' is "ffi"), so each
    # repair picks the ligature that spells a word the draft repair shows elsewhere in the document.
    draft = _BROKEN_GLYPH.sub(lambda m: _GLYPH_LIGATURES[m.group()], text)
    vocabulary = Counter(word.lower() for word in _LETTERS.findall(draft))

    def repair(match: re.Match[str]) -> str:
        before = _LETTERS_AT_END.search(text, max(0, match.start() - 40), match.start())
        after = _LETTERS.match(text, match.end())
        stem, tail = (before.group() if before else ""), (after.group() if after else "")
        default = _GLYPH_LIGATURES[match.group()]
        return max(LIGATURE_SPELLINGS, key=lambda lig: (vocabulary[f"{stem}{lig}{tail}".lower()], lig == default))

    return _BROKEN_GLYPH.sub(repair, text)


def _join_broken_words(text: str) -> str:
    """Rejoin words split at line ends: "represen-/tation" -> "representation", "pre-/training" stays hyphenated."""
    # Count only words that are whole, so the fragments of split words ("troducing") are not words.
    counts = Counter(word.lower() for word in _HYPHENATED_WORD.findall(_BROKEN.sub(" ", text)))

    def rejoin(match: re.Match[str]) -> str:
        rest = _HYPHENATED_REST.match(text, match.end())  # "head-/to-head": judge by "-head" too
        return _rejoin(match.group(1), match.group(2), counts, rest.group().lower() if rest else "")

    return _BROKEN.sub(rejoin, text)


def _rejoin(left: str, right: str, counts: Counter[str], rest: str = "") -> str:
    """Choose between "left-right" and "leftright" from how the document spells the word elsewhere."""
    joined, hyphenated = f"{left}{right}", f"{left}-{right}"
    if left[-1].isdigit() or right[0].isdigit():
        return hyphenated  # "GPT-2", "WikiText-103"
    # The counts hold letter-only words, so compare the letter parts ("Multi-woz5" looks up "multiwoz").
    head_match, tail_match = _LETTERS_AT_END.search(left), _LETTERS.match(right)
    head = (head_match.group() if head_match else left).lower()
    tail = (tail_match.group() if tail_match else right).lower()
    seen_joined, seen_hyphenated = counts[f"{head}{tail}{rest}"], counts[f"{head}-{tail}{rest}"]
    if seen_joined != seen_hyphenated:
        return joined if seen_joined > seen_hyphenated else hyphenated
    if (right[0].isupper() and not right.isupper()) or rest:
        return hyphenated  # "RoBERTa-Large", "Transformer-Based", a compound that goes on: "head-to-head"
    # "pre-/training" keeps its hyphen, "pre-/fer" does not: the part after a prefix must be a word of its own.
    return hyphenated if head in HYPHEN_PREFIXES and (counts[tail + rest] or tail in COMPOUND_TAILS) else joined
