"""The entity and relationship types are defined once; everything else derives from them and agrees with the docs."""

import re
from pathlib import Path

import pytest

from papers.models import Entity, Relationship
from papers.pipeline import entities, relationships
from papers.pipeline.types import ENTITY_TYPES, RELATIONSHIP_TYPES, check_types
from papers.pipeline.vocabulary import VOCABULARY

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def documented(section: str) -> tuple[str, ...]:
    """The types docs/protocol.md lists under an event's heading ("Types: `A`, `B`.")."""
    text = PROTOCOL.read_text().split(f"### {section}\n", 1)[1].split("```", 1)[0]
    listing = text.split("Types:", 1)[1].split(".", 1)[0]
    return tuple(re.findall(r"`(\w+)`", listing))


def test_the_protocol_documents_exactly_these_types():
    assert documented("entity_extracted") == ENTITY_TYPES
    assert documented("relationship_extracted") == RELATIONSHIP_TYPES


def test_models_and_extractors_derive_from_them():
    assert tuple(Entity.Type.values) == ENTITY_TYPES and tuple(Relationship.Type.values) == RELATIONSHIP_TYPES
    assert entities.ENTITY_TYPES is ENTITY_TYPES and relationships.RELATIONSHIP_TYPES is RELATIONSHIP_TYPES
    assert set(VOCABULARY) == set(ENTITY_TYPES)
    rules = (*relationships.RULES, *relationships.CONTEXT_RULES)
    assert {rule.relationship_type for rule in rules} <= set(RELATIONSHIP_TYPES)


def test_a_rule_naming_an_unknown_type_fails_at_once():
    with pytest.raises(ValueError, match="unknown relationship"):
        relationships._rule("TRAINS_ON", "MODEL", "DATASET", r"on")
    with pytest.raises(ValueError, match="unknown entity"):
        relationships._rule("TRAINED_ON", "MODEL", "DATA", r"on")
    check_types("entity", ["MODEL"], ENTITY_TYPES)
