"""Result records: the result tables of three real papers, sentence patterns, the salience fallback, hostile input."""

from dataclasses import replace

import pytest

from papers.pipeline.entities import FoundEntity, extract_entities, find_mentions
from papers.pipeline.relationships import EVIDENCE_MAX_CHARS, extract_relationships, split_sentences
from papers.pipeline.results import (
    FALLBACK_CONFIDENCE,
    SENTENCE_CONFIDENCE,
    TABLE_CONFIDENCE,
    extract_results,
    sentence_records,
    table_records,
)
from tests.pipeline.test_limits import HOSTILE_TIMEOUT, MEGABYTE
from tests.pipeline.test_real_papers import run

Cell = tuple[str, str, str | None, str | None]  # (source name, dataset name, metric, score)


def table_cells(filename: str) -> set[Cell]:
    """Every (model, dataset, metric, score) read from the tables of a real paper, before choosing one per pair."""
    result = run(filename)
    records = table_records(result.text, find_mentions(result.text, result.entities))
    assert all(record.score in record.evidence for record in records)  # the number is where the evidence says
    return {(r.source[1], r.target[1], r.metric, r.score) for r in records}


def results(text: str, entities: list[FoundEntity] | None = None) -> dict[tuple[str, str], Cell]:
    """extract_results of a text (with its own extracted entities unless given), by (source, dataset) name."""
    entities = extract_entities(text) if entities is None else entities
    found = extract_results(text, entities, find_mentions(text, entities))
    assert len({(r.source, r.target) for r in found}) == len(found)
    assert all(r.relationship_type == "EVALUATED_ON" and len(r.evidence) <= EVIDENCE_MAX_CHARS for r in found)
    return {(r.source[1], r.target[1]): (r.source[1], r.target[1], r.metric, r.score) for r in found}


def evaluated(filename: str) -> dict[tuple[str, str], Cell]:
    """The EVALUATED_ON relationships the whole pipeline gives a real paper, by (source, dataset) name."""
    found = [r for r in run(filename).relationships if r.relationship_type == "EVALUATED_ON"]
    return {(r.source[1], r.target[1]): (r.source[1], r.target[1], r.metric, r.score) for r in found}


# --- tables of real papers ---


def test_deberta_tables():
    cells = table_cells("DeBERTa.pdf")
    assert {
        # Table 1 (GLUE): a metric line under the header ("Mcc Acc ..."), one column fewer than the datasets.
        ("DeBERTa", "CoLA", "Matthews correlation", "70.5"),
        ("RoBERTa", "MNLI", "accuracy", "90.2"),  # "MNLI-m/mm" with "90.2/90.2": the matched split
        ("DeBERTa", "GLUE", None, "90.00"),  # the "Avg." column scores the caption's benchmark
        # Table 2: "F1/EM" metrics split "90.9/84.1" cells.
        ("BERT", "SQuAD v1.1", "F1", "90.9"),
        ("BERT", "SQuAD v1.1", "exact match", "84.1"),
        ("XLNet", "RACE", "accuracy", "85.4"),
        ("DeBERTa", "ReCoRD", "F1", "91.4"),
        # Table 3: metrics in the header's parentheses, "SQuAD v2.0 (F1/EM)", and a missing F1 ("-/80.2").
        ("XLNet", "SQuAD v2.0", "exact match", "80.2"),
        # Table 4: a row label with a citation ("BERTbase Devlin et al. (2019)").
        ("BERT", "RACE", "accuracy", "65.0"),
        # Table 5 (SuperGLUE).
        ("T5", "BoolQ", "accuracy", "91.2"),
        ("DeBERTa", "SuperGLUE", None, "90.3"),
        # Table 10: models as columns, a metric per row ("Test PPL"), the dataset in the caption.
        ("DeBERTa", "WikiText-103", "perplexity", "19.9"),
        ("GPT-2", "WikiText-103", "perplexity", "37.50"),
    } <= cells
    assert ("XLNet", "SQuAD v2.0", "F1", "-") not in cells
    # Table 14's "MNLI-matched (Min/Max/Avg)" cells are statistics of runs, not metric splits: not read.
    assert not any(cell[:2] == ("DeBERTa", "MNLI") and cell[3] in {"86.1", "86.5"} for cell in cells)
    # Ablation rows ("-EMD") and the pre-training data table ("X" marks) name no evaluated model.
    assert not {cell[0] for cell in cells} & {"enhanced mask decoder", "Wikipedia"}
    assert not {cell[1] for cell in cells} & {"OpenWebText", "Wikipedia", "Stories"}


