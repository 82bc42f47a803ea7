"""Result records: which model or method was evaluated on which dataset, with which metric and score.

Read from result tables (as papers.pipeline.text lays them out: a caption line, a header line of datasets or
metrics, rows "BERTlarge 86.6/- 90.9/84.1 ..."), from sentences ("X achieves 85.3 F1 on SQuAD") and, when a paper
has neither, guessed from its key entities. A wrong score is worse than none: whatever does not line up is skipped.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .entities import _SIZE_SUFFIX, FoundEntity, Mention
from .relationships import EVIDENCE_MAX_CHARS, GENERIC_PROCESSES, FoundRelationship, split_sentences

SOURCE_TYPES = frozenset({"MODEL", "METHOD"})
# A number read from a table cell under its column's header is stronger evidence than any sentence rule.
TABLE_CONFIDENCE = 0.9
SENTENCE_CONFIDENCE = 0.85
# Metrics where a smaller number is the better result: the best row of a table is its minimum.
LOWER_IS_BETTER = frozenset(
    {"perplexity", "word error rate", "error rate", "mean squared error", "RMSE", "mean absolute error"}
)

# --- bounds: every upload is hostile text ---

MAX_CAPTIONS = 100  # tables read per paper
MAX_TABLE_LINES = 60  # lines of one table, above or below its caption
TABLE_WINDOW_CHARS = 8_000  # text searched for them
MAX_ROW_CHARS = 300  # a longer line is prose or junk, never a table row
MAX_HEADER_LINES = 3  # lines between a header and the first row ("Mcc Acc ...", "Text only")
MAX_CAPTION_LINES = 3
CAPTION_WRAP_RATIO = 0.8
MAX_SENTENCE_WINDOW = 160  # characters searched around a metric mention for its score, model and dataset
MAX_OPENING_CHARS = 12  # where a sentence's opening dataset starts: "On the Cityscapes"

# --- the fallback: the key method on the key datasets, beside what the text and tables say ---

FALLBACK_CONFIDENCE = 0.3
FALLBACK_MIN_SALIENCE = 0.5  # an entity at least this salient counts as key even when not flagged key
# Chosen on the SciREX training documents (entities from cross-fitted taggers, docs/extraction.md), never on the
# held-out part: the most salient model or method x the three most salient datasets, added beside what tables and
# sentences gave, had the best (Method, Dataset) pair F1; a second source added as many wrong pairs as right ones.
FALLBACK_MAX_SOURCES = 1
FALLBACK_MAX_DATASETS = 3


@dataclass(frozen=True)
class _Record:
    """One reading of a result: a table cell or a sentence."""

    source: tuple[str, str]
    target: tuple[str, str]
    metric: str | None
    score: str
    confidence: float
    evidence: str
    exact: bool = True  # the row names the entity itself or a size of it ("BERTlarge"), not a variant ("BERT-CRF")
    metric_in_caption: bool = False


def extract_results(
    text: str,
    entities: Sequence[FoundEntity],
    mentions: Sequence[Mention],
    *,
    sentences: Sequence[tuple[int, int]] | None = None,
) -> list[FoundRelationship]:
    """EVALUATED_ON records (MODEL or METHOD -> DATASET) with metric and score, unique by (source, target)."""
    mentions = sorted(mentions, key=lambda m: (m.start, m.end))
    if sentences is None:
        sentences = split_sentences(text)
    records = table_records(text, mentions) + sentence_records(text, mentions, sentences)
    found = _choose(records, entities) if records else []
    # The paper's key method on its key datasets, where no table or sentence already said so (lower confidence).
    read = {(r.source, r.target) for r in found}
    paired = fallback_results(text, entities, mentions, sentences)
    return found + [r for r in paired if (r.source, r.target) not in read]


def merge_results(found: Iterable[FoundRelationship], results: Iterable[FoundRelationship]) -> list[FoundRelationship]:
    """Rule-found relationships with result records merged in: one per (type, source, target), best confidence."""
    merged = {(r.relationship_type, r.source, r.target): r for r in found}
    for record in results:
        key = (record.relationship_type, record.source, record.target)
        existing = merged.get(key)
        if existing is None:
            merged[key] = record
            continue
        # The evidence stays with the score: a reader checks the number where it was read.
        keep_record = record.score is not None or record.confidence > existing.confidence
        evidence = record.evidence if keep_record else existing.evidence
        merged[key] = FoundRelationship(
            relationship_type=record.relationship_type,
            source=record.source,
            target=record.target,
            confidence=max(existing.confidence, record.confidence),
            evidence=evidence,
            metric=record.metric or existing.metric,
            score=record.score if record.score is not None else existing.score,
        )
    return sorted(merged.values(), key=lambda r: (-r.confidence, r.relationship_type, r.source, r.target))


# --- choosing one record per (source, target) ---


def _value(score: str) -> float:
    """The number a score string stands for ("91.2%" -> 91.2)."""
    return float(score.rstrip("%").strip())


def _choose(records: list[_Record], entities: Sequence[FoundEntity]) -> list[FoundRelationship]:
    """One result per (source, target): the primary metric's best score, the best confidence."""
    by_key = {(e.entity_type, e.name): e for e in entities}
    groups: dict[tuple[tuple[str, str], tuple[str, str]], list[_Record]] = {}
    for record in records:
        groups.setdefault((record.source, record.target), []).append(record)
    found = []
    for (source, target), group in groups.items():
        best = _best_record(group, by_key)
        found.append(
            FoundRelationship(
                relationship_type="EVALUATED_ON",
                source=source,
                target=target,
                confidence=max(r.confidence for r in group),
                evidence=best.evidence,
                metric=best.metric,
                score=best.score,
            )
        )
    return sorted(found, key=lambda r: (-r.confidence, r.source, r.target))


