"""Text extraction: PDF and plain-text files, failure codes, and normalization."""

from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from papers.pipeline.text import TextExtractionError, extract_text, normalize_text


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A real PDF with one list of lines per page (an empty list gives a page with a shape and no text)."""
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        pdf.rect(100, 100, 50, 50)
        y = 780
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 14
        pdf.showPage()
    pdf.save()
    return path


def error_code(path: Path) -> str:
    """The code extract_text fails with for this file."""
    with pytest.raises(TextExtractionError) as caught:
        extract_text(str(path))
    return caught.value.code


# --- normalize_text ---


def test_ligatures_become_letters():
    text = "ﬁne-tuning the eﬃcient ﬂow of eﬀort, baﬄed"
    assert normalize_text(text) == "fine-tuning the efficient flow of effort, baffled"


def test_line_end_hyphenation_joins_split_words():
    assert normalize_text("a new represen-\ntation of the input") == "a new representation of the input"


def test_line_end_hyphen_kept_when_the_document_spells_the_word_hyphenated():
    text = "We use pre-training. Our pre-\ntraining takes a day."
    assert normalize_text(text) == "We use pre-training. Our pre-training takes a day."


def test_line_end_hyphen_kept_for_known_prefixes_numbers_and_longer_compounds():
    text = "self-\nattention, GPT-\n2 and head-\nto-head; attention we pre-\nfer, in-\ntroducing"
    assert normalize_text(text) == "self-attention, GPT-2 and head-to-head; attention we prefer, introducing"


def test_pdfium_hyphen_marker_is_resolved_like_a_line_end_hyphen():
    text = "In this pa\ufffeper we study in\ufffedomain data, in-domain always, and Wikitext\ufffe103."
    assert normalize_text(text) == "In this paper we study in-domain data, in-domain always, and Wikitext-103."


def test_all_caps_title_split_is_joined_when_the_body_has_the_word():
    text = "DIS\ufffeENTANGLED ATTENTION\nwith disentangled attention"
    assert normalize_text(text).startswith("DISENTANGLED ATTENTION")


def test_soft_hyphens_disappear():
    assert normalize_text("Trans\u00adformer and Trans\u00ad\nformers") == "Transformer and Transformers"


def test_whitespace_collapses_but_paragraphs_and_lines_stay():
    text = "  one\u00a0 \t two  \r\nthree\r\n\r\n\r\n\r\nfour\u200b \n"
    assert normalize_text(text) == "one two\nthree\n\nfour"


def test_fonts_that_map_ligatures_to_punctuation_are_repaired():
    text = (
        'It was veri!ed on the !rst run. The e#orts and work$ows were e"cient and speci!c. '
        "Our classi!cation is di#erent."
    )
    assert normalize_text(text) == (
        "It was verified on the first run. The efforts and workflows were efficient and specific. "
        "Our classification is different."
    )


def test_punctuation_is_left_alone_without_the_broken_font_pattern():
    text = 'Wow!great "quoted"text costs $5 and #1'
    assert normalize_text(text) == text


# --- plain text files ---


def test_plain_text_round_trip_with_bom_and_single_page_callback(tmp_path):
    path = tmp_path / "paper.txt"
    path.write_bytes("\ufeffBERT is pre-\ntrained on Wikipedia.\r\n".encode("utf-8"))
    calls = []
    assert extract_text(str(path), on_page=lambda done, total: calls.append((done, total))) == (
        "BERT is pre-trained on Wikipedia."
    )
    assert calls == [(1, 1)]


def test_plain_text_in_utf16_is_refused_like_the_upload_refuses_it(tmp_path):
    path = tmp_path / "paper.txt"
    path.write_bytes("Résumé of GPT-2".encode("utf-16"))
    assert error_code(path) == "unsupported_type"


def test_invalid_utf8_fails_instead_of_mangling(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("naïve café".encode("latin-1"))
    assert error_code(path) == "decode_failed"


def test_binary_files_are_unsupported(tmp_path):
    path = tmp_path / "image.pdf"  # the extension does not matter, the bytes do
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert error_code(path) == "unsupported_type"


def test_empty_and_blank_files_are_empty_documents(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \n\t\n")
    assert error_code(tmp_path / "empty.txt") == "empty_document"
    assert error_code(tmp_path / "blank.txt") == "empty_document"


def test_missing_file_fails_with_the_default_code(tmp_path):
    assert error_code(tmp_path / "nope.pdf") == "text_extraction_failed"


def test_error_keeps_message_and_code():
    error = TextExtractionError("broken", code="unreadable_pdf")
    assert (str(error), error.code) == ("broken", "unreadable_pdf")
    assert TextExtractionError("x").code == "text_extraction_failed"


# --- PDF files ---


def test_pdf_round_trip_reports_every_page(tmp_path):
    path = make_pdf(
        tmp_path / "known.bin",  # detected by its %PDF- header, not its name
        [
            ["GlimmerNet: Robust Reading", "We propose GlimmerNet, a new represen-", "tation learner."],
            ["It is pre-trained on BookCorpus."],
            ["It outperforms BERT on SQuAD."],
        ],
    )
    calls = []
    text = extract_text(str(path), on_page=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert text == (
        "GlimmerNet: Robust Reading\nWe propose GlimmerNet, a new representation learner.\n\n"
        "It is pre-trained on BookCorpus.\n\nIt outperforms BERT on SQuAD."
    )


def test_pdf_without_text_is_an_empty_document(tmp_path):
    path = make_pdf(tmp_path / "scan.pdf", [[], []])
    calls = []
    with pytest.raises(TextExtractionError) as caught:
        extract_text(str(path), on_page=lambda done, total: calls.append((done, total)))
    assert caught.value.code == "empty_document"
    assert calls == [(1, 2), (2, 2)]


def test_garbage_after_pdf_header_is_unreadable(tmp_path):
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    assert error_code(path) == "unreadable_pdf"


def test_truncated_pdf_is_unreadable(tmp_path):
    whole = make_pdf(tmp_path / "whole.pdf", [["Some text on a page."]]).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    assert error_code(path) == "unreadable_pdf"
