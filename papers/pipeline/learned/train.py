"""Train the learned extractor on the SciREX training documents: `make train-extractor` (deterministic)."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pycrfsuite
from sklearn.linear_model import LogisticRegression

from ..entities import _all_mentions
from . import scirex, tagger
from .candidates import Candidate, display_name, features, gather, normalise
from .document import Document
from .extract import TOKEN_MARGIN_CHARS, decide
from .model import MODEL_DIR, SALIENCE_FILE, TAGGER_FILE
from .salience import SalienceModel
from .tagger import MAX_TAGGED_CHARS, Tagger, gazetteer_tags

logger = logging.getLogger(__name__)

# L-BFGS is deterministic for a given input order, so a fixed document order and these settings give the same
# model on every run. The L1 term (c1) prunes most features, which keeps the shipped model a few MiB.
# The cross-fitting taggers train as long as the shipped one, so the salience model learns from mentions as
# confident as those it will be given.
FOLD_ITERATIONS = None
SALIENCE_C = 1.0
TYPES = scirex.ANNOTATION_TYPES
THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(2, 17))
CRF_PARAMS = {"c1": 0.05, "c2": 0.01, "max_iterations": 150, "feature.possible_transitions": True, "feature.minfreq": 2}


def train_tagger(
    documents: Sequence[scirex.AnnotatedDocument], path: Path, *, max_iterations: int | None = None
) -> None:
    """Train the CRF on documents' gold mentions and write it to path."""
    trainer = pycrfsuite.Trainer(verbose=False)
    for item in documents:
        gazetteer = tagger.gazetteer_tags(item.document, _all_mentions(item.document.text)[0])
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


def name_priors(documents: Sequence[scirex.AnnotatedDocument]) -> dict[str, dict[str, int]]:
    """Per annotation type, in how many of the documents each normalised name was a key entity."""
    priors: dict[str, Counter] = {}
    for item in documents:
        seen = {(entity.entity_type, normalise(s)) for entity in item.key_entities for s in entity.surfaces}
        for kind, name in seen:
            if name:
                priors.setdefault(kind, Counter())[name] += 1
    return {kind: dict(names) for kind, names in priors.items()}


def examples(
    documents: Sequence[scirex.AnnotatedDocument], model_path: Path, priors: dict[str, dict[str, int]],
    prior_documents: int,
) -> list[Example]:
    """Candidates of documents as a tagger (trained without them) finds them, labelled by the gold key entities."""
    crf = Tagger(model_path)
    found = []
    for item in documents:
        document = Document.from_text(item.document.text, MAX_TAGGED_CHARS + TOKEN_MARGIN_CHARS)
        mentions, own_kinds = _all_mentions(document.text)
        tags = gazetteer_tags(document, mentions)
        candidates = gather(document, crf.tag(document, tags), mentions, own_kinds)
        rows = features(document, candidates, priors, prior_documents)
        gold: dict[str, set[str]] = {}
        for entity in item.key_entities:
            gold.setdefault(entity.entity_type, set()).update(normalise(s) for s in entity.surfaces)
        labels = [int(normalise(display_name(c)) in gold.get(c.annotation_type, set())) for c in candidates]
        found.append(Example(item, document, candidates, rows, labels))
    return found


def fit_salience(train: list[Example], priors: dict[str, dict[str, int]]) -> SalienceModel:
    """Logistic regression on the candidates' features, then per type the threshold and cap that maximise
    key-entity F1, then the emit threshold that maximises the F1 of everything emitted."""
    names = sorted({name for example in train for row in example.rows for name in row if name != "bias"})
    matrix = [[row.get(name, 0.0) for name in names] for example in train for row in example.rows]
    labels = [label for example in train for label in example.labels]
    regression = LogisticRegression(C=SALIENCE_C, max_iter=5000, random_state=0)
    regression.fit(matrix, labels)
    weights = {name: float(w) for name, w in zip(names, regression.coef_[0], strict=True) if w}
    model = SalienceModel(
        weights, float(regression.intercept_[0]), dict.fromkeys(TYPES, 0.5), dict.fromkeys(TYPES, 3), 0.5, priors
    )
    scored = [[model.probability(row) for row in example.rows] for example in train]
    for kind in TYPES:
        best = max(
            ((threshold, cap) for threshold in THRESHOLDS for cap in range(1, 7)),
            key=lambda choice: (_f1(train, scored, _with(model, kind, *choice), kind=kind), -choice[1], choice[0]),
        )
        model = _with(model, kind, *best)
    emit = max(THRESHOLDS, key=lambda t: (_f1(train, scored, replace(model, emit_threshold=t), emitted=True), t))
    return replace(model, emit_threshold=emit)


def _with(model: SalienceModel, kind: str, threshold: float, cap: int) -> SalienceModel:
    """The model with one type's threshold and cap changed."""
    return replace(
        model, key_threshold={**model.key_threshold, kind: threshold}, max_key={**model.max_key, kind: cap}
    )


def _f1(
    train: list[Example], scored: list[list[float]], model: SalienceModel, *, kind: str | None = None,
    emitted: bool = False,
) -> float:
    """F1 of the key entities of one type (or micro over all emitted entities) on cross-fitted examples."""
    from .evaluate import Counts, match

    total = Counts()
    for example, probabilities in zip(train, scored, strict=True):
        found = decide(example.document, example.candidates, model, example.rows, probabilities)
        for counted, counts in match([e for e in found if e.key or emitted], example.item.key_entities).items():
            if kind is None or counted == kind:
                total.add(counts)
    return total.scores[2]


def train_all(documents: Sequence[scirex.AnnotatedDocument], out: Path, *, iterations: int | None = None) -> None:
    """Cross-fit two taggers (and name priors) for the salience model's training data, then train the shipped
    tagger and priors on all documents."""
    folds = [documents[0::2], documents[1::2]]
    with tempfile.TemporaryDirectory() as scratch:
        crossed: list[Example] = []
        for index, fold in enumerate(folds):
            path = Path(scratch) / f"fold{index}.crfsuite"
            train_tagger(fold, path, max_iterations=iterations or FOLD_ITERATIONS)
            crossed += examples(folds[1 - index], path, name_priors(fold), len(fold))
            logger.info("fold %d tagger trained and applied", index)
    salience = replace(fit_salience(crossed, name_priors(documents)), prior_documents=len(documents))
    out.mkdir(parents=True, exist_ok=True)
    salience.save(out / SALIENCE_FILE)
    logger.info("salience model written: thresholds %s, caps %s", salience.key_threshold, salience.max_key)
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
