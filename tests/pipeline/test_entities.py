"""Entity extraction on synthetic text: gazetteer matching, the paper's own model, false positives."""

from papers.pipeline.entities import (
    ENTITY_TYPES,
    OWN_CONTRIBUTION_CONFIDENCE,
    FoundEntity,
    extract_entities,
    find_mentions,
    lookup_term,
    references_span,
)


def by_key(text: str) -> dict[tuple[str, str], FoundEntity]:
    """Entities of text by (entity_type, name)."""
    return {(e.entity_type, e.name): e for e in extract_entities(text)}


def test_gazetteer_finds_each_entity_type():
    found = by_key(
        "BERT is pre-trained with masked language modeling and evaluated on SQuAD v1.1 for question answering, "
        "where it reaches 90.9 F1."
    )
    assert {
        ("MODEL", "BERT"),
        ("METHOD", "masked language modeling"),
        ("DATASET", "SQuAD v1.1"),
        ("TASK", "question answering"),
        ("METRIC", "F1"),
    } <= set(found)
    assert all(key[0] in ENTITY_TYPES and 0 <= e.confidence <= 1 for key, e in found.items())


def test_aliases_map_to_one_canonical_name():
    found = by_key(
        "Results on SQuAD 2.0 and SQuAD v2.0 use the F1 score. Named entity recognition (NER) matters; "
        "NER is hard. We report the exact match (EM)."
    )
    assert found[("DATASET", "SQuAD v2.0")].mentions == 2
    assert found[("METRIC", "F1")].mentions == 1
    assert found[("TASK", "named entity recognition")].mentions == 3
    assert found[("METRIC", "exact match")].mentions == 2


def test_short_acronyms_match_case_sensitively():
    found = by_key("In the race to scale, em dashes and cola drinks glue nothing. Transformers won the RACE benchmark.")
    assert ("DATASET", "RACE") in found and found[("DATASET", "RACE")].mentions == 1
    assert ("METRIC", "exact match") not in found
    assert ("DATASET", "CoLA") not in found
    assert ("DATASET", "GLUE") not in found


def test_names_inside_longer_names_do_not_count():
    found = by_key("RoBERTa, DeBERTa, ALBERT, DistilBERT and StructBERT all extend BERT.")
    assert found[("MODEL", "BERT")].mentions == 1
    assert {("MODEL", n) for n in ("RoBERTa", "DeBERTa", "ALBERT", "DistilBERT", "StructBERT")} <= set(found)


def test_longest_match_wins():
    found = by_key("We use masked language modeling, not language modeling, and SQuAD v1.1 rather than SQuAD.")
    assert found[("METHOD", "masked language modeling")].mentions == 1
    assert found[("TASK", "language modeling")].mentions == 1
    assert found[("DATASET", "SQuAD v1.1")].mentions == 1
    assert found[("DATASET", "SQuAD")].mentions == 1


def test_table_spellings_plurals_and_sizes_count_as_the_model():
    found = by_key("BERTlarge, BERTBASE, RoBERTa-Large, DeBERTa1.5B, Megatron336M and two LSTMs.")
    assert found[("MODEL", "BERT")].mentions == 2
    assert found[("MODEL", "RoBERTa")].mentions == 1
    assert found[("MODEL", "DeBERTa")].mentions == 1
    assert found[("MODEL", "Megatron")].mentions == 1
    assert found[("MODEL", "LSTM")].mentions == 1


def test_hyphenation_variants_of_lowercase_terms():
    found = by_key("Pretraining, pre-training and pre training; fine tuning and fine-tuning; Self-Attention.")
    assert found[("METHOD", "pre-training")].mentions == 3
    assert found[("METHOD", "fine-tuning")].mentions == 2
    assert found[("METHOD", "self-attention")].mentions == 1


def test_phrases_that_only_look_like_metrics_are_ignored():
    found = by_key("Recall that we train with mixed precision. The EM algorithm converges.")
    assert not {("METRIC", "recall"), ("METRIC", "precision"), ("METRIC", "exact match")} & set(found)