def test_deberta_results_keep_the_primary_metric_and_the_best_score_of_the_model_itself():
    found = evaluated("DeBERTa.pdf")
    assert found["DeBERTa", "SQuAD v1.1"] == ("DeBERTa", "SQuAD v1.1", "F1", "95.5")
    assert found["DeBERTa", "RACE"] == ("DeBERTa", "RACE", "accuracy", "86.8")
    # Lower is better for perplexity, and "DeBERTa-MT" (19.5) is a variant, not DeBERTa.
    assert found["DeBERTa", "WikiText-103"] == ("DeBERTa", "WikiText-103", "perplexity", "19.9")
    # Found by the sentence rules and by the tables: one relationship, with the table's score.
    assert found["DeBERTa", "MNLI"][2:] == ("accuracy", "91.7")


def test_layoutlm_tables():
    cells = table_cells("LayoutLM.pdf")
    assert {
        # Metrics as columns ("Precision Recall F1 #Parameters"), the dataset in the caption.
        ("LayoutLM", "FUNSD", "precision", "0.7677"),
        ("BERT", "SROIE", "recall", "0.9200"),
        ("VGG", "RVL-CDIP", "accuracy", "90.97%"),
    } <= cells
    # "#Parameters" holds sizes, not scores; Table 3 rows name two models ("BERTBASE LayoutLMBASE").
    assert not any(cell[3] in {"110M", "113M", "160M"} for cell in cells)
    assert ("BERT", "FUNSD", "F1", "0.7299") not in cells
    assert all(cell[1] in {"FUNSD", "SROIE", "RVL-CDIP"} for cell in cells)


def test_layoutlm_results():
    found = evaluated("LayoutLM.pdf")
    assert found["LayoutLM", "FUNSD"] == ("LayoutLM", "FUNSD", "F1", "0.7927")
    assert found["LayoutLM", "SROIE"] == ("LayoutLM", "SROIE", "F1", "0.9524")
    assert found["LayoutLM", "RVL-CDIP"] == ("LayoutLM", "RVL-CDIP", "accuracy", "94.42%")
    funsd = next(r for r in run("LayoutLM.pdf").relationships if r.target[1] == "FUNSD" and r.source[1] == "LayoutLM")
    assert funsd.evidence.startswith("Table 1: Model accuracy (Precision, Recall, F1) on the FUNSD dataset")
    assert funsd.evidence.endswith("LayoutLMBASE (11M, 2 epochs) 0.7677 0.8195 0.7927 160M")


def test_few_shot_ner_tables():
    cells = table_cells("Few_shot_NER.pdf")
    assert {
        # The metric comes from the caption ("Comparison of F1-score ..."), "0.752±0.023" is read as 0.752.
        ("StructShot", "CoNLL-2003", "F1", "0.752"),
        ("SimBERT", "i2b2", "F1", "0.091"),
        ("L-TapNet+CDT", "WNUT 2017", "F1", "0.238"),
    } <= cells
    # "P + NSP" and "LC + NSP + ST" are combinations, not the NSP method alone; Table 4 groups rows by dataset.
    assert {cell[0] for cell in cells} == {"StructShot", "SimBERT", "L-TapNet+CDT"}


# --- synthetic tables ---


def test_a_caption_above_its_table_with_metrics_in_the_caption():
    text = (
        "We compare with the strongest baselines below.\n"
        "Table 2: Results on SQuAD v1.1 and v2.0 development sets (F1/EM).\n"
        "Model SQuAD v1.1 SQuAD v2.0\n"
        "BERT large 90.9/84.1 81.8/79.0\n"
        "XLNet 94.5*/89.0 88.8/86.1\n"  # "*": the best result
    )
    assert results(text) == {
        ("BERT", "SQuAD v1.1"): ("BERT", "SQuAD v1.1", "F1", "90.9"),
        ("BERT", "SQuAD v2.0"): ("BERT", "SQuAD v2.0", "F1", "81.8"),
        ("XLNet", "SQuAD v1.1"): ("XLNet", "SQuAD v1.1", "F1", "94.5"),
        ("XLNet", "SQuAD v2.0"): ("XLNet", "SQuAD v2.0", "F1", "88.8"),
    }


