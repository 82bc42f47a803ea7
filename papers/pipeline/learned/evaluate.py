"""Measure the extractor on the held-out SciREX documents: `make eval-extractor` (docs/extraction.md)."""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import re
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..entities import FoundEntity
from ..relationships import FoundRelationship
from . import scirex
from .candidates import ANNOTATION_TYPE, normalise

TYPES = scirex.ANNOTATION_TYPES
TYPE_LABELS = {"Method": "Method (MODEL + METHOD)", "Material": "Dataset", "Metric": "Metric", "Task": "Task"}
ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "extraction.md"
PAPERS = ROOT / "tests" / "data" / "papers"
GAZETTEER = "papers.pipeline.entities.extract_entities"

Extract = Callable[[str], tuple[list[FoundEntity], list[FoundRelationship]]]


@dataclass
class Counts:
    """True positives, predictions and gold items."""

    tp: int = 0
    predicted: int = 0
    gold: int = 0

    def add(self, other: Counts) -> None:
        """Accumulate another count."""
        self.tp += other.tp
        self.predicted += other.predicted
        self.gold += other.gold

    @property
    def scores(self) -> tuple[float, float, float]:
        """Precision, recall, F1."""
        p = self.tp / self.predicted if self.predicted else 0.0
        r = self.tp / self.gold if self.gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Report:
    """Per-type counts for key entities and all emitted ones, pair counts, and time."""

    key: dict[str, Counts] = field(default_factory=lambda: {t: Counts() for t in TYPES})
    emitted: dict[str, Counts] = field(default_factory=lambda: {t: Counts() for t in TYPES})
    pairs: Counts = field(default_factory=Counts)
    documents: int = 0
    seconds: float = 0.0


def match(predicted: Iterable[FoundEntity], gold: Iterable[scirex.GoldEntity]) -> dict[str, Counts]:
    """One-to-one matches per type, most salient prediction first, on normalised names and the gold's surfaces."""
    counts = {t: Counts() for t in TYPES}
    by_type: dict[str, list[scirex.GoldEntity]] = {t: [] for t in TYPES}
    for entity in gold:
        by_type[entity.entity_type].append(entity)
        counts[entity.entity_type].gold += 1
    taken: set[str] = set()
    for entity in sorted(predicted, key=lambda e: (-e.salience, -e.confidence, e.name)):
        kind = ANNOTATION_TYPE[entity.entity_type]
        counts[kind].predicted += 1
        key = normalise(entity.name)
        for candidate in by_type[kind]:
            if candidate.name not in taken and key in _keys(candidate):
                taken.add(candidate.name)
                counts[kind].tp += 1
                break
    return counts


@functools.lru_cache(maxsize=4096)
def _keys(entity: scirex.GoldEntity) -> frozenset[str]:
    """Normalised names a gold entity answers to (cached by value: gold entities are frozen)."""
    return frozenset(normalise(s) for s in entity.surfaces) - {""}


def pair_counts(
    relationships: Iterable[FoundRelationship], entities: Iterable[FoundEntity], item: scirex.AnnotatedDocument
) -> Counts:
    """(Method, Dataset) pairs of EVALUATED_ON relationships against the result records' pairs."""
    gold_names: dict[tuple[str, str], str] = {}
    for entity in entities:
        kind = ANNOTATION_TYPE[entity.entity_type]
        for candidate in item.key_entities:
            if candidate.entity_type == kind and normalise(entity.name) in _keys(candidate):
                gold_names[(entity.entity_type, entity.name)] = candidate.name
                break
    predicted = {
        (gold_names.get(r.source, "?" + r.source[1]), gold_names.get(r.target, "?" + r.target[1]))
        for r in relationships
        if r.relationship_type == "EVALUATED_ON" and r.source[0] in ("MODEL", "METHOD") and r.target[0] == "DATASET"
    }
    return Counts(len(predicted & item.pairs), len(predicted), len(item.pairs))


