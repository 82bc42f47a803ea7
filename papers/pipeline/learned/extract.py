"""The default entity extractor: gazetteer first pass, CRF tagger, salience model (docs/extraction.md)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .. import entities as gazetteer
from ..entities import FoundEntity
from .candidates import Candidate, display_name, features, gather
from .document import Document
from .model import MODEL_DIR, SALIENCE_FILE, TAGGER_FILE
from .salience import SalienceModel
from .tagger import MAX_TAGGED_CHARS, Tagger, gazetteer_tags

logger = logging.getLogger(__name__)

# A named model or architecture ("FRRN", "ResNet-50", "DeepLab", "BiDAF", "SegNet") vs a technique
# ("dropout", "conditional random fields", "skip connections"): capitals inside the name, digits, or a noun
# that names an architecture make it a MODEL; a lower-case phrase is a METHOD.
_MODEL_NOUN = re.compile(r"(?:net|network|model|architecture|encoder|decoder|transformer)s?$", re.I)
TOKEN_MARGIN_CHARS = 2000  # the sentence that straddles MAX_TAGGED_CHARS is tokenized whole
# The paper's own model (title or "we propose") ranks above every other: at least this confident.
OWN_CONFIDENCE_FLOOR = gazetteer.OWN_CONTRIBUTION_CONFIDENCE
SIGNAL_FEATURES = ("title", "abstract", "proposed", "table", "caption")  # features that are also event signals


@dataclass(frozen=True)
class LearnedModel:
    """The tagger and the salience model, loaded together."""

    tagger: Tagger
    salience: SalienceModel


_loaded: dict[Path, LearnedModel | None] = {}
_lock = threading.Lock()


def load(directory: Path | None = None) -> LearnedModel | None:
    """The model in directory (PAPER_EXTRACTOR_MODEL_DIR by default), loaded once per process; None if absent."""
    directory = Path(directory or getattr(settings, "PAPER_EXTRACTOR_MODEL_DIR", None) or MODEL_DIR)
    with _lock:
        if directory not in _loaded:
            tagger_path, salience_path = directory / TAGGER_FILE, directory / SALIENCE_FILE
            if tagger_path.is_file() and salience_path.is_file():
                _loaded[directory] = LearnedModel(Tagger(tagger_path), SalienceModel.load(salience_path))
            else:
                logger.warning("no learned extractor model in %s; using the gazetteer alone", directory)
                _loaded[directory] = None
        return _loaded[directory]


def project_type(candidate: Candidate, name: str) -> str:
    """The entity type: the gazetteer's when it knows the name, else from the tagger's type and the name's shape."""
    if candidate.gazetteer is not None:
        return candidate.gazetteer[0]
    kind = candidate.annotation_type
    if kind != "Method":
        return {"Material": "DATASET", "Metric": "METRIC", "Task": "TASK"}[kind]
    shaped = any(c.isupper() for c in name[1:]) or any(c.isdigit() for c in name) or _MODEL_NOUN.search(name)
    return "MODEL" if shaped else "METHOD"


def extract_entities(
    text: str, *, on_progress: Callable[[float], None] | None = None, model: LearnedModel | None = None
) -> list[FoundEntity]:
    """Entities with salience; the gazetteer alone when no model is shipped. on_progress(fraction) during work."""
    model = model or load()
    if model is None:
        return gazetteer.extract_entities(text, on_progress=on_progress)
    report = on_progress or (lambda fraction: None)
    # Only what the tagger reads is tokenized: a book-sized or hostile text costs a bounded memory here.
    document = Document.from_text(text, MAX_TAGGED_CHARS + TOKEN_MARGIN_CHARS)
    mentions, own_kinds = gazetteer._all_mentions(text, lambda f: report(0.3 * f))
    tags = gazetteer_tags(document, mentions)
    tagged = model.tagger.tag(document, tags, on_step=lambda f: report(0.3 + 0.6 * f))
    candidates = gather(document, tagged, mentions, own_kinds)
    found = decide(document, candidates, model.salience)
    report(1.0)
    return found


def decide(
    document: Document, candidates: list[Candidate], salience: SalienceModel,
    rows: list[dict] | None = None, probabilities: list[float] | None = None,
) -> list[FoundEntity]:
    """Score candidates, keep what is named by the gazetteer or salient enough, mark the key ones
    (rows and probabilities: already computed, when tuning thresholds)."""
    rows = rows if rows is not None else features(document, candidates, salience.priors, salience.prior_documents)
    if probabilities is None:
        probabilities = [salience.probability(row) for row in rows]
    scored = []
    for candidate, row, probability in zip(candidates, rows, probabilities, strict=True):
        generic = row["generic"] > 0
        if candidate.gazetteer is None and probability < salience.emit_threshold:
            continue
        scored.append((probability, candidate, row, generic))
    scored.sort(key=lambda item: -item[0])
    per_type: dict[str, int] = {}
    found: dict[tuple[str, str], FoundEntity] = {}
    for probability, candidate, row, generic in scored:
        name = display_name(candidate)
        entity_type = project_type(candidate, name)
        if (entity_type, name) in found:
            continue
        kind = candidate.annotation_type
        key = probability >= salience.key_threshold[kind] and per_type.get(kind, 0) < salience.max_key[kind]
        if key:
            per_type[kind] = per_type.get(kind, 0) + 1
        elif generic and not row["table"]:
            continue  # a building block mentioned in passing is not what the paper is about; a baseline row is
        own = bool(candidate.gazetteer_kinds & {"title", "proposed"})
        confidence = OWN_CONFIDENCE_FLOOR + 0.09 * probability if own else 0.3 + 0.59 * probability
        found[(entity_type, name)] = FoundEntity(
            entity_type=entity_type, name=name, confidence=round(confidence, 4), mentions=len(candidate.offsets),
            first_offset=min(candidate.offsets), salience=round(probability, 4), key=key,
            signals=tuple(signal for signal in SIGNAL_FEATURES if row.get(signal)),
        )
    return sorted(found.values(), key=lambda e: (e.first_offset, e.entity_type, e.name))
