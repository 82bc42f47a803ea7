"""A paper's text as tokens and regions (title, abstract, references, captions, results) for the learned extractor."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property

from ..entities import references_span

# Words split at hyphens and most punctuation, as in the annotated training documents ("state - of - the - art");
# "i.e" and "U.S" stay one word. Every part is bounded, so a token is at most 64 + 4 * 9 characters and
# tokenizing is linear in the text.
MAX_TOKEN_CHARS = 64
_TOKEN = re.compile(rf"[^\W_]{{1,{MAX_TOKEN_CHARS}}}(?:\.[^\W_]{{1,8}}(?=[\s.,;:)])){{0,4}}|[^\w\s]")
_ABSTRACT = re.compile(r"^[ \t]*(?:\d+\.?[ \t]*)?abstract\b", re.IGNORECASE | re.MULTILINE)
_SECTION_AFTER_ABSTRACT = re.compile(
    r"^[ \t]*(?:1\.?|I\.)?[ \t]*(?:introduction|background|motivation)\b", re.IGNORECASE | re.MULTILINE
)
_CAPTION_LINE = re.compile(r"^[ \t]*(?:Table|TABLE|Figure|FIGURE|Fig\.)[ \t]*\d+[ \t]*[:.|]?[^\n]{0,400}", re.MULTILINE)
_RESULTS_HEADING = re.compile(
    r"^[ \t]*(?:\d+(?:\.\d+)*\.?[ \t]*)?[^\n]{0,40}"
    r"\b(?:experiment|result|evaluation|comparison|benchmark)s?\b[^\n]{0,40}$",
    re.IGNORECASE | re.MULTILINE,
)
TITLE_MAX_CHARS = 300
TITLE_SEARCH_CHARS = 1500
ABSTRACT_MAX_CHARS = 3000


@dataclass(frozen=True)
class Document:
    """Tokens with character offsets, and the regions that say how central a mention is."""

    text: str
    tokens: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def from_text(cls, text: str, max_chars: int | None = None) -> Document:
        """Tokenize text (its first max_chars characters, when given) with the runtime tokenizer."""
        tokens, starts, ends = [], [], []
        for match in _TOKEN.finditer(text, 0, len(text) if max_chars is None else max_chars):
            tokens.append(match.group())
            starts.append(match.start())
            ends.append(match.end())
        return cls(text, tuple(tokens), tuple(starts), tuple(ends))

    def token_at(self, offset: int) -> int:
        """Index of the first token starting at or after a character offset."""
        return bisect.bisect_left(self.starts, offset)

    @cached_property
    def title(self) -> tuple[int, int]:
        """What comes before an "Abstract" heading near the start (a PDF's running header, title and authors),
        at most TITLE_MAX_CHARS; without such a heading, the first non-empty line."""
        stripped = len(self.text) - len(self.text.lstrip())
        heading = _ABSTRACT.search(self.text, 0, TITLE_SEARCH_CHARS)
        if heading is not None:
            return (stripped, min(heading.start(), stripped + TITLE_MAX_CHARS))
        end = self.text.find("\n", stripped)
        end = len(self.text) if end < 0 else end
        return (stripped, min(end, stripped + TITLE_MAX_CHARS))

    @cached_property
    def abstract(self) -> tuple[int, int]:
        """From an "Abstract" heading near the start to the introduction, or the first paragraphs."""
        heading = _ABSTRACT.search(self.text, 0, TITLE_SEARCH_CHARS)
        start = heading.end() if heading else self.title[1]
        intro = _SECTION_AFTER_ABSTRACT.search(self.text, start, start + ABSTRACT_MAX_CHARS)
        return (start, intro.start() if intro else min(len(self.text), start + ABSTRACT_MAX_CHARS))

    @cached_property
    def references(self) -> tuple[int, int] | None:
        """The bibliography's span, if found."""
        return references_span(self.text)

    @cached_property
    def captions(self) -> list[tuple[int, int]]:
        """Caption lines of tables and figures."""
        return [m.span() for m in _CAPTION_LINE.finditer(self.text)]

    @cached_property
    def results(self) -> list[tuple[int, int]]:
        """Sections whose heading speaks of experiments or results, each up to the next such heading or 20k chars."""
        spans = []
        for m in _RESULTS_HEADING.finditer(self.text):
            if self.references and m.start() >= self.references[0]:
                break
            spans.append((m.start(), min(len(self.text), m.start() + 20_000)))
        return spans


def inside(offset: int, spans: list[tuple[int, int]] | tuple[int, int] | None) -> bool:
    """Whether offset falls in a span, or in a list of spans sorted by start whose later spans never end before
    earlier ones (captions, results sections): then only the last span starting at or before it can hold it."""
    if spans is None:
        return False
    if isinstance(spans, tuple):
        return spans[0] <= offset < spans[1]
    index = bisect.bisect_right(spans, (offset, float("inf"))) - 1
    return index >= 0 and offset < spans[index][1]