def _best_record(records: list[_Record], by_key: dict[tuple[str, str], FoundEntity]) -> _Record:
    """The record of a pair's primary metric with the best score, from rows naming the entity itself first."""
    # The DB keeps one result per pair, so one metric must be primary: the one a table's caption names
    # ("F1-score on ..."), else the most salient metric entity, else the one the paper mentions most, else the
    # first read.
    first_read = {r.metric: index for index, r in reversed(list(enumerate(records)))}
    captioned = {r.metric for r in records if r.metric_in_caption}

    def rank(metric: str | None) -> tuple[bool, bool, float, int, int]:
        entity = by_key.get(("METRIC", metric)) if metric else None
        salience, count = (entity.salience, entity.mentions) if entity else (0.0, 0)
        return (metric is not None, metric in captioned, salience, count, -first_read[metric])

    metric = max(first_read, key=rank)
    sign = -1 if metric in LOWER_IS_BETTER else 1
    candidates = [(index, r) for index, r in enumerate(records) if r.metric == metric]
    return max(candidates, key=lambda item: (item[1].exact, sign * _value(item[1].score), -item[0]))[1]


# --- tables ---

_CAPTION_LINE = re.compile(r"^[ \t]*(?:Table|TABLE)[ \t]*(?:\d{1,3}|[IVX]{1,5})[ \t]*[:.][ \t]*\S", re.MULTILINE)
_NUMBER = r"[-+]?\d{1,6}(?:\.\d{1,6})?%?"
_SCORE = re.compile(rf"{_NUMBER}(?:±\d{{1,6}}(?:\.\d{{1,6}})?%?)?")
_MISSING = re.compile(r"[-–—]")
_SIZE_CELL = re.compile(r"\d{1,6}(?:\.\d{1,3})?[KMBG]B?")  # a parameter count or a data size: never a score
_MARKS = "*†‡"  # footnote or best-result marks glued to a number ("90.9*")
_PART = rf"(?:{_SCORE.pattern}[{_MARKS}]?|[-–—]|{_SIZE_CELL.pattern})"
_CELL = re.compile(rf"{_PART}(?:/{_PART}){{0,3}}")
_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z'-]*")
_CITATION_WORDS = frozenset({"et", "al"})  # "BERTbase Devlin et al. (2019)" is a row label, not prose
_HEADER_TOKEN = re.compile(r"\([^()\n]{0,40}\)|[^\s()]+|[()]")
_AVERAGE = re.compile(r"(?i)(?:avg\.?|average|mean|overall|all|score)")
_CAPTION_SENTENCE = re.compile(r".*?(?:\.(?=\s+[A-Z])|$)")  # a caption's first sentence, for evidence
_SPLITS = re.compile(r"[a-z]{1,4}(?:/[a-z]{1,4})+")  # "m/mm", "in/out": the parts of a dataset, not metrics
_SIZE = re.compile(_SIZE_SUFFIX)
# What may follow a row's name besides its size: a parenthesis ("(1M, 6 epochs)"), a citation, a footnote mark.
_LABEL_NOISE = re.compile(r"\([^()]{0,60}\)|\[[^\[\]]{0,30}\]|[†‡§*⋆♠♣♢♦]")
_AUTHOR_CITATION = re.compile(r"\s*[A-Z][\w'-]*\s+(?:et\s+al\.?|(?:and|&)\s+[A-Z][\w'-]*)\s*")


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Column:
    """A header column and what its cells measure."""

    name: str
    dataset: str | None
    model: tuple[str, str] | None  # a table with models as columns
    metrics: tuple[str | None, ...]  # per "/"-part of a cell ("F1/EM")
    splits: int  # "/"-parts of the dataset itself ("MNLI-m/mm": 2); a cell's first part is then its headline
    average: bool


