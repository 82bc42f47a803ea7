"""Relationship extraction on synthetic sentences: each type, direction, blocking and scoring."""

from papers.pipeline.entities import extract_entities
from papers.pipeline.relationships import (
    EVIDENCE_MAX_CHARS,
    RELATIONSHIP_TYPES,
    FoundRelationship,
    extract_relationships,
    split_sentences,
)

Key = tuple[str, tuple[str, str], tuple[str, str]]


def relations(text: str) -> dict[Key, FoundRelationship]:
    """Relationships of text (with its own extracted entities) by (type, source, target)."""
    found = extract_relationships(text, extract_entities(text))
    return {(r.relationship_type, r.source, r.target): r for r in found}


def model(name: str) -> tuple[str, str]:
    return ("MODEL", name)


def dataset(name: str) -> tuple[str, str]:
    return ("DATASET", name)


def method(name: str) -> tuple[str, str]:
    return ("METHOD", name)


def test_trained_on():
    found = relations("RoBERTa is pre-trained on BookCorpus and Wikipedia.")
    assert ("TRAINED_ON", model("RoBERTa"), dataset("BookCorpus")) in found
    assert ("TRAINED_ON", model("RoBERTa"), dataset("Wikipedia")) in found


def test_trained_on_with_the_verb_before_the_model():
    assert ("TRAINED_ON", model("BERT"), dataset("CoNLL-2003")) in relations("We fine-tune BERT on CoNLL-2003.")


def test_evaluated_on():
    found = relations("XLNet achieves 90.1 accuracy on MNLI. We evaluate ALBERT on RACE.")
    assert ("EVALUATED_ON", model("XLNet"), dataset("MNLI")) in found
    assert ("EVALUATED_ON", model("ALBERT"), dataset("RACE")) in found


def test_outperforms_points_from_winner_to_loser():
    found = relations("DeBERTa outperforms RoBERTa on GLUE. T5 is outperformed by GPT-3.")
    assert ("OUTPERFORMS", model("DeBERTa"), model("RoBERTa")) in found
    assert ("OUTPERFORMS", model("GPT-3"), model("T5")) in found
    assert ("OUTPERFORMS", model("RoBERTa"), model("DeBERTa")) not in found
    assert ("EVALUATED_ON", model("DeBERTa"), dataset("GLUE")) in found
    assert ("EVALUATED_ON", model("RoBERTa"), dataset("GLUE")) not in found


def test_outperforms_after_compared_to():
    found = relations("Compared to BERT, ELECTRA performs consistently better.")
    assert set(found) == {("OUTPERFORMS", model("ELECTRA"), model("BERT"))}


def test_uses_method_and_model_built_on_model():
    found = relations("The Transformer uses self-attention. LayoutLM is built on BERT.")
    assert ("USES", model("Transformer"), method("self-attention")) in found
    assert ("USES", model("LayoutLM"), model("BERT")) in found


def test_uses_passive_points_to_the_user():
    found = relations("Adversarial training is used for fine-tuning in our setup.")
    assert ("USES", method("fine-tuning"), method("adversarial training")) in found


def test_parenthesised_expansion_belongs_to_the_name_before_it():
    found = relations("We present DeBERTa (Decoding-enhanced BERT with disentangled attention).")
    assert ("USES", model("DeBERTa"), method("disentangled attention")) in found
    assert ("USES", model("BERT"), method("disentangled attention")) not in found


def test_another_subject_between_blocks_the_pair():
    found = relations("Unlike LSTMs that read in order, Transformers apply self-attention everywhere.")
    assert ("USES", model("Transformer"), method("self-attention")) in found
    assert ("USES", model("LSTM"), method("self-attention")) not in found


def test_negation_blocks_the_pair():
    found = relations("ELECTRA without adversarial training is weaker. We replace CRF with dropout.")
    assert not [key for key in found if key[0] == "USES"]


def test_never_relates_an_entity_to_itself():
    found = relations("BERTlarge outperforms BERTbase on SQuAD, and BERT is trained on BERT data.")
    assert all(key[1] != key[2] for key in found)


def test_own_model_is_resolved_from_our_model():
    text = "GlimmerNet: Sparse Mixers\nAbstract\nOur model is pre-trained on Wikipedia. GlimmerNet is fast."
    assert ("TRAINED_ON", model("GlimmerNet"), dataset("Wikipedia")) in relations(text)


def test_a_close_trigger_scores_higher_than_a_distant_one():
    near = relations("BERT is trained on BookCorpus.")[("TRAINED_ON", model("BERT"), dataset("BookCorpus"))]
    far = relations(
        "BERT, a deep bidirectional encoder with many layers and attention heads of considerable width, "
        "is trained on BookCorpus."
    )[("TRAINED_ON", model("BERT"), dataset("BookCorpus"))]
    assert 0 < far.confidence < near.confidence <= 1


def test_sentences_are_the_evidence_and_stay_short():
    filler = "which is a rather long aside about nothing in particular, "
    text = f"BERT is trained on BookCorpus. RoBERTa, {filler * 2}is trained on Wikipedia, {filler * 8}and more."
    found = relations(text)
    assert found[("TRAINED_ON", model("BERT"), dataset("BookCorpus"))].evidence == "BERT is trained on BookCorpus."
    long_one = found[("TRAINED_ON", model("RoBERTa"), dataset("Wikipedia"))]
    assert len(long_one.evidence) <= EVIDENCE_MAX_CHARS and "Wikipedia" in long_one.evidence


def test_pairs_in_different_sentences_are_not_related():
    assert relations("BERT is strong. It is trained on BookCorpus.") == {}


def test_output_is_unique_typed_deterministic_and_reports_progress():
    text = "DeBERTa outperforms RoBERTa on MNLI. " * 50 + "DeBERTa is pre-trained on Wikipedia."
    entities = extract_entities(text)
    progress: list[float] = []
    first = extract_relationships(text, entities, on_progress=progress.append)
    assert first == extract_relationships(text, entities)
    assert len({(r.relationship_type, r.source, r.target) for r in first}) == len(first)
    assert all(r.relationship_type in RELATIONSHIP_TYPES and 0 <= r.confidence <= 1 for r in first)
    keys = {(e.entity_type, e.name) for e in entities}
    assert all(r.source in keys and r.target in keys for r in first)
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_only_given_entities_are_related():
    text = "DeBERTa outperforms RoBERTa on MNLI."
    entities = [e for e in extract_entities(text) if e.name != "RoBERTa"]
    found = extract_relationships(text, entities)
    assert {(r.relationship_type, r.source, r.target) for r in found} == {
        ("EVALUATED_ON", model("DeBERTa"), dataset("MNLI"))
    }


def test_split_sentences_respects_abbreviations_and_drops_headings():
    text = (
        "3.2 MASKED LANGUAGE MODEL\nBERT (Devlin et al., 2019) uses MLM, e.g. on text. It works.\n"
        "Published at ICLR\nPublished at ICLR\nPublished at ICLR\nModel 90.1 91.2 92.3 93.4\n"
    )
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == ["BERT (Devlin et al., 2019) uses MLM, e.g. on text.", "It works."]