def test_a_caption_gets_its_own_table_not_the_one_before_it():
    text = (
        "Table 1: Results on SQuAD v1.1 (F1).\nModel SQuAD v1.1\nBERT 90.9\n"
        "TABLE II: Results on MNLI (accuracy).\nModel MNLI\nXLNet 89.8\n"
    )
    assert set(results(text).values()) == {("BERT", "SQuAD v1.1", "F1", "90.9"), ("XLNet", "MNLI", "accuracy", "89.8")}


def test_rows_that_do_not_line_up_with_the_header_are_skipped():
    text = "Model SQuAD v1.1 MNLI\nF1 Acc\nBERT 90.9\nXLNet 94.5 89.8\nTable 1: Results on the dev sets.\n"
    assert results(text) == {
        ("XLNet", "SQuAD v1.1"): ("XLNet", "SQuAD v1.1", "F1", "94.5"),
        ("XLNet", "MNLI"): ("XLNet", "MNLI", "accuracy", "89.8"),
    }


def test_a_variant_row_does_not_give_the_model_its_score():
    text = "Model CoNLL-2003\nF1\nBERT-CRF 93.1\nBERT 92.4\nRoBERTa-CRF 93.4\nTable 3: NER results.\n"
    assert results(text)["BERT", "CoNLL-2003"] == ("BERT", "CoNLL-2003", "F1", "92.4")
    # Only a variant measured: its score stands for the model.
    assert results(text)["RoBERTa", "CoNLL-2003"] == ("RoBERTa", "CoNLL-2003", "F1", "93.4")


TWO_METRICS = "Model SQuAD v1.1\nF1/EM\nBERT 90.9/84.1\nTable 1: {caption}\n"


def test_the_metric_the_caption_names_is_primary():
    text = TWO_METRICS.format(caption="Exact match (EM) on the development set.")
    assert results(text)["BERT", "SQuAD v1.1"] == ("BERT", "SQuAD v1.1", "exact match", "84.1")


def test_the_most_salient_metric_is_primary_when_the_caption_names_none():
    text = TWO_METRICS.format(caption="Results on the development set.")
    entities = extract_entities(text)
    assert results(text, entities)["BERT", "SQuAD v1.1"][2:] == ("F1", "90.9")  # no salience: the first column
    salient = [replace(e, salience=0.9) if e.name == "exact match" else e for e in entities]
    assert results(text, salient)["BERT", "SQuAD v1.1"][2:] == ("exact match", "84.1")


# --- sentences ---


def frrn(text: str) -> list[FoundEntity]:
    """The text's entities plus FRRN, a model the gazetteer does not know."""
    return [*extract_entities(text), FoundEntity("MODEL", "FRRN", 0.9, 1, text.index("FRRN"))]


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("BERT achieves 85.3 F1 on SQuAD.", ("BERT", "SQuAD", "F1", "85.3")),
        ("ResNet reaches an accuracy of 91.2% on CIFAR-10.", ("ResNet", "CIFAR-10", "accuracy", "91.2%")),
        ("On Cityscapes, our FRRN obtains 71.8% mean IoU.", ("FRRN", "Cityscapes", "mean IoU", "71.8%")),
        ("T5 achieves an F1 score of 0.9524 on the SROIE dataset.", ("T5", "SROIE", "F1", "0.9524")),
    ],
)
def test_a_sentence_gives_a_score(text, cell):
    entities = frrn(text) if "FRRN" in text else extract_entities(text)
    assert results(text, entities) == {cell[:2]: cell}


@pytest.mark.parametrize(
    "text",
    [
        "XLNet improves over BERT by 2.3 F1 on SQuAD.",
        "RoBERTa achieves a gain of 1.2 accuracy on MNLI.",
        "ELECTRA obtains 89.4 F1 over BERT on SQuAD v2.0.",
        "DeBERTa does not reach 90.1 accuracy on MNLI.",
        "BERT achieves 85.3 F1, which is close to the best result.",
        "BERT and 85.3 F1 on SQuAD.",
    ],
)
def test_differences_negations_and_incomplete_sentences_give_no_score(text):
    assert results(text) == {}


def test_a_sentence_result_merges_into_the_rule_found_relationship():
    found = extract_relationships(
        "XLNet achieves 90.1 accuracy on MNLI.", extract_entities("XLNet achieves 90.1 accuracy on MNLI.")
    )
    evaluated = [r for r in found if r.relationship_type == "EVALUATED_ON"]
    assert len(evaluated) == 1
    assert (evaluated[0].source, evaluated[0].target) == (("MODEL", "XLNet"), ("DATASET", "MNLI"))
    assert (evaluated[0].metric, evaluated[0].score) == ("accuracy", "90.1")
    assert evaluated[0].confidence >= SENTENCE_CONFIDENCE