class _MentionIndex:
    """Mentions by position, for the mentions inside a span."""

    def __init__(self, mentions: Sequence[Mention]) -> None:
        self.mentions = mentions
        self.starts = [m.start for m in mentions]

    def inside(self, start: int, end: int, types: Iterable[str] | None = None) -> list[Mention]:
        """Mentions starting inside [start, end), of the given types if any."""
        found = self.mentions[bisect.bisect_left(self.starts, start) : bisect.bisect_left(self.starts, end)]
        wanted = None if types is None else set(types)
        return [m for m in found if wanted is None or m.entity_type in wanted]


def table_records(text: str, mentions: Sequence[Mention]) -> list[_Record]:
    """Results read from the rows of captioned tables."""
    index = _MentionIndex(mentions)
    captions = [m.start() for _, m in zip(range(MAX_CAPTIONS), _CAPTION_LINE.finditer(text), strict=False)]
    if not captions:
        return []
    # Papers put every caption on the same side of its table; the side most captions have rows on wins, so that
    # a caption is never given the rows of the table before or after it.
    above = sum(bool(_first_row(_lines_before(text, start))) for start in captions)
    below = sum(bool(_first_row(_lines_after(text, _caption_lines(text, start)[-1].end))) for start in captions)
    records: list[_Record] = []
    for start in captions:
        caption = _caption_lines(text, start)
        block = _lines_before(text, start)[::-1] if above >= below else _lines_after(text, caption[-1].end)
        records += _read_table(text, caption, block, index)
    return records


def _caption_lines(text: str, start: int) -> list[_Line]:
    """The caption's line and its continuation lines (prose, while the caption has not ended with a period)."""
    lines = [_line_at(text, start)]
    while len(lines) < MAX_CAPTION_LINES and not lines[-1].text.rstrip().endswith(".") and lines[-1].end < len(text):
        following = _line_at(text, lines[-1].end + 1)
        # A wrapped caption fills its line; a line much shorter than the next one ended the caption.
        short = len(lines[-1].text.rstrip()) < CAPTION_WRAP_RATIO * len(following.text.rstrip())
        if short or not _is_prose(following.text) or len(following.text) > MAX_ROW_CHARS:
            break
        lines.append(following)
    return lines


def _line_at(text: str, start: int) -> _Line:
    """The line starting at start, cut at MAX_ROW_CHARS + 1 characters so a huge line stays cheap."""
    end = text.find("\n", start, start + MAX_ROW_CHARS + 1)
    end = min(len(text), start + MAX_ROW_CHARS + 1) if end == -1 else end
    return _Line(start, end, text[start:end])


def _lines_before(text: str, start: int) -> list[_Line]:
    """The table lines right above a caption, nearest first."""
    window_start = max(0, start - TABLE_WINDOW_CHARS)
    lines = []
    end = start - 1
    while end > window_start and len(lines) < MAX_TABLE_LINES:
        begin = text.rfind("\n", window_start, end) + 1
        if begin == 0 and window_start > 0:
            break  # the line starts before the window: too long to be a table line
        line = _Line(begin, end, text[begin:end])
        if not _is_table_line(line.text):
            break
        lines.append(line)
        end = begin - 1
    return lines


def _lines_after(text: str, end: int) -> list[_Line]:
    """The table lines right below a caption's last line, in order."""
    limit = min(len(text), end + TABLE_WINDOW_CHARS)
    lines = []
    start = end + 1
    while start < limit and len(lines) < MAX_TABLE_LINES:
        line = _line_at(text, start)
        if line.end > limit or not _is_table_line(line.text):
            break
        lines.append(line)
        start = line.end + 1
    return lines


