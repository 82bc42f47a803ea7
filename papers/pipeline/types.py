"""The entity and relationship types, defined once: models, extractors, API and pages derive from these."""

from __future__ import annotations

# In the order readers scan them (the progress page groups entities so).
ENTITY_TYPES: tuple[str, ...] = ("MODEL", "DATASET", "METRIC", "TASK", "METHOD")
RELATIONSHIP_TYPES: tuple[str, ...] = ("TRAINED_ON", "EVALUATED_ON", "OUTPERFORMS", "USES")
# Where an entity stood out in its paper (FoundEntity.signals); anything else is dropped when it is stored.
ENTITY_SIGNALS: tuple[str, ...] = ("title", "abstract", "proposed", "table", "caption")


def check_types(kind: str, values, known: tuple[str, ...]) -> None:
    """Refuse, at import, a rule or table naming a type not defined here (a typo would match nothing)."""
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {kind} type(s) {sorted(unknown)}; the types are {known}")
