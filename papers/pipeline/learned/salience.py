"""The salience model: a logistic regression over candidate features, stored as plain JSON weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SalienceModel:
    """Weights per feature name, per-type decision thresholds and caps, and the training papers' name priors."""

    weights: dict[str, float]
    intercept: float
    key_threshold: dict[str, float]  # annotation type -> probability a key entity needs
    max_key: dict[str, int]  # annotation type -> at most this many key entities per paper
    emit_threshold: float  # a name only the tagger found is emitted from this probability on
    priors: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> normalised name -> key in N papers
    prior_documents: int = 1  # the papers the priors were counted on

    @classmethod
    def load(cls, path: Path) -> SalienceModel:
        """Read a model written by save()."""
        data = json.loads(path.read_text())
        return cls(
            weights={name: float(weight) for name, weight in data["weights"].items()},
            intercept=float(data["intercept"]),
            key_threshold={kind: float(value) for kind, value in data["key_threshold"].items()},
            max_key={kind: int(value) for kind, value in data["max_key"].items()},
            emit_threshold=float(data["emit_threshold"]),
            priors={kind: {name: int(n) for name, n in names.items()} for kind, names in data["priors"].items()},
            prior_documents=int(data["prior_documents"]),
        )

    def save(self, path: Path) -> None:
        """Write the model as JSON (data, not code: loading it runs nothing), sorted so rebuilds compare equal."""
        data = {
            "weights": {name: round(weight, 6) for name, weight in sorted(self.weights.items())},
            "intercept": round(self.intercept, 6),
            "key_threshold": dict(sorted(self.key_threshold.items())),
            "max_key": dict(sorted(self.max_key.items())),
            "emit_threshold": self.emit_threshold,
            "priors": {kind: dict(sorted(names.items())) for kind, names in sorted(self.priors.items())},
            "prior_documents": self.prior_documents,
        }
        path.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n")

    def probability(self, row: dict[str, float]) -> float:
        """P(the candidate is one of the paper's key entities)."""
        score = self.intercept + sum(self.weights.get(name, 0.0) * value for name, value in row.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))