def _is_table_line(line: str) -> bool:
    """Whether a line may belong to a table: not blank, not too long, not prose, not another caption."""
    return (
        bool(line.strip())
        and len(line) <= MAX_ROW_CHARS
        and not _CAPTION_LINE.match(line)
        and (bool(_row_cells(line)[1]) or not _is_prose(line))
    )


def _is_prose(line: str) -> bool:
    """Whether a line reads as running text: four or more words, most of them lowercase."""
    words = [word for word in _WORD.findall(line) if word not in _CITATION_WORDS]
    return len(words) >= 4 and sum(word[0].islower() for word in words) * 2 > len(words)


def _row_cells(line: str) -> tuple[str, list[re.Match[str]]]:
    """A row's label and its trailing cells ("BERTlarge 86.6/- 90.9/84.1" -> "BERTlarge", two cells)."""
    tokens = list(re.finditer(r"\S+", line))
    cells: list[re.Match[str]] = []
    while tokens and _CELL.fullmatch(tokens[-1].group()):
        cells.append(tokens.pop())
    label = line[: tokens[-1].end()] if tokens else ""
    # "Published as a conference paper at ICLR 2021" ends with a number but is a running header, not a row.
    if not any(c.isalpha() for c in label) or _is_prose(label):
        return "", []
    return label, cells[::-1]


def _first_row(lines: list[_Line]) -> _Line | None:
    """The first line with a label and cells."""
    return next((line for line in lines if _row_cells(line.text)[1]), None)


def _read_table(text: str, caption: list[_Line], block: list[_Line], index: _MentionIndex) -> list[_Record]:
    """Records of one table: its rows' cells under its header's columns."""
    rows = [line for line in block if _row_cells(line.text)[1]]
    if not rows:
        return []
    first = block.index(rows[0])
    caption_start, caption_end = caption[0].start, caption[-1].end
    caption_datasets = {m.name for m in index.inside(caption_start, caption_end, ["DATASET"])}
    caption_metrics = {m.name for m in index.inside(caption_start, caption_end, ["METRIC"])}
    header, metric_line = _header(block[max(0, first - MAX_HEADER_LINES) : first], index)
    if header is None:
        return []
    # Rows grouped under dataset lines ("ATIS", then its rows) measure that dataset, not the header's columns.
    if any(index.inside(line.start, line.end, ["DATASET"]) for line in block[first:] if line not in rows):
        return []
    columns = _columns(text, header, index)
    counts = [len(_row_cells(line.text)[1]) for line in rows]
    width = max(set(counts), key=lambda n: (counts.count(n), n))
    if width > len(columns) or any(c.dataset or c.metrics or c.model for c in columns[: len(columns) - width]):
        return []  # the rows do not line up with the header
    data = columns[len(columns) - width :]
    metrics = _metric_row(text, metric_line, data, index) if metric_line else [()] * width
    single_dataset = next(iter(caption_datasets)) if len(caption_datasets) == 1 else None
    caption_parts = _caption_metric_parts(text, caption, caption_metrics, index)
    data = [
        _resolve(column, row_metrics, single_dataset, caption_parts)
        for column, row_metrics in zip(data, metrics, strict=True)
    ]
    caption_text = _CAPTION_SENTENCE.match(" ".join(" ".join(line.text.split()) for line in caption)).group()
    records = []
    transposed = sum(c.model is not None for c in data) >= 2 and single_dataset is not None
    for row in rows:
        label, cells = _row_cells(row.text)
        if len(cells) != width:
            continue
        evidence = _table_evidence(caption_text, row.text)
        if transposed:
            records += _transposed_row(row, label, cells, data, single_dataset, index, evidence, caption_metrics)
            continue
        named = _row_entity(text, row.start, row.start + len(label), index)
        if named is None:
            continue
        source, exact = named
        for column, cell in zip(data, cells, strict=True):
            if column.dataset is None or column.model is not None:
                continue
            for metric, score in _cell_scores(column, cell.group()):
                records.append(
                    _Record(
                        source,
                        ("DATASET", column.dataset),
                        metric,
                        score,
                        TABLE_CONFIDENCE,
                        evidence,
                        exact,
                        metric in caption_metrics,
                    )
                )
    return records


def _header(lines: list[_Line], index: _MentionIndex) -> tuple[_Line | None, _Line | None]:
    """The header line above a table's first row, and the metric line under it ("Mcc Acc Acc"), if any."""
    metric_line = None
    for position in range(len(lines) - 1, -1, -1):
        line = lines[position]
        if position == len(lines) - 1 and _is_metric_line(line, index):
            metric_line = line
            continue
        if index.inside(line.start, line.end, ["DATASET", "METRIC", *SOURCE_TYPES]):
            return line, metric_line
    return None, None


