"""The SciREX training documents (data/scirex/): text rebuilt from tokens, gold mentions and key entities."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .document import Document

CORPUS = Path(__file__).resolve().parents[3] / "data" / "scirex" / "train.jsonl.gz"
# The annotation's entity types (the project's MODEL and METHOD are both "Method"; candidates.ANNOTATION_TYPE).
ANNOTATION_TYPES = ("Method", "Material", "Metric", "Task")
HELD_OUT_PERCENT = 20


@dataclass(frozen=True)
class GoldEntity:
    """A key (salient) entity of a paper: its type and every way the paper writes it."""

    entity_type: str  # Method, Material, Metric or Task
    name: str
    surfaces: frozenset[str]


@dataclass(frozen=True)
class AnnotatedDocument:
    """One training paper: its rebuilt text and tokens, token labels, key entities and result pairs."""

    doc_id: str
    document: Document
    mentions: tuple[tuple[int, int, str], ...]  # [start, end) token spans with SciREX type
    key_entities: tuple[GoldEntity, ...]
    pairs: frozenset[tuple[str, str]]  # (Method name, Material name) of the result records


def held_out(doc_id: str) -> bool:
    """The fixed held-out part: a stable hash of the document id, about HELD_OUT_PERCENT of the documents."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 100 < HELD_OUT_PERCENT


def read(path: Path = CORPUS, *, limit: int | None = None) -> Iterator[AnnotatedDocument]:
    """Yield the annotated documents of a SciREX JSON-lines file."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if limit is not None and index >= limit:
                return
            yield annotated(json.loads(line))


def rebuild(words: list[str], sentences: list[list[int]]) -> Document:
    """Text with one sentence per line; the "document :" and "section :" markers of titles and headings are
    dropped, so a title or heading is a line of its own, as in a PDF."""
    parts: list[str] = []
    starts, ends = [], []
    offset = 0
    for start, end in sentences:
        first = start
        if end - start >= 3 and words[start] in ("section", "document") and words[start + 1] == ":":
            first = start + 2
            # The marker words sit, empty, at the heading's first character.
            starts.extend([offset] * (first - start))
            ends.extend([offset] * (first - start))
        for index in range(first, end):
            if index > first:
                parts.append(" ")
                offset += 1
            starts.append(offset)
            parts.append(words[index])
            offset += len(words[index])
            ends.append(offset)
        parts.append("\n")
        offset += 1
    return Document("".join(parts), tuple(words), tuple(starts), tuple(ends))


def annotated(raw: dict) -> AnnotatedDocument:
    """Gold annotations of one document: typed salient clusters with their surfaces, and result pairs."""
    words = raw["words"]
    document = rebuild(words, raw["sentences"])
    types: dict[str, str] = {}
    pairs = set()
    for record in raw["n_ary_relations"]:
        for kind in ANNOTATION_TYPES:
            if record.get(kind):
                types.setdefault(record[kind], kind)
        if record.get("Method") and record.get("Material"):
            pairs.add((record["Method"], record["Material"]))
    key = []
    for name, spans in raw["coref"].items():
        if name in types:
            surfaces = frozenset(" ".join(words[s:e]) for s, e in spans) | {name.replace("_", " ")}
            key.append(GoldEntity(types[name], name, surfaces))
    mentions = tuple((s, e, kind) for s, e, kind in raw["ner"])
    return AnnotatedDocument(raw["doc_id"], document, mentions, tuple(key), frozenset(pairs))
