"""The salience model: a logistic regression over candidate features, stored as plain JSON weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SalienceModel:
    """Weights per feature name, the decision thresholds, and how many key entities a type may have."""

    weights: dict[str, float]
    intercept: float
    key_threshold: float
    emit_threshold: float
    max_key_per_type: int

    @classmethod
    def load(cls, path: Path) -> SalienceModel:
        """Read a model written by save()."""
        data = json.loads(path.read_text())
        return cls(
            {name: float(weight) for name, weight in data["weights"].items()}, float(data["intercept"]),
            float(data["key_threshold"]), float(data["emit_threshold"]), int(data["max_key_per_type"]),
        )

    def save(self, path: Path) -> None:
        """Write the model as JSON (data, not code: loading it runs nothing)."""
        data = {
            "weights": {name: round(weight, 6) for name, weight in sorted(self.weights.items())},
            "intercept": round(self.intercept, 6), "key_threshold": self.key_threshold,
            "emit_threshold": self.emit_threshold, "max_key_per_type": self.max_key_per_type,
        }
        path.write_text(json.dumps(data, indent=1) + "\n")

    def probability(self, row: dict[str, float]) -> float:
        """P(the candidate is one of the paper's key entities)."""
        score = self.intercept + sum(self.weights.get(name, 0.0) * value for name, value in row.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))