def _is_metric_line(line: _Line, index: _MentionIndex) -> bool:
    """A line naming a metric under each column: at least half its words hold a metric, none a dataset."""
    tokens = line.text.split()
    if not tokens or index.inside(line.start, line.end, ["DATASET"]):
        return False
    return len(index.inside(line.start, line.end, ["METRIC"])) * 2 >= len(tokens)


def _columns(text: str, header: _Line, index: _MentionIndex) -> list[_Column]:
    """The header's columns: names joined across spaces when one mention spans them ("SQuAD v1.1")."""
    spans: list[list[int]] = []  # [name start, name end, annotation start, annotation end]
    for token in _HEADER_TOKEN.finditer(header.text):
        start, end = header.start + token.start(), header.start + token.end()
        if token.group().startswith("(") and len(token.group()) > 1:
            if spans:
                spans[-1][2:] = [start, end]
            continue
        joined = spans and any(m.start < start < m.end for m in index.inside(spans[-1][0], start))
        if joined and spans[-1][2] == spans[-1][3]:
            spans[-1][1] = end
        else:
            spans.append([start, end, end, end])
    return [_column(text, *span, index) for span in spans]


def _column(text: str, start: int, end: int, note_start: int, note_end: int, index: _MentionIndex) -> _Column:
    """One header column from its name and its parenthesised note ("SQuAD v1.1 (F1/EM)")."""
    name = text[start:end]
    named = index.inside(start, end)
    dataset = next((m for m in named if m.entity_type == "DATASET"), None)
    model = next((m.key for m in named if m.entity_type in SOURCE_TYPES and m.start == start), None)
    metrics: tuple[str | None, ...] = ()
    splits = name[dataset.end - start :].count("/") + 1 if dataset else 1
    if any(m.entity_type == "METRIC" for m in named) and dataset is None:
        metrics = _metric_parts(text, start, end, index)
    if note_end > note_start + 2:
        for word in re.finditer(r"[^\s()]+", text[note_start + 1 : note_end - 1]):
            word_start = note_start + 1 + word.start()
            parts = _metric_parts(text, word_start, word_start + len(word.group()), index)
            if any(parts):
                metrics = parts
            elif _SPLITS.fullmatch(word.group()):
                splits = word.group().count("/") + 1
    average = dataset is None and model is None and not metrics and _AVERAGE.fullmatch(name) is not None
    return _Column(name, dataset.name if dataset else None, model, metrics, splits, average)


def _metric_parts(text: str, start: int, end: int, index: _MentionIndex) -> tuple[str | None, ...]:
    """The metric named in each "/"-part of a span ("F1/EM" -> ("F1", "exact match"), "F1a/EM" -> (None, ...))."""
    parts: list[str | None] = []
    cursor = start
    for piece in text[start:end].split("/"):
        inside = index.inside(cursor, cursor + len(piece), ["METRIC"])
        parts.append(inside[0].name if inside else None)
        cursor += len(piece) + 1
    return tuple(parts)


def _metric_row(text: str, line: _Line, data: list[_Column], index: _MentionIndex) -> list[tuple[str | None, ...]]:
    """Metrics of the metric line per data column: all columns, or the run from first to last dataset column."""
    tokens = [
        _metric_parts(text, line.start + m.start(), line.start + m.end(), index) for m in re.finditer(r"\S+", line.text)
    ]
    if len(tokens) == len(data):
        return tokens
    with_dataset = [i for i, column in enumerate(data) if column.dataset]
    if with_dataset and with_dataset[-1] - with_dataset[0] + 1 == len(tokens):
        first = with_dataset[0]
        return [()] * first + tokens + [()] * (len(data) - first - len(tokens))
    return [()] * len(data)


def _caption_metric_parts(
    text: str, caption: list[_Line], names: set[str], index: _MentionIndex
) -> tuple[str | None, ...]:
    """The metrics a caption gives every cell: its one metric, or a "/"-joined list ("(F1/EM)")."""
    for line in caption:
        for token in re.finditer(r"[^\s(),;]+", line.text):
            parts = _metric_parts(text, line.start + token.start(), line.start + token.end(), index)
            if len(parts) > 1 and all(parts):
                return parts
    return (next(iter(names)),) if len(names) == 1 else ()


