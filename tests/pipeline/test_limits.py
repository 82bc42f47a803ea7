"""Hostile inputs: every parser finishes in linear time, and extraction stops at the page and character limits."""

import zlib
from pathlib import Path

import pytest

from papers.pipeline.entities import document_terms, extract_entities
from papers.pipeline.learned.extract import extract_entities as learned_entities
from papers.pipeline.relationships import extract_relationships
from papers.pipeline.text import MAX_TEXT_CHARS, TextExtractionError, extract_text, normalize_text

MEGABYTE = 1_000_000
# Generous: each case takes about a second; before the fix each took hours (bench/hostile.py measures them).
HOSTILE_TIMEOUT = 20


def extract_error(path: Path, **limits) -> tuple[str, list[tuple[int, int]]]:
    """The code extract_text fails with, and the pages it reported reading before failing."""
    pages: list[tuple[int, int]] = []
    with pytest.raises(TextExtractionError) as caught:
        extract_text(str(path), on_page=lambda done, total: pages.append((done, total)), **limits)
    return caught.value.code, pages


def shared_stream_pdf(
    path: Path, *, pages: int, lines: int, chars: int = 200, repeats: int = 1, last_repeats: int | None = None
) -> Path:
    """A small PDF whose pages all draw one Flate content stream of `lines` lines of `chars` letters, `repeats` times
    (the last page `last_repeats` times, when given).

    The stream compresses about 1000:1 and is stored once, so the file stays tens of KB while its text is
    pages * repeats * lines * chars characters: a decompression bomb for a text extractor.
    """
    line = b"(" + b"A" * chars + b") Tj T*\n"
    stream = zlib.compress(b"BT /F1 1 Tf 12 TL 0 0 Td\n" + line * lines + b"ET\n", 9)

    def page(draws: int) -> bytes:
        return (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            b" /Contents [" + b" ".join([b"4 0 R"] * draws) + b"] >>"
        )

    kids = b" ".join(b"%d 0 R" % (5 + index) for index in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        *[page(repeats)] * (pages - 1),
        page(repeats if last_repeats is None else last_repeats),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


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
def test_a_megabyte_of_words_between_acronym_parentheses_is_read_quickly():
    # Each "(AB)" is looked for a definition only in the words since the previous one.
    text = ("word " * 60 + "(AB) ") * 3300 + "We use noisy supervised pre-training (NSP) here."
    assert document_terms(text).acronyms["NSP"].name == "noisy supervised pre-training"


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_a_megabyte_of_versioned_dataset_names_is_scanned_quickly():
    found = extract_entities("COCO 2014 and VOC07, " * 50_000)
    assert [(entity.name, entity.mentions) for entity in found] == [("COCO 2014", 50_000), ("PASCAL VOC 2007", 50_000)]


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
def test_one_proposed_name_repeated_tens_of_thousands_of_times_is_read_once():
    text = "We propose FooNet (FN) on CIFAR-10 with 91.2 % accuracy.\n" * 17_500  # a megabyte
    assert ("MODEL", "FooNet") in {(e.entity_type, e.name) for e in extract_entities(text)}


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_the_learned_extractor_reads_a_megabyte_of_dense_text_quickly():
    for text in ("BERT on SQuAD a b c . " * (MEGABYTE // 22), "." * MEGABYTE, "x" * MEGABYTE):
        assert learned_entities(text) is not None


@pytest.mark.timeout(HOSTILE_TIMEOUT)
def test_the_whole_pipeline_finishes_quickly_on_an_unbroken_megabyte_word():
    text = normalize_text("The BERT model " + "x" * MEGABYTE + " uses (MLM) masked language modeling")
    assert extract_relationships(text, extract_entities(text)) is not None


# --- extraction limits ---


def test_a_pdf_decompression_bomb_stops_at_the_character_limit_without_reading_every_page(tmp_path):
    # 300 pages of 40,000 characters each (12 M characters) from a file of under 50 KB.
    bomb = shared_stream_pdf(tmp_path / "bomb.pdf", pages=300, lines=200)
    assert bomb.stat().st_size < 50_000
    code, pages = extract_error(bomb)
    assert code == "text_too_long"
    assert len(pages) <= MAX_TEXT_CHARS // 40_000 + 1  # stopped at the page that passed the limit


def test_a_pdf_with_more_pages_than_the_limit_fails_before_any_page_is_read(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "long.pdf", pages=501, lines=1, chars=5)
    code, pages = extract_error(pdf)
    assert (code, pages) == ("too_many_pages", [])
    assert extract_error(pdf, max_pages=10)[0] == "too_many_pages"
    assert len(extract_text(str(pdf), max_pages=501)) > 0


def test_a_plain_text_file_over_the_character_limit_fails(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("word " * (MAX_TEXT_CHARS // 5) + "over")
    assert extract_error(path)[0] == "text_too_long"
    path.write_text("word " * 100)
    assert extract_error(path, max_chars=499)[0] == "text_too_long"
    assert extract_text(str(path), max_chars=500) == ("word " * 100).strip()


def test_text_that_grows_past_the_limit_in_normalization_fails(tmp_path):
    path = tmp_path / "ligatures.txt"
    path.write_text("\ufb03" * 400)  # 400 characters, 1200 once each ligature is spelled out
    assert extract_error(path, max_chars=1000)[0] == "text_too_long"


def test_a_pdf_page_is_cut_at_the_remaining_character_budget(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "pages.pdf", pages=3, lines=5, chars=100)  # 508 characters a page
    assert len(extract_text(str(pdf), max_chars=3 * 508)) == 1516  # within the limit: every page
    code, pages = extract_error(pdf, max_chars=1200)  # passed on page 3
    assert (code, [done for done, _total in pages]) == ("text_too_long", [1, 2])