def test_acronyms_the_document_defines_differently_are_not_misread():
    found = by_key("We use noisy supervised pre-training (NSP). NSP helps, and NSP is cheap.")
    assert ("METHOD", "next sentence prediction") not in found
    # A named variant of a known method ("... pre-training") becomes a method of its own.
    assert found[("METHOD", "noisy supervised pre-training")].mentions == 4  # the "(NSP)" counts too
    found = by_key("We use a gated recurrent pooling (GRP) layer. GRP is fast.")
    assert not [key for key in found if key[1].startswith("gated")]
    found = by_key("BERT uses Next Sentence Prediction (NSP). NSP helps.")
    assert found[("METHOD", "next sentence prediction")].mentions == 3


def test_own_model_from_title_even_outside_the_vocabulary():
    text = (
        "GLIMMERNET: Sparse Gated Mixers for Long Documents\n"
        "Ada Lovelace, Alan Turing\n"
        "Abstract\n"
        "GlimmerNet reads long documents. Unlike BERT, GlimmerNet is fast; GlimmerNet is pre-trained on "
        "Wikipedia.\n"
    )
    entities = extract_entities(text)
    found = {(e.entity_type, e.name): e for e in entities}
    own = found[("MODEL", "GlimmerNet")]
    assert own.confidence >= OWN_CONTRIBUTION_CONFIDENCE
    assert own.confidence > found[("MODEL", "BERT")].confidence
    assert (own.first_offset, own.mentions) == (0, 4)  # the all-caps title counts as a mention
    assert entities[0] == own


def test_own_model_from_we_propose_even_outside_the_vocabulary():
    text = "In this paper, we propose a new sequence model QuokkaNet that reads faster. QuokkaNet wins."
    own = by_key(text)[("MODEL", "QuokkaNet")]
    assert own.confidence >= OWN_CONTRIBUTION_CONFIDENCE
    assert own.mentions == 2


def test_proposed_name_followed_by_a_method_noun_is_a_method():
    found = by_key("We propose the WobbleMix algorithm for fine-tuning. WobbleMix is simple.")
    assert found[("METHOD", "WobbleMix")].confidence >= OWN_CONTRIBUTION_CONFIDENCE
    assert ("MODEL", "WobbleMix") not in found


def test_proposed_name_is_typed_by_the_noun_before_it():
    found = by_key("In this work we introduce a new benchmark, ZebraQA, for reading. ZebraQA is hard.")
    assert found[("DATASET", "ZebraQA")].confidence >= OWN_CONTRIBUTION_CONFIDENCE


def test_propose_without_a_name_raises_nothing():
    found = by_key("We propose to use BERT for this. We present results for RoBERTa. Paper: a study of GPT-2.")
    assert all(e.confidence < OWN_CONTRIBUTION_CONFIDENCE for e in found.values())
    assert ("MODEL", "Paper") not in found


def test_model_shaped_unknown_names_are_found_with_low_confidence():
    found = by_key("Baselines include SimBERT, KiwiBERT and the MLM objective.")
    kiwi = found[("MODEL", "KiwiBERT")]
    assert kiwi.confidence < found[("MODEL", "SimBERT")].confidence
    assert ("MODEL", "MLM") not in found


def test_mentions_only_in_the_bibliography_are_skipped():
    body = "We fine-tune BERT on GLUE. " * 20
    text = (
        f"Title\n{body}\nREFERENCES\nJ. Devlin. BERT: pre-training of deep transformers. "
        "A. Wang. GLUE. Y. Tay. Longformer and ImageNet.\n"
        "A APPENDIX\nA.1 DATASETS\nWe also report MNLI results.\n"
    )
    found = by_key(text)
    assert found[("MODEL", "BERT")].mentions == 20
    assert found[("DATASET", "GLUE")].mentions == 20
    assert ("MODEL", "Longformer") not in found and ("DATASET", "ImageNet") not in found
    assert ("DATASET", "MNLI") in found  # the appendix after the references counts again
    start, end = references_span(text)
    assert text[start:].startswith("REFERENCES") and text[end:].startswith("A APPENDIX")


def test_confidence_grows_with_mentions_but_stays_below_the_own_model_level():
    found = by_key("RoBERTa. " + "XLNet. " * 30)
    assert found[("MODEL", "XLNet")].confidence > found[("MODEL", "RoBERTa")].confidence
    assert found[("MODEL", "XLNet")].confidence < OWN_CONTRIBUTION_CONFIDENCE