def _resolve(
    column: _Column, row_metrics: tuple[str | None, ...], dataset: str | None, caption_metrics: tuple[str | None, ...]
) -> _Column:
    """A column's dataset and metrics from the metric line, its header or, failing those, the caption."""
    metrics = row_metrics or column.metrics
    name = column.dataset
    if name is None and (column.metrics or column.average) and column.model is None:
        name = dataset  # "Precision Recall F1" or "Avg." columns measure the caption's one dataset
    if not metrics and name is not None and not column.average:
        metrics = caption_metrics
    return _Column(column.name, name, column.model, metrics, column.splits, column.average)


def _cell_scores(column: _Column, cell: str) -> list[tuple[str | None, str]]:
    """(metric, score) pairs of one cell under its column; none when its parts do not line up with the metrics."""
    parts = cell.split("/")
    metrics = column.metrics
    if len(metrics) == 1 and len(parts) > 1:
        if len(parts) != column.splits:
            return []
        parts = parts[:1]  # "MNLI-m/mm" with "91.1/91.1": the first split is the headline number
    if not metrics:
        # Only a benchmark's overall column carries a score without a metric ("Avg." under "GLUE").
        metrics = (None,) if column.average and len(parts) == 1 else ()
    if len(metrics) != len(parts):
        return []
    found = []
    for metric, part in zip(metrics, parts, strict=True):
        score = part.split("±")[0].rstrip(_MARKS)
        if (metric is not None or column.average) and _SCORE.fullmatch(score) and not _MISSING.fullmatch(score):
            found.append((metric, score))
    return found


def _row_entity(text: str, start: int, end: int, index: _MentionIndex) -> tuple[tuple[str, str], bool] | None:
    """The model or method a row's label names, and whether it names it exactly (or a size of it)."""
    while start < end and text[start].isspace():
        start += 1
    named = index.inside(start, end)
    if not named or named[0].start != start or named[0].entity_type not in SOURCE_TYPES:
        return None
    mention = named[0]
    if mention.name in GENERIC_PROCESSES:
        return None
    token_end = mention.end
    while token_end < end and not text[token_end].isspace():
        token_end += 1
    glued = text[mention.end : token_end]
    rest = _LABEL_NOISE.sub(" ", text[token_end:end]).strip()
    sized = _SIZE.fullmatch(rest) is not None  # "BERT large"
    if rest and not sized and not _AUTHOR_CITATION.fullmatch(rest):
        return None  # "BERTBASE LayoutLMBASE": two names, or words that make the row something else
    return mention.key, not glued or _SIZE.fullmatch(glued) is not None


def _transposed_row(
    row: _Line,
    label: str,
    cells: list[re.Match[str]],
    data: list[_Column],
    dataset: str,
    index: _MentionIndex,
    evidence: str,
    caption_metrics: set[str],
) -> list[_Record]:
    """A row of a table with models as columns: "Test PPL 21.6 20.0 19.9" under "Model RoBERTa DeBERTa ..."."""
    named = index.inside(row.start, row.start + len(label))
    if len(named) != 1 or named[0].entity_type != "METRIC" or len(_WORD.findall(label)) > 3:
        return []
    metric = named[0].name
    records = []
    for column, cell in zip(data, cells, strict=True):
        score = cell.group().split("±")[0].rstrip(_MARKS)
        if column.model is None or "/" in score or _MISSING.fullmatch(score) or not _SCORE.fullmatch(score):
            continue
        suffix = column.name[len(column.model[1]) :] if column.name.startswith(column.model[1]) else column.name
        records.append(
            _Record(
                column.model,
                ("DATASET", dataset),
                metric,
                score,
                TABLE_CONFIDENCE,
                evidence,
                not suffix or _SIZE.fullmatch(suffix) is not None,
                metric in caption_metrics,
            )
        )
    return records


def _table_evidence(caption: str, row: str) -> str:
    """The caption and the row, on one line, within EVIDENCE_MAX_CHARS."""
    row = " ".join(row.split())
    budget = EVIDENCE_MAX_CHARS - len(row) - 3
    if len(caption) > budget:
        caption = caption[: max(0, budget - 1)].rsplit(" ", 1)[0] + "…"
    return f"{caption} | {row}"[:EVIDENCE_MAX_CHARS]


# --- sentences ---

