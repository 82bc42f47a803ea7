"""The CRF mention tagger: token features, training data, and decoding BIO tags to typed mention spans."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pycrfsuite

from ..entities import Mention
from .document import Document

LABEL_TYPES = ("Method", "Task", "Material", "Metric")
# The tagger reads this much of a paper (five times a long paper's text; the bibliography is skipped later anyway);
# past it, the gazetteer alone reads the rest, so a book-sized or hostile text costs the tagger a bounded time.
# Sequences with no word (numbers, punctuation) hold no name and are not tagged.
MAX_TAGGED_CHARS = 400_000
# Sentences longer than this are cut for tagging: a run-on "sentence" of a table or formula costs time, not recall.
MAX_SEQUENCE_TOKENS = 120
_SENTENCE_END = frozenset(".?!")
_SHAPE_CLASSES = (re.compile(r"[A-Z]+"), "X"), (re.compile(r"[a-z]+"), "x"), (re.compile(r"[0-9]+"), "d")


@dataclass(frozen=True)
class TaggedMention:
    """A span of tokens the tagger labelled, with the marginal probability of its first tag."""

    start: int  # token index
    end: int  # exclusive
    label: str  # one of LABEL_TYPES
    probability: float


def shape(word: str) -> str:
    """Collapsed character classes: "DeBERTa" -> "XxXx", "T5" -> "Xd", "state" -> "x"."""
    for pattern, symbol in _SHAPE_CLASSES:
        word = pattern.sub(symbol, word)
    return word[:6]


def sequences(document: Document) -> list[tuple[int, int]]:
    """Token ranges to tag one at a time: sentences (or lines), cut at MAX_SEQUENCE_TOKENS."""
    spans, start = [], 0
    text, starts, tokens = document.text, document.starts, document.tokens
    for index in range(len(tokens)):
        last = index + 1 == len(tokens)
        boundary = tokens[index] in _SENTENCE_END or last or "\n" in text[document.ends[index] : starts[index + 1]]
        if boundary or index + 1 - start >= MAX_SEQUENCE_TOKENS:
            spans.append((start, index + 1))
            start = index + 1
    return spans


def token_features(words: list[str], gazetteer: list[str], lowered: list[str], shapes: list[str]) -> list[list[str]]:
    """CRF features of each token of one sequence: the word, its shape and affixes, neighbours, gazetteer tags."""
    features = []
    n = len(words)
    for i, word in enumerate(words):
        low = lowered[i]
        feats = [
            "w=" + low, "s=" + shapes[i], "p3=" + low[:3], "x3=" + low[-3:], "x4=" + low[-4:], "g=" + gazetteer[i],
            "len=" + str(min(len(word), 8)),
        ]
        if word.isupper():
            feats.append("upper")
        if word[:1].isupper():
            feats.append("cap")
        for offset in (-2, -1, 1, 2):
            j = i + offset
            if 0 <= j < n:
                feats.append(f"w{offset}={lowered[j]}")
                if offset in (-1, 1):
                    feats.append(f"s{offset}={shapes[j]}")
                    feats.append(f"g{offset}={gazetteer[j]}")
            else:
                feats.append(f"w{offset}=<edge>")
        if i > 0:
            feats.append(f"b={lowered[i - 1]}|{low}")
        features.append(feats)
    return features


def gazetteer_tags(document: Document, mentions: Iterable[Mention]) -> list[str]:
    """Per token: B-/I- with the type of the gazetteer mention covering it, or O."""
    tags = ["O"] * len(document.tokens)
    for start, end, entity_type in ((m.start, m.end, m.entity_type) for m in mentions):
        first = document.token_at(start)
        index = first
        while index < len(tags) and document.starts[index] < end:
            tags[index] = ("B-" if index == first else "I-") + entity_type
            index += 1
    return tags


def document_features(document: Document, gazetteer: list[str]) -> list[tuple[int, int, list[list[str]]]]:
    """Each sequence of a document with its token features."""
    lowered = [word.lower() for word in document.tokens]
    shapes = [shape(word) for word in document.tokens]
    return [
        (s, e, token_features(list(document.tokens[s:e]), gazetteer[s:e], lowered[s:e], shapes[s:e]))
        for s, e in sequences(document)
    ]


def bio_labels(length: int, mentions: Iterable[tuple[int, int, str]]) -> list[str]:
    """BIO labels of a document's tokens from typed token spans (the first of overlapping spans wins)."""
    labels = ["O"] * length
    for start, end, label in sorted(mentions):
        if any(tag != "O" for tag in labels[start:end]):
            continue
        labels[start] = "B-" + label
        for index in range(start + 1, end):
            labels[index] = "I-" + label
    return labels


class Tagger:
    """A loaded CRF model; load once per process (it is read-only and cheap to call)."""

    def __init__(self, path: Path):
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(path))
        # tag() leaves the sequence in the tagger for marginal(): one thread at a time (a threaded worker pool).
        self._lock = threading.Lock()

    def tag(
        self, document: Document, gazetteer: list[str], on_step: Callable[[float], None] | None = None
    ) -> list[TaggedMention]:
        """Typed mention spans of the first MAX_TAGGED_CHARS of a document; on_step(fraction) about ten times."""
        found = []
        spans = [
            (s, e) for s, e in sequences(document)
            if document.starts[s] < MAX_TAGGED_CHARS and any(document.tokens[i][0].isalpha() for i in range(s, e))
        ]
        lowered = [word.lower() for word in document.tokens[: spans[-1][1]]] if spans else []
        shapes = [shape(word) for word in document.tokens[: len(lowered)]]
        every = max(1, len(spans) // 10)
        for index, (start, end) in enumerate(spans):
            features = token_features(
                list(document.tokens[start:end]), gazetteer[start:end], lowered[start:end], shapes[start:end]
            )
            with self._lock:
                found.extend(self._spans(start, self._tagger.tag(features)))
            if on_step is not None and index % every == 0:
                on_step(index / len(spans))
        return found

    def _spans(self, offset: int, labels: list[str]) -> list[TaggedMention]:
        """Decode BIO labels of one sequence; a stray I- opens a mention."""
        spans, index = [], 0
        while index < len(labels):
            label = labels[index]
            if label == "O":
                index += 1
                continue
            kind = label[2:]
            end = index + 1
            while end < len(labels) and labels[end] == "I-" + kind:
                end += 1
            probability = self._tagger.marginal(label, index)
            spans.append(TaggedMention(offset + index, offset + end, kind, probability))
            index = end
        return spans