def evaluate(documents: Sequence[scirex.AnnotatedDocument], extract: Extract) -> Report:
    """Run the extractor on each document's text and count matches."""
    report = Report()
    for item in documents:
        started = time.perf_counter()
        entities, relationships = extract(item.document.text)
        report.seconds += time.perf_counter() - started
        report.documents += 1
        for kind, counts in match([e for e in entities if e.key], item.key_entities).items():
            report.key[kind].add(counts)
        for kind, counts in match(entities, item.key_entities).items():
            report.emitted[kind].add(counts)
        report.pairs.add(pair_counts(relationships, entities, item))
    return report


def table(report: Report) -> str:
    """The report as a Markdown table."""
    lines = [
        "| type | key P | key R | key F1 | all emitted P | all emitted R | all emitted F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in (*TYPES, None):
        key, emitted = Counts(), Counts()
        for t in TYPES if kind is None else (kind,):
            key.add(report.key[t])
            emitted.add(report.emitted[t])
        label = "**micro, all**" if kind is None else TYPE_LABELS[kind]
        cells = [f"{value:.2f}" for value in (*key.scores, *emitted.scores)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    p, r, f = report.pairs.scores
    lines.append("")
    lines.append(f"(Method, Dataset) result pairs: P {p:.2f}, R {r:.2f}, **F1 {f:.2f}**. ")
    rate = report.documents / report.seconds if report.seconds else 0.0
    lines.append(
        f"{report.documents} held-out documents, {rate:.1f} papers/s on one core "
        f"({1000 * report.seconds / max(1, report.documents):.0f} ms per paper, entities + relationships)."
    )
    return "\n".join(lines)


def default_extract(text: str) -> tuple[list[FoundEntity], list[FoundRelationship]]:
    """The configured extractors, as the pipeline runs them."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    entities = import_string(settings.PAPER_ENTITY_EXTRACTOR)(text)
    return entities, import_string(settings.PAPER_RELATIONSHIP_EXTRACTOR)(text, entities)


def speed(extract: Extract) -> str:
    """Seconds of entity + relationship extraction on each real paper of tests/data/papers, and peak RSS."""
    from ..text import extract_text

    lines = ["| paper | pages | characters | seconds (entities + relationships) |", "|---|---|---|---|"]
    extract("warm-up: the model loads once per process")
    pages: list[int] = []
    for path in sorted(PAPERS.glob("*.pdf")):
        text = extract_text(str(path), on_page=lambda done, total: pages.append(total))
        started = time.perf_counter()
        extract(text)
        seconds = time.perf_counter() - started
        lines.append(f"| {path.name} | {pages[-1]} | {len(text):,} | {seconds:.2f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append("")
    lines.append(
        f"Peak RSS of this process (Django, the pipeline, the model, the three papers): {peak:.0f} MiB. "
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, one process."
    )
    return "\n".join(lines)


def write_doc(body: str, marker: str = "eval-extractor", path: Path = DOC) -> None:
    """Replace the block between a pair of markers of docs/extraction.md (regenerated, never edited by hand)."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _m: f"{begin}\n{body}\n{end}", text, count=1))


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: evaluate on the held-out part and print (and optionally write) the table."""
    import django

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=scirex.CORPUS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="also write the tables into docs/extraction.md")
    parser.add_argument("--entity-extractor", help="dotted path of another entity extractor to measure")
    args = parser.parse_args(argv)
    django.setup()
    if args.entity_extractor:
        from django.conf import settings

        settings.PAPER_ENTITY_EXTRACTOR = args.entity_extractor
    timing = speed(default_extract)  # first: the peak RSS it reports is then a worker's, without the corpus
    documents = [d for d in scirex.read(args.corpus, limit=args.limit) if scirex.held_out(d.doc_id)]
    body = table(evaluate(documents, default_extract))
    print(body, timing, sep="\n\n")
    blocks = {"eval-extractor": body, "extractor-speed": timing}
    if not args.entity_extractor:  # the fallback beside it, so the docs show what the model adds
        from django.conf import settings

        settings.PAPER_ENTITY_EXTRACTOR = GAZETTEER
        blocks["eval-gazetteer"] = table(evaluate(documents, default_extract))
        print("\nThe gazetteer alone (no model):", blocks["eval-gazetteer"], sep="\n")
    if args.write:
        for marker, block in blocks.items():
            write_doc(block, marker)


if __name__ == "__main__":
    main()