# --- the fallback ---

FALLBACK_TEXT = (
    "We propose FooNet for question answering. FooNet is a compact reader. "
    "FooNet is evaluated on SQuAD v1.1 and we report F1 throughout. Earlier readers were tested on MNLI."
)


def salient(salience: dict[str, float]) -> list[FoundEntity]:
    """FALLBACK_TEXT's entities (FooNet is the model it proposes) with the given salience by name."""
    return [replace(e, salience=salience.get(e.name, 0.0)) for e in extract_entities(FALLBACK_TEXT)]


def test_without_tables_or_scores_key_models_and_datasets_are_paired_with_the_most_salient_metric():
    entities = salient({"FooNet": 0.9, "SQuAD v1.1": 0.8, "MNLI": 0.1, "F1": 0.6, "accuracy": 0.2})
    found = extract_results(FALLBACK_TEXT, entities, find_mentions(FALLBACK_TEXT, entities))
    assert [(r.source, r.target, r.metric, r.score) for r in found] == [
        (("MODEL", "FooNet"), ("DATASET", "SQuAD v1.1"), "F1", None)
    ]
    assert found[0].confidence == FALLBACK_CONFIDENCE < TABLE_CONFIDENCE
    assert found[0].evidence == "FooNet is evaluated on SQuAD v1.1 and we report F1 throughout."


def test_key_flags_count_without_salience_and_a_pair_without_a_sentence_still_gets_evidence():
    entities = [replace(e, key=e.name in {"FooNet", "MNLI"}) for e in salient({})]
    found = extract_results(FALLBACK_TEXT, entities, find_mentions(FALLBACK_TEXT, entities))
    assert [(r.source[1], r.target[1], r.metric) for r in found] == [("FooNet", "MNLI", None)]
    assert "FooNet" in found[0].evidence and "MNLI" in found[0].evidence


def test_no_fallback_without_salience_and_a_read_result_wins_over_it():
    assert results(FALLBACK_TEXT, salient({})) == {}
    text = FALLBACK_TEXT + " FooNet achieves 88.1 F1 on SQuAD v1.1."
    entities = [replace(e, salience=0.8, key=True) for e in extract_entities(text)]
    found = {(r.source[1], r.target[1]): r for r in extract_results(text, entities, find_mentions(text, entities))}
    assert set(found) == {("FooNet", "SQuAD v1.1"), ("FooNet", "MNLI")}
    read, paired = found[("FooNet", "SQuAD v1.1")], found[("FooNet", "MNLI")]
    assert (read.metric, read.score, read.confidence) == ("F1", "88.1", SENTENCE_CONFIDENCE)
    assert (paired.score, paired.confidence) == (None, FALLBACK_CONFIDENCE)


# --- hostile input ---


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_megabyte_line_of_digits_is_skipped_quickly():
    text = "Table 1: Results on SQuAD with F1.\nModel SQuAD\n" + "7" * MEGABYTE + "\nBERT achieves 90.1 F1 on SQuAD.\n"
    found = [r for r in extract_relationships(text, extract_entities(text)) if r.score is not None]
    assert [(r.source[1], r.target[1], r.metric, r.score) for r in found] == [("BERT", "SQuAD", "F1", "90.1")]


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_ten_thousand_captions_are_read_quickly():
    text = "Table 1: Results on SQuAD with F1.\nModel SQuAD\nBERT 90.1\n" * 10_000
    assert results(text) == {("BERT", "SQuAD"): ("BERT", "SQuAD", "F1", "90.1")}
    assert results("Table 1:\n" * 10_000 + "Table 1: " * 10_000) == {}


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_megabyte_row_and_a_megabyte_of_metric_mentions_are_read_quickly():
    row = "Table 1: Results on SQuAD with F1.\nModel SQuAD\nBERT " + "90.1 " * (MEGABYTE // 5) + "\n"
    assert results(row) == {}
    assert results("BERT achieves " + "90.1 F1 " * (MEGABYTE // 8) + "on SQuAD.") == {}


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_megabyte_sentence_dense_with_scores_and_names_is_read_in_linear_time():
    unit = "BERT,achieves,90%accuracy,in,SQuAD,"  # no space: one sentence of 85,000 mentions
    text = unit * (MEGABYTE // len(unit))
    entities = extract_entities(text)
    assert sentence_records(text, find_mentions(text, entities), split_sentences(text)) == []
