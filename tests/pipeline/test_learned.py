"""The learned extractor: the shipped model, training end to end on a tiny subset, the evaluation's metric."""

import hashlib

from papers.pipeline import entities as gazetteer
from papers.pipeline.learned import evaluate, extract, scirex, train
from papers.pipeline.learned.candidates import ANNOTATION_TYPE, normalise
from papers.pipeline.learned.document import Document
from papers.pipeline.learned.model import MODEL_DIR, SALIENCE_FILE, TAGGER_FILE
from papers.pipeline.learned.tagger import Tagger, gazetteer_tags

SENTENCE = "We evaluate FRRN on Cityscapes for semantic segmentation and report the mean IoU."


def tag(model: Tagger, text: str) -> set[tuple[str, str]]:
    """(label, surface) of the tagger's mentions in text."""
    document = Document.from_text(text)
    tags = gazetteer_tags(document, gazetteer._all_mentions(text)[0])
    return {
        (m.label, text[document.starts[m.start] : document.ends[m.end - 1]]) for m in model.tag(document, tags)
    }


def test_the_shipped_model_loads_small_and_tags_a_known_sentence():
    assert (MODEL_DIR / TAGGER_FILE).stat().st_size + (MODEL_DIR / SALIENCE_FILE).stat().st_size < 50 * 2**20
    model = extract.load(MODEL_DIR)
    assert model is not None and extract.load(MODEL_DIR) is model  # loaded once per process
    found = tag(model.tagger, SENTENCE)
    assert {("Material", "Cityscapes"), ("Task", "semantic segmentation"), ("Metric", "mean IoU")} <= found
    assert ("Method", "FRRN") in found


PAPER = (
    "FooNet: Full-Resolution Networks for Semantic Segmentation\n"
    "Ada Lovelace, Alan Turing\n"
    "Abstract\n"
    "We propose FooNet, a network for semantic segmentation in street scenes. "
    "FooNet reaches 71.8 % mean IoU on Cityscapes without pre-training.\n"
    "1 Introduction\n"
    "Semantic segmentation labels every pixel. Fully convolutional networks such as FCN and SegNet use a CNN "
    "encoder with dropout. Our FooNet keeps full resolution throughout.\n"
    "4 Experiments\n"
    "We train FooNet on Cityscapes with SGD and report mean IoU. FooNet outperforms SegNet by 14.8 points.\n"
    "Table 1: Results on Cityscapes (mean IoU).\n"
    "FooNet 71.8\nSegNet 57.0\nFCN 65.3\n"
)


def test_entities_carry_salience_and_the_paper_s_own_model_is_key():
    progress = []
    found = {(e.entity_type, e.name): e for e in extract.extract_entities(PAPER, on_progress=progress.append)}
    own = found[("MODEL", "FooNet")]
    assert own.key and own.salience == max(e.salience for e in found.values() if e.entity_type == "MODEL")
    assert own.confidence >= gazetteer.OWN_CONTRIBUTION_CONFIDENCE
    assert own.confidence == max(e.confidence for e in found.values())
    assert {"title", "abstract", "proposed"} <= set(own.signals)
    assert {("DATASET", "Cityscapes"), ("TASK", "semantic segmentation"), ("METRIC", "mean IoU")} <= {
        key for key, e in found.items() if e.key
    }
    # Building blocks mentioned in passing are dropped; a baseline the paper compares with stays, not key.
    assert not {("METHOD", "dropout"), ("MODEL", "CNN"), ("METHOD", "stochastic gradient descent")} & set(found)
    assert ("MODEL", "FCN") in found and not found[("MODEL", "FCN")].key
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 3
    assert all(0.0 <= e.salience <= 1.0 for e in found.values())


def test_without_a_model_the_gazetteer_answers(tmp_path, settings):
    settings.PAPER_EXTRACTOR_MODEL_DIR = str(tmp_path)
    assert extract.load() is None
    assert extract.extract_entities(SENTENCE) == gazetteer.extract_entities(SENTENCE)


def test_training_runs_end_to_end_on_a_tiny_subset_deterministically(tmp_path):
    documents = [d for d in scirex.read(limit=6)]
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        train.train_all(documents, out, iterations=5)
    digest = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in first.iterdir()}
    assert digest == {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in second.iterdir()}
    assert set(digest) == {TAGGER_FILE, SALIENCE_FILE}
    model = extract.load(first)
    assert model is not None
    entities = extract.extract_entities(documents[0].document.text, model=model)
    assert entities and any(e.key for e in entities)


def test_the_metric_matches_one_to_one_on_normalised_names():
    gold = [
        scirex.GoldEntity("Material", "SNLI", frozenset({"SNLI", "Stanford Natural Language Inference"})),
        scirex.GoldEntity("Metric", "Mean_IoU", frozenset({"mean IoU", "Mean IoU"})),
    ]
    predicted = [
        gazetteer.FoundEntity("DATASET", "SNLI", 0.9, 3, 0, salience=0.9, key=True),
        gazetteer.FoundEntity("DATASET", "Stanford natural language inference", 0.5, 1, 5, salience=0.5, key=True),
        gazetteer.FoundEntity("METRIC", "mean IOU", 0.8, 2, 9, salience=0.8, key=True),
        gazetteer.FoundEntity("MODEL", "BERT", 0.8, 2, 9, salience=0.8, key=True),
    ]
    counts = evaluate.match(predicted, gold)
    assert (counts["Material"].tp, counts["Material"].predicted, counts["Material"].gold) == (1, 2, 1)
    assert (counts["Metric"].tp, counts["Method"].predicted, counts["Method"].gold) == (1, 1, 0)
    assert normalise("Mean_IoU") == normalise("mean IOU") == normalise("mean-IoUs")


