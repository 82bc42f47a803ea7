"""The whole pipeline on three real, messy ML papers: what a reader names first must come out."""

import time
from dataclasses import dataclass

import pytest

from papers.pipeline.entities import OWN_CONTRIBUTION_CONFIDENCE, FoundEntity
from papers.pipeline.learned.extract import extract_entities
from papers.pipeline.relationships import FoundRelationship, extract_relationships
from papers.pipeline.text import extract_text
from tests.conftest import papers_dir

PAGES = {"DeBERTa.pdf": 23, "LayoutLM.pdf": 9, "Few_shot_NER.pdf": 12}
# Generous: the three papers take well under a second each on a laptop.
MAX_SECONDS_PER_PAPER = 5.0


@dataclass
class Result:
    text: str
    pages: list[tuple[int, int]]
    entities: list[FoundEntity]
    relationships: list[FoundRelationship]
    seconds: float

    def names(self, entity_type: str) -> set[str]:
        """Names found for one entity type."""
        return {e.name for e in self.entities if e.entity_type == entity_type}

    def key(self, entity_type: str) -> set[str]:
        """Names of one type marked as the paper's key entities."""
        return {e.name for e in self.entities if e.entity_type == entity_type and e.key}

    def entity(self, entity_type: str, name: str) -> FoundEntity:
        """One found entity, failing the test when it is missing."""
        matches = [e for e in self.entities if (e.entity_type, e.name) == (entity_type, name)]
        assert matches, f"{entity_type} {name} not found"
        return matches[0]

    def links(self) -> set[tuple[str, str, str]]:
        """Relationships as (type, source name, target name)."""
        return {(r.relationship_type, r.source[1], r.target[1]) for r in self.relationships}


@pytest.fixture(scope="module", params=sorted(PAGES))
def paper(request) -> tuple[str, Result]:
    return request.param, run(request.param)


_cache: dict[str, Result] = {}


def run(filename: str) -> Result:
    """Extract text, entities (the learned extractor, the default) and relationships of one real paper, once per
    test session."""
    if filename not in _cache:
        path = papers_dir() / filename
        assert path.is_file(), f"{path} is missing"
        pages: list[tuple[int, int]] = []
        started = time.perf_counter()
        text = extract_text(str(path), on_page=lambda done, total: pages.append((done, total)))
        entities = extract_entities(text)
        relationships = extract_relationships(text, entities)
        _cache[filename] = Result(text, pages, entities, relationships, time.perf_counter() - started)
    return _cache[filename]


def test_every_paper_is_extracted_cleanly_and_fast(paper):
    filename, result = paper
    total = PAGES[filename]
    assert result.pages == [(i, total) for i in range(1, total + 1)]
    assert len(result.text) > 20_000
    assert not set(result.text) & {"\ufb01", "\ufb02", "\ufb00", "\ufb03", "\ufb04", "\ufffe", "\u00ad", "\r"}
    assert result.seconds < MAX_SECONDS_PER_PAPER
    assert [e.first_offset for e in result.entities] == sorted(e.first_offset for e in result.entities)
    keys = {(e.entity_type, e.name) for e in result.entities}
    assert all(r.source in keys and r.target in keys and r.source != r.target for r in result.relationships)
    assert all(len(r.evidence) <= 300 for r in result.relationships)


def test_deberta():
    result = run("DeBERTa.pdf")
    own = result.entity("MODEL", "DeBERTa")
    assert own.confidence >= OWN_CONTRIBUTION_CONFIDENCE and own.key and "title" in own.signals
    assert {"MNLI", "SQuAD v2.0", "RACE"} <= result.key("DATASET")
    assert {"accuracy", "F1"} <= result.key("METRIC")
    assert own == max((e for e in result.entities if e.entity_type == "MODEL"), key=lambda e: e.confidence)
    assert {"BERT", "RoBERTa", "XLNet", "ELECTRA", "ALBERT", "T5", "Megatron"} <= result.names("MODEL")
    assert {"GLUE", "SuperGLUE", "MNLI", "RACE", "SQuAD v1.1", "SQuAD v2.0", "CoLA", "SWAG"} <= result.names("DATASET")
    assert {"accuracy", "F1", "exact match"} <= result.names("METRIC")
    assert {"disentangled attention", "enhanced mask decoder", "masked language modeling"} <= result.names("METHOD")
    assert "Longformer" not in result.names("MODEL")  # cited only in the bibliography
    assert {
        ("OUTPERFORMS", "DeBERTa", "RoBERTa"),
        ("OUTPERFORMS", "DeBERTa", "XLNet"),
        ("EVALUATED_ON", "DeBERTa", "MNLI"),
        ("EVALUATED_ON", "DeBERTa", "SuperGLUE"),
        ("TRAINED_ON", "DeBERTa", "Wikipedia"),
        ("USES", "DeBERTa", "masked language modeling"),
    } <= result.links()
    assert not any(
        source != "DeBERTa" and kind == "OUTPERFORMS" and target == "DeBERTa" for kind, source, target in result.links()
    )


def test_layoutlm():
    result = run("LayoutLM.pdf")
    assert result.entity("MODEL", "LayoutLM").confidence >= OWN_CONTRIBUTION_CONFIDENCE
    assert result.key("MODEL") == {"LayoutLM"} and {"FUNSD", "SROIE", "RVL-CDIP"} <= result.key("DATASET")
    assert {"BERT", "RoBERTa", "Faster R-CNN"} <= result.names("MODEL")
    assert {"FUNSD", "SROIE", "RVL-CDIP", "IIT-CDIP"} <= result.names("DATASET")
    assert {"F1", "precision", "recall", "accuracy"} <= result.names("METRIC")
    assert {"form understanding", "receipt understanding", "document image classification"} <= result.names("TASK")
    assert "PubLayNet" not in result.names("DATASET")  # cited only in the bibliography
    assert "classification" in result.text and "classi!cation" not in result.text  # the broken font is repaired
    assert {
        ("TRAINED_ON", "LayoutLM", "IIT-CDIP"),
        ("EVALUATED_ON", "LayoutLM", "FUNSD"),
        ("EVALUATED_ON", "LayoutLM", "SROIE"),
        ("OUTPERFORMS", "LayoutLM", "BERT"),
    } <= result.links()


def test_few_shot_ner():
    result = run("Few_shot_NER.pdf")
    # The study's subject comes first: its task is key, and few-shot learning the next most salient task.
    assert result.key("TASK") == {"named entity recognition"}
    tasks = sorted((e for e in result.entities if e.entity_type == "TASK"), key=lambda e: -e.salience)
    assert [e.name for e in tasks[:2]] == ["named entity recognition", "few-shot learning"]
    assert {"CoNLL-2003", "WNUT 2017"} <= result.key("DATASET")
    assert {
        "CoNLL-2003",
        "OntoNotes",
        "WNUT 2017",
        "WikiGold",
        "MIT Movie",
        "MIT Restaurant",
        "SNIPS",
        "ATIS",
        "MultiWOZ",
        "i2b2",
        "WiNER",
    } <= result.names("DATASET")
    assert {"BERT", "RoBERTa", "StructShot"} <= result.names("MODEL")
    assert {"self-training", "prototypical networks", "noisy supervised pre-training"} <= result.names("METHOD")
    assert "F1" in result.names("METRIC")
    # A comparative study proposes no named model, so nothing is promoted to the paper's own model.
    assert all(e.confidence < OWN_CONTRIBUTION_CONFIDENCE for e in result.entities if e.entity_type == "MODEL")