_SCORE_TEXT = r"\d{1,3}(?:\.\d{1,4})?\s?%?"
# "85.3 F1", "71.8% mean IoU": the score just before the metric.
_SCORE_BEFORE = re.compile(rf"(?<![\w.+±-])({_SCORE_TEXT})\s*(?:points?\s+)?(?:(?:absolute|average|overall)\s+)?$")
# "an accuracy of 91.2%", "F1 score of 0.9524", "F1 = 85.3": the score just after it.
_SCORE_AFTER = re.compile(rf"\s*(?:scores?\s+)?(?:of|=|:|is|was|at)\s+(?:about\s+|around\s+)?({_SCORE_TEXT})(?![\w.])")
_ACHIEVE = re.compile(
    r"\b(?:achiev\w*|obtain\w*|reach\w*|attain\w*|gets?|got|scor(?:es|ed|ing)|yield\w*|records?|recorded|"
    r"reports?|reported|sets?|establish\w*|delivers?)\b",
    re.I,
)
# A difference is not a score: "improves by 2.3 F1", "+1.4%", "a gain of 2 points", "85.3 F1 over BERT".
_CHANGE_BEFORE = re.compile(
    r"(?:\+|\bby|\b(?:improvement|gain|increase|margin|drop|decrease|boost)s?\s+(?:of|in)(?:\s+the)?)\s*"
    r"(?:about\s+|around\s+)?$",
    re.I,
)
_CHANGE_AFTER = re.compile(
    r"\s*(?:points?\s+)?(?:(?:absolute\s+)?(?:improvement|gain|increase|higher|lower|better|worse|drop|decrease|"
    r"boost)|over|above|below|vs\.?|versus|compared|more|less)\b",
    re.I,
)
_DATASET_AFTER = re.compile(
    r"\s*(?:on|for|in|over)\s+(?:(?:the|a|its|their)\s+)?(?:[A-Za-z-]+\s+){0,2}(?:(?:of|on)\s+(?:the\s+)?)?$", re.I
)
_DATASET_OPENING = re.compile(r"\s*(?:On|For|In)\s+(?:the\s+)?$")
_NEGATED = re.compile(r"\b(?:not|never|fails?\s+to|cannot|can't|without)\b", re.I)


def sentence_records(text: str, mentions: Sequence[Mention], sentences: Sequence[tuple[int, int]]) -> list[_Record]:
    """Results stated in sentences: a model's score in a metric on a dataset."""
    index = _MentionIndex(mentions)
    records = []
    for start, end in sentences:
        inside = index.inside(start, end)
        if not any(m.entity_type == "METRIC" for m in inside) or not any(m.entity_type == "DATASET" for m in inside):
            continue
        for metric in (m for m in inside if m.entity_type == "METRIC"):
            record = _sentence_record(text, start, end, index, metric)
            if record is not None:
                records.append(record)
    return records


def _sentence_record(text: str, start: int, end: int, index: _MentionIndex, metric: Mention) -> _Record | None:
    """The result one metric mention reports, when a score, a model before it and a dataset are all there."""
    window_start = max(start, metric.start - MAX_SENTENCE_WINDOW)
    window_end = min(end, metric.end + MAX_SENTENCE_WINDOW)
    before = _SCORE_BEFORE.search(text, max(window_start, metric.start - 40), metric.start)
    after = _SCORE_AFTER.match(text, metric.end, window_end)
    if before is not None:
        score, span = before.group(1), (before.start(1), metric.end)
    elif after is not None:
        score, span = after.group(1), (metric.start, after.end(1))
    else:
        return None
    if _CHANGE_BEFORE.search(text, max(window_start, span[0] - 25), span[0]) or _CHANGE_AFTER.match(
        text, span[1], window_end
    ):
        return None
    if "%" in score and _value(score) > 100:
        return None
    # Only the mentions near the score are looked at: a long sentence of many mentions stays linear.
    sources = [m for m in index.inside(window_start, span[0], SOURCE_TYPES) if m.end <= span[0]]
    if not sources or sources[-1].name in GENERIC_PROCESSES:
        return None
    source = sources[-1]
    between = text[source.end : span[0]]
    if not _ACHIEVE.search(between) or _NEGATED.search(between):
        return None
    dataset = _dataset_of(text, start, index, source, span, window_end)
    if dataset is None:
        return None
    return _Record(
        source.key,
        dataset.key,
        metric.name,
        score.replace(" ", ""),
        SENTENCE_CONFIDENCE,
        _sentence_evidence(text, start, end, source.start, span[1]),
    )


