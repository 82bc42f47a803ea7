"""Hostile inputs: every parser finishes in linear time."""

import pytest

from papers.pipeline.entities import document_terms, extract_entities
from papers.pipeline.relationships import extract_relationships
from papers.pipeline.text import normalize_text

MEGABYTE = 1_000_000
# Generous: each case takes about a second; before the fix each took hours (bench/hostile.py measures them).
HOSTILE_TIMEOUT = 20


# --- linear-time parsing (each of these ran for hours before) ---


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_an_unbroken_megabyte_word_is_normalized_quickly():
    word = "a" * MEGABYTE
    assert normalize_text(word) == word


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_soft_hyphen_before_a_megabyte_of_spaces_is_normalized_quickly():
    assert normalize_text("a\u00ad" + " " * MEGABYTE + ".") == "a ."


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_acronym_definitions_are_read_quickly_after_an_unbroken_megabyte_word():
    # No definition follows the word, so the old pattern retried it from each of its million positions.
    terms = document_terms("a" * MEGABYTE + ". We use noisy supervised pre-training (NSP) here.")
    assert terms.acronyms["NSP"].name == "noisy supervised pre-training"


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_megabyte_capitalized_word_is_scanned_quickly_for_model_shaped_names():
    found = extract_entities("A" + "a" * MEGABYTE + " and SimBERT")
    assert [(entity.entity_type, entity.name) for entity in found] == [("MODEL", "SimBERT")]


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_tens_of_thousands_of_proposed_names_are_resolved_quickly():
    text = "We propose DeBERTa. " + "".join(f"We propose Foo{index}Net. " for index in range(50_000))
    names = {entity.name for entity in extract_entities(text)}
    assert {"DeBERTa", "Foo0Net"} <= names


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_the_whole_pipeline_finishes_quickly_on_an_unbroken_megabyte_word():
    text = normalize_text("The BERT model " + "x" * MEGABYTE + " uses (MLM) masked language modeling")
    assert extract_relationships(text, extract_entities(text)) is not None
