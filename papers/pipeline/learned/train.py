"""Train the learned extractor on the SciREX training documents: `make train-extractor` (deterministic)."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pycrfsuite
from sklearn.linear_model import LogisticRegression

from ..entities import _all_mentions
from . import scirex, tagger
from .candidates import Candidate, display_name, features, gather, normalise
from .document import Document
from .extract import decide
from .model import MODEL_DIR, SALIENCE_FILE, TAGGER_FILE, gazetteer_spans
from .salience import SalienceModel
from .tagger import Tagger, gazetteer_tags

logger = logging.getLogger(__name__)

# L-BFGS is deterministic for a given input order, so a fixed document order and these settings give the same
# model on every run. The L1 term (c1) prunes most features, which keeps the shipped model a few MiB.
FOLD_ITERATIONS = 100  # the cross-fitting taggers only produce training data for the salience model
SALIENCE_C = 1.0
THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(2, 17))
CRF_PARAMS = {"c1": 0.05, "c2": 0.01, "max_iterations": 150, "feature.possible_transitions": True, "feature.minfreq": 2}


def train_tagger(
    documents: Sequence[scirex.AnnotatedDocument], path: Path, *, max_iterations: int | None = None
) -> None:
    """Train the CRF on documents' gold mentions and write it to path."""
    trainer = pycrfsuite.Trainer(verbose=False)
    for item in documents:
        gazetteer = tagger.gazetteer_tags(item.document, gazetteer_spans(item.document.text))
        labels = tagger.bio_labels(len(item.document.tokens), item.mentions)
        for start, end, sequence in tagger.document_features(item.document, gazetteer):
            trainer.append(sequence, labels[start:end])
    params = dict(CRF_PARAMS)
    if max_iterations is not None:
        params["max_iterations"] = max_iterations
    trainer.set_params(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(path))


@dataclass
class Example:
    """One training document's candidates, their features and whether each is a key entity."""

    item: scirex.AnnotatedDocument
    document: Document
    candidates: list[Candidate]
    rows: list[dict[str, float]]
    labels: list[int]


def examples(documents: Sequence[scirex.AnnotatedDocument], model_path: Path) -> list[Example]:
    """Candidates of documents as a tagger (trained without them) finds them, labelled by the gold key entities."""
    crf = Tagger(model_path)
    found = []
    for item in documents:
        document = Document.from_text(item.document.text)
        mentions, own_kinds = _all_mentions(document.text)
        tags = gazetteer_tags(document, [(m.start, m.end, m.entity_type) for m in mentions])
        candidates = gather(document, crf.tag(document, tags), mentions, own_kinds)
        rows = features(document, candidates)
        gold: dict[str, set[str]] = {}
        for entity in item.key_entities:
            gold.setdefault(entity.entity_type, set()).update(normalise(s) for s in entity.surfaces)
        labels = [int(normalise(display_name(c)) in gold.get(c.annotation_type, set())) for c in candidates]
        found.append(Example(item, document, candidates, rows, labels))
    return found


def fit_salience(train: list[Example]) -> SalienceModel:
    """Logistic regression on the candidates' features, then the thresholds that maximise key-entity micro F1."""
    names = sorted({name for example in train for row in example.rows for name in row if name != "bias"})
    matrix = [[row.get(name, 0.0) for name in names] for example in train for row in example.rows]
    labels = [label for example in train for label in example.labels]
    regression = LogisticRegression(C=SALIENCE_C, max_iter=5000, random_state=0)
    regression.fit(matrix, labels)
    weights = {name: float(w) for name, w in zip(names, regression.coef_[0], strict=True) if w}
    base = SalienceModel(weights, float(regression.intercept_[0]), 0.5, 0.5, 3)
    best = None
    for key_threshold in THRESHOLDS:
        for per_type in range(1, 7):
            model = replace(base, key_threshold=key_threshold, emit_threshold=key_threshold, max_key_per_type=per_type)
            score = _micro_f1(train, model, key_only=True)
            if best is None or score > best[0]:
                best = (score, model)
    model = best[1]
    emit = max(
        (t for t in THRESHOLDS if t <= model.key_threshold),
        key=lambda t: (_micro_f1(train, replace(model, emit_threshold=t), key_only=False), -t),
    )
    return replace(model, emit_threshold=emit)


def _micro_f1(examples_: list[Example], model: SalienceModel, *, key_only: bool) -> float:
    """Key-entity (or all emitted) micro F1 of a salience model over cross-fitted examples."""
    from .evaluate import Counts, match

    total = Counts()
    for example in examples_:
        found = decide(example.document, example.candidates, model, rows=example.rows)
        for counts in match([e for e in found if e.key or not key_only], example.item.key_entities).values():
            total.add(counts)
    return total.scores[2]


def train_all(documents: Sequence[scirex.AnnotatedDocument], out: Path, *, iterations: int | None = None) -> None:
    """Cross-fit two taggers for the salience model's training data, then train the shipped tagger on all."""
    folds = [documents[0::2], documents[1::2]]
    with tempfile.TemporaryDirectory() as scratch:
        crossed: list[Example] = []
        for index, fold in enumerate(folds):
            path = Path(scratch) / f"fold{index}.crfsuite"
            train_tagger(fold, path, max_iterations=iterations or FOLD_ITERATIONS)
            crossed += examples(folds[1 - index], path)
            logger.info("fold %d tagger trained and applied", index)
    salience = fit_salience(crossed)
    out.mkdir(parents=True, exist_ok=True)
    salience.save(out / SALIENCE_FILE)
    logger.info("salience model written: key threshold %.2f, at most %d key entities per type",
                salience.key_threshold, salience.max_key_per_type)
    train_tagger(documents, out / TAGGER_FILE, max_iterations=iterations)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train on the documents outside the held-out part and write the model directory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=scirex.CORPUS)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--limit", type=int, default=None, help="read only the first N documents (for tests)")
    parser.add_argument("--iterations", type=int, default=None, help="CRF iterations (default: CRF_PARAMS)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    documents = [d for d in scirex.read(args.corpus, limit=args.limit) if not scirex.held_out(d.doc_id)]
    logger.info("training on %d documents", len(documents))
    train_all(documents, args.out, iterations=args.iterations)
    logger.info("model written to %s in %.0f s", args.out, time.monotonic() - started)


if __name__ == "__main__":
    main()