def _dataset_of(
    text: str, start: int, index: _MentionIndex, source: Mention, span: tuple[int, int], window_end: int
) -> Mention | None:
    """The dataset a score is on: named right after it ("on SQuAD") or opening the sentence ("On Cityscapes, ")."""
    following = next(iter(index.inside(span[1], window_end + 1, ["DATASET"])), None)
    if following is not None and _DATASET_AFTER.fullmatch(text, span[1], following.start):
        return following
    opening = next(iter(index.inside(start, min(source.start, start + MAX_OPENING_CHARS))), None)
    if (
        opening is not None
        and opening.entity_type == "DATASET"
        and opening.end <= source.start <= opening.end + MAX_SENTENCE_WINDOW
        and _DATASET_OPENING.fullmatch(text, start, opening.start)
        and "," in text[opening.end : source.start]
    ):
        return opening
    return None


def _sentence_evidence(text: str, start: int, end: int, first: int, last: int) -> str:
    """The sentence on one line, cut to EVIDENCE_MAX_CHARS around [first, last) when longer."""
    if end - start > EVIDENCE_MAX_CHARS:
        middle = (first + last) // 2
        start = max(start, min(middle - EVIDENCE_MAX_CHARS // 2, end - EVIDENCE_MAX_CHARS))
        end = min(end, start + EVIDENCE_MAX_CHARS)
    return " ".join(text[start:end].split())[:EVIDENCE_MAX_CHARS]


# --- the fallback ---


def fallback_results(
    text: str,
    entities: Sequence[FoundEntity],
    mentions: Sequence[Mention],
    sentences: Sequence[tuple[int, int]],
) -> list[FoundRelationship]:
    """Key models or methods x key datasets with the most salient metric, at low confidence and without a score."""
    if not any(e.key or e.salience > 0 for e in entities):
        return []  # no salience to tell key entities from the rest

    def key_entities(types: frozenset[str], limit: int) -> list[FoundEntity]:
        chosen = [
            e
            for e in entities
            if e.entity_type in types
            and e.name not in GENERIC_PROCESSES
            and (e.key or e.salience >= FALLBACK_MIN_SALIENCE)
        ]
        return sorted(chosen, key=lambda e: (-e.salience, -e.confidence, e.first_offset))[:limit]

    sources = key_entities(SOURCE_TYPES, FALLBACK_MAX_SOURCES)
    datasets = key_entities(frozenset({"DATASET"}), FALLBACK_MAX_DATASETS)
    metrics = [e for e in entities if e.entity_type == "METRIC" and e.salience > 0]
    metric = max(metrics, key=lambda e: (e.salience, e.mentions, -e.first_offset)).name if metrics else None
    pairs = [((s.entity_type, s.name), (d.entity_type, d.name)) for s in sources for d in datasets]
    evidence = _best_sentences(text, mentions, sentences, pairs)
    return [
        FoundRelationship(
            relationship_type="EVALUATED_ON",
            source=source,
            target=target,
            confidence=FALLBACK_CONFIDENCE,
            evidence=evidence.get((source, target), f"{source[1]} and {target[1]} are key entities of the paper"),
            metric=metric,
        )
        for source, target in pairs
    ]


_EVALUATION = re.compile(r"\b(?:evaluat\w*|results?|achiev\w*|outperform\w*|performance|accuracy|scores?|test\w*)\b")


def _best_sentences(
    text: str,
    mentions: Sequence[Mention],
    sentences: Sequence[tuple[int, int]],
    pairs: list[tuple[tuple[str, str], tuple[str, str]]],
) -> dict[tuple[tuple[str, str], tuple[str, str]], str]:
    """For each pair, the best sentence naming both: one about evaluation first, then the shortest."""
    index = _MentionIndex(sorted(mentions, key=lambda m: (m.start, m.end)))
    best: dict[tuple[tuple[str, str], tuple[str, str]], tuple[tuple[bool, int], int, int]] = {}
    for start, end in sentences:
        keys = {m.key for m in index.inside(start, end)}
        if len(keys) < 2:
            continue
        rank = (_EVALUATION.search(text, start, min(end, start + 2 * EVIDENCE_MAX_CHARS)) is not None, start - end)
        for pair in pairs:
            if pair[0] in keys and pair[1] in keys and (pair not in best or rank > best[pair][0]):
                best[pair] = (rank, start, end)
    return {pair: " ".join(text[s:e].split())[:EVIDENCE_MAX_CHARS] for pair, (_rank, s, e) in best.items()}