def test_output_is_unique_ordered_and_deterministic():
    text = "GLUE and MNLI. BERT on MNLI. Accuracy and F1 for BERT on GLUE. " * 5
    first, second = extract_entities(text), extract_entities(text)
    assert first == second
    assert [e.first_offset for e in first] == sorted(e.first_offset for e in first)
    assert len({(e.entity_type, e.name) for e in first}) == len(first)
    assert first[0] == FoundEntity("DATASET", "GLUE", first[0].confidence, 10, 0)


def test_progress_is_reported_per_chunk_and_ends_at_one():
    text = "BERT is evaluated on GLUE with accuracy. " * 3000  # ~120k characters
    progress: list[float] = []
    found = extract_entities(text, on_progress=progress.append)
    assert len(progress) >= 5
    assert progress == sorted(progress) and all(0 <= p <= 1 for p in progress)
    assert progress[-1] == 1.0
    assert {e.name: e.mentions for e in found}["BERT"] == 3000


def test_empty_text_gives_nothing_but_finishes_progress():
    progress: list[float] = []
    assert extract_entities("", on_progress=progress.append) == []
    assert progress[-1] == 1.0


def test_find_mentions_locates_given_entities():
    text = "RoBERTa beats BERT. BERT is older."
    mentions = find_mentions(text, [e for e in extract_entities(text) if e.name == "BERT"])
    assert [(m.start, text[m.start : m.end]) for m in mentions] == [(14, "BERT"), (20, "BERT")]


# --- acronym definitions ---


def test_a_definition_spelling_out_the_gazetteer_meaning_keeps_the_acronym():
    found = by_key(
        "We use the Stanford Natural Language Inference (SNLI) corpus. SNLI has 570k pairs. "
        "MultiNLI is also known as Multi-Genre Natural Language Inference (MNLI)."
    )
    assert found[("DATASET", "SNLI")].mentions == 3  # the long form, "(SNLI)" and "SNLI"
    assert found[("DATASET", "MNLI")].mentions == 3
    assert ("TASK", "natural language inference") not in found


def test_a_definition_with_a_variant_long_form_keeps_the_acronym_and_counts_the_long_form():
    text = (
        "We train a convolution neural net (CNN). Each convolution neural net layer, like any CNN, pools. "
        "Generative Adversarial Nets (GANs) and GANs. Loss is the Mean Square Error (MSE); MSE is low. "
        "A Long Short Term Memory (LSTM) cell."
    )
    found = by_key(text)
    assert found[("MODEL", "CNN")].mentions == 4
    assert found[("MODEL", "GAN")].mentions == 3
    assert found[("METRIC", "mean squared error")].mentions == 3
    assert found[("MODEL", "LSTM")].mentions == 2


def test_a_definition_with_another_meaning_still_overrides_the_acronym():
    found = by_key("We fit it with Expectation Maximization (EM). EM converges. Earth Mover's distance (EMD) too.")
    assert ("METRIC", "exact match") not in found
    assert ("METHOD", "enhanced mask decoder") not in found


def test_the_first_definition_of_an_acronym_decides():
    found = by_key("A convolutional neural network (CNN) reads. Later, a cascaded neural network (CNN) again. CNN.")
    assert found[("MODEL", "CNN")].mentions == 4


def test_acronyms_the_paper_defines_for_gazetteer_terms_count_as_those_terms():
    found = by_key("We use batch normalization (BN) and average precision (AP). BN helps; AP rises; bn is not it.")
    assert found[("METHOD", "batch normalization")].mentions == 3
    assert found[("METRIC", "average precision")].mentions == 3
    # An acronym that is a word in capitals is not learned: headings are written in capitals.
    found = by_key("We report the Inception score (IS). WHAT IS A GOOD SCORE")
    assert found[("METRIC", "Inception score")].mentions == 1


def test_a_defined_dataset_or_task_outside_the_gazetteer_counts_its_long_form_and_acronym_as_one():
    text = (
        "We evaluate on the Million Song Dataset (MSD). The million song dataset is large; MSD has tags. "
        "We study aspect-based sentiment analysis (ABSA): ABSA and Aspect-Based Sentiment Analysis."
    )
    found = by_key(text)
    assert found[("DATASET", "MSD")].mentions == 4
    assert found[("TASK", "aspect-based sentiment analysis")].mentions == 4
    assert ("TASK", "sentiment analysis") not in found
    # The noun after the acronym tells too; a long form that says nothing stays unknown.
    assert by_key("The Wall Street Journal (WSJ) and WSJ.") == {}
    assert by_key("The Wall Street Journal (WSJ) corpus and WSJ.")[("DATASET", "WSJ")].mentions == 3
    found = by_key("A multi-label document classification (MDC) loss. MDC helps.")
    assert found[("METHOD", "multi-label document classification")].mentions == 3