def test_the_held_out_part_is_fixed_and_about_a_fifth():
    ids = [d.doc_id for d in scirex.read()]
    held = [i for i in ids if scirex.held_out(i)]
    assert 0.15 < len(held) / len(ids) < 0.25
    assert held == [i for i in ids if scirex.held_out(i)]


def test_the_evaluation_counts_held_out_papers_and_rewrites_only_its_block(tmp_path):
    documents = [d for d in scirex.read(limit=40) if scirex.held_out(d.doc_id)][:3]
    report = evaluate.evaluate(documents, evaluate.default_extract)
    assert report.documents == 3 and report.seconds > 0
    gold = sum(len(d.key_entities) for d in documents)
    assert sum(c.gold for c in report.key.values()) == gold
    assert 0 < sum(c.tp for c in report.key.values()) <= sum(c.predicted for c in report.key.values())
    body = evaluate.table(report)
    assert "| **micro, all** |" in body and "3 held-out documents" in body
    doc = tmp_path / "extraction.md"
    doc.write_text("before\n<!-- eval-extractor:begin -->\nold\n<!-- eval-extractor:end -->\nafter\n")
    evaluate.write_doc(body, path=doc)
    assert doc.read_text() == f"before\n<!-- eval-extractor:begin -->\n{body}\n<!-- eval-extractor:end -->\nafter\n"


def test_key_entities_respect_each_type_s_cap():
    model = extract.load(MODEL_DIR)
    for text in (PAPER, next(scirex.read(limit=1)).document.text):
        found = extract.extract_entities(text, model=model)
        for kind, cap in model.salience.max_key.items():
            keys = [e for e in found if e.key and ANNOTATION_TYPE[e.entity_type] == kind]
            assert len(keys) <= cap


def candidates_of(text: str, spans: list[tuple[str, str]]) -> list:
    """Candidates gathered from the given (label, surface) tagger spans of text, without the gazetteer."""
    from papers.pipeline.learned.candidates import gather
    from papers.pipeline.learned.tagger import TaggedMention

    document = Document.from_text(text)
    tagged, position = [], 0
    for label, surface in spans:  # in the order they occur
        start = text.index(surface, position)
        position = start + len(surface)
        first, last = document.token_at(start), document.token_at(start + len(surface)) - 1
        tagged.append(TaggedMention(first, last + 1, label, 0.9))
    return gather(document, tagged, [], {})


def test_mixed_case_and_camel_case_acronyms_join_their_long_forms():
    from papers.pipeline.learned.candidates import _spells, display_name

    assert _spells("BiDAF", "Bi-Directional Attention Flow") and _spells("FPN", "FacePoseNet")
    assert _spells("CHFusion", "Context-Aware Hierarchical Fusion") and not _spells("LeakGAN", "Leaked Information")
    text = "We propose Bi-Directional Attention Flow ( BiDAF ) networks . BiDAF wins ."
    found = candidates_of(text, [("Method", "Bi-Directional Attention Flow"), ("Method", "BiDAF")])
    assert [display_name(c) for c in found] == ["BiDAF"] and len(found[0].offsets) == 2


def test_a_span_run_into_its_acronym_definition_is_cut_and_the_acronym_joined():
    from papers.pipeline.learned.candidates import display_name

    text = "We call it Context-Aware Hierarchical Fusion ( CHFusion ) . CHFusion is fast ."
    found = candidates_of(text, [("Method", "Context-Aware Hierarchical Fusion ( CHFusion"), ("Method", "CHFusion")])
    by_name = {display_name(c): c for c in found}
    assert "CHFusion" in by_name and "Context-Aware Hierarchical Fusion" in by_name["CHFusion"].surfaces


def test_what_follows_a_naming_verb_is_the_name_and_the_title_is_read_in_any_spelling():
    from papers.pipeline.learned.candidates import clean_surface, features

    assert clean_surface("generative model named Stacked Generative Adversarial Networks") == (
        "Stacked Generative Adversarial Networks"
    )
    assert clean_surface("named entity recognition") == "named entity recognition"
    text = (
        "Stacked Generative Adversarial Networks\nAbstract\nWe present a generative model named Stacked Generative "
        "Adversarial Networks ( SGAN ) . SGAN beats the GAN baseline .\n"
    )
    found = candidates_of(text, [
        ("Method", "generative model named Stacked Generative Adversarial Networks"), ("Method", "GAN baseline"),
    ])
    rows = dict(zip([c.acronym or "" for c in found], features(Document.from_text(text), found), strict=True))
    assert rows["SGAN"]["title_name"] == 1.0 and rows[""]["title_name"] == 0.0