# --- versions of datasets ---


def test_a_year_or_version_after_a_dataset_name_is_kept():
    text = (
        "We use PASCAL VOC 2012, VOC 2012, VOC2007 and PASCAL VOC07. COCO 2017 and MS COCO 2017 differ from "
        "COCO 2014. WMT 2014, WMT'14, WMT14 and WMT’16. CoNLL-2005 and CoNLL 2009 are not CoNLL-2003. "
        "Visual Genome v1.4, MS MARCO 2.1 and ImageNet."
    )
    found = by_key(text)
    assert found[("DATASET", "PASCAL VOC 2012")].mentions == 2
    assert found[("DATASET", "PASCAL VOC 2007")].mentions == 2
    assert found[("DATASET", "COCO 2017")].mentions == 2
    assert found[("DATASET", "COCO 2014")].mentions == 1
    assert found[("DATASET", "WMT 2014")].mentions == 3
    assert found[("DATASET", "WMT 2016")].mentions == 1
    assert found[("DATASET", "CoNLL-2005")].mentions == 1
    assert found[("DATASET", "CoNLL-2009")].mentions == 1
    assert found[("DATASET", "CoNLL-2003")].mentions == 1
    assert found[("DATASET", "Visual Genome v1.4")].mentions == 1
    assert found[("DATASET", "MS MARCO 2.1")].mentions == 1
    assert {name for kind, name in found if kind == "DATASET"} == {
        "PASCAL VOC 2012", "PASCAL VOC 2007", "COCO 2017", "COCO 2014", "WMT 2014", "WMT 2016", "CoNLL-2005",
        "CoNLL-2009", "CoNLL-2003", "Visual Genome v1.4", "MS MARCO 2.1", "ImageNet",
    }  # fmt: skip


def test_versions_the_gazetteer_already_knows_are_not_duplicated():
    found = by_key("SQuAD 2.0, SQuAD v2.0, SQuAD2.0 and SQuAD v1.1; WNUT'16 and WNUT 2016; CoNLL 2012.")
    assert found[("DATASET", "SQuAD v2.0")].mentions == 3
    assert found[("DATASET", "SQuAD v1.1")].mentions == 1
    assert found[("DATASET", "WNUT 2016")].mentions == 2
    assert found[("DATASET", "CoNLL-2012")].mentions == 1
    assert len(found) == 4


def test_numbers_that_are_not_versions_are_left_alone():
    text = (
        "COCO 73.6 72.4 on a table row; ImageNet 1.2 million images; CIFAR100-20 and CoNLL-10 annotators; "
        "BERT 2019 is a model, not a dataset; COCO 5 times; MNIST 3000 images; STORIES10 has a footnote."
    )
    found = by_key(text)
    datasets = {name for kind, name in found if kind == "DATASET"}
    assert datasets == {"COCO", "ImageNet", "CIFAR-100", "CoNLL-2003", "MNIST", "Stories"}
    assert ("MODEL", "BERT") in found


def test_lookup_term_resolves_versioned_dataset_names():
    assert lookup_term("VOC 2012").name == "PASCAL VOC 2012"
    assert lookup_term("WMT'14").name == "WMT 2014"
    assert lookup_term("SQuAD 2.0").name == "SQuAD v2.0"
    assert lookup_term("BERT 2019") is None


# --- metrics in any case ---


def test_metric_aliases_match_in_any_case_except_short_or_word_like_ones():
    found = by_key("mean IOU, mean IoU, Mean-IoU, mIoU and MIOU. BLEU and Bleu; f1 and F1; Accuracy.")
    assert found[("METRIC", "mean IoU")].mentions == 5
    assert found[("METRIC", "BLEU")].mentions == 2
    assert found[("METRIC", "F1")].mentions == 2
    # "em" is a word, "map" too: those aliases keep their case.
    found = by_key("The em dash, a map of the road, and the mAP and EM scores.")
    assert found[("METRIC", "mAP")].mentions == 1
    assert found[("METRIC", "exact match")].mentions == 1
