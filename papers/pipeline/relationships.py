"""Find relationships between a paper's entities with trigger-word rules applied per sentence."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .entities import OWN_CONTRIBUTION_CONFIDENCE, FoundEntity, Mention, find_mentions
from .types import ENTITY_TYPES, RELATIONSHIP_TYPES, check_types

__all__ = ["RELATIONSHIP_TYPES"]  # re-exported: the relationship types are defined in types.py

EVIDENCE_MAX_CHARS = 300
# Pairs further apart than this in one sentence (in characters, or in other names between them, as in a long
# list) are rarely related by the words between them; the limits also bound the work on dense text.
MAX_PAIR_DISTANCE = 250
MAX_MENTIONS_BETWEEN = 8
# Confidence = strength of the trigger's position - 0.0025 per character between the two mentions, at least 0.2;
# each further sentence supporting the same relationship adds 0.03, up to 0.95.
TRIGGER_STRENGTH = {"between": 0.9, "context": 0.7, "weak": 0.6}
DISTANCE_PENALTY, MIN_CONFIDENCE = 0.0025, 0.2
SUPPORT_BONUS, MAX_CONFIDENCE = 0.03, 0.95
WEAK_TRIGGER_MAX_DISTANCE = 60
LONG_SEGMENT_CHARS = 400
MIN_LETTER_RATIO = 0.55  # below this a line is a table row or a formula
# Every model is pre-trained and fine-tuned; "X uses pre-training" says nothing.
GENERIC_PROCESSES = frozenset({"pre-training", "fine-tuning"})


@dataclass(frozen=True)
class FoundRelationship:
    """A typed, directed relationship between two found entities."""

    relationship_type: str
    source: tuple[str, str]
    target: tuple[str, str]
    confidence: float
    evidence: str
    # A result record (EVALUATED_ON): the metric entity's name it was measured with, and the score as written.
    metric: str | None = None
    score: str | None = None


def _check_rule(rule: _Rule | _ContextRule) -> None:
    """A rule names only defined types."""
    check_types("relationship", [rule.relationship_type], RELATIONSHIP_TYPES)
    check_types("entity", rule.sources | rule.targets, ENTITY_TYPES)


@dataclass(frozen=True)
class _Rule:
    relationship_type: str
    sources: frozenset[str]
    targets: frozenset[str]
    trigger: re.Pattern[str]
    reverse: bool = False  # True: the second mention is the source ("X is outperformed by Y")
    strength: str = "between"

    def __post_init__(self) -> None:
        _check_rule(self)


def _rule(kind: str, sources: str, targets: str, trigger: str, **options: object) -> _Rule:
    """A rule whose trigger must sit between the two mentions."""
    return _Rule(kind, frozenset(sources.split()), frozenset(targets.split()), re.compile(trigger, re.I), **options)


_EVALUATION_WORDS = (
    r"evaluat\w*|test(?:ed|s)?|results?|performance|perform(?:s|ed|ing)?|achiev\w*|obtain\w*|reach\w*|scor\w*|"
    r"accuracy|F1|improv\w*|gains?|outperform\w*|surpass\w*|report\w*|state[- ]of[- ]the[- ]art|SOTA|SoTA"
)
RULES: tuple[_Rule, ...] = (
    _rule(
        "TRAINED_ON",
        "MODEL",
        "DATASET",
        # A passive "is pre-trained for 1M steps on X" may say more before "on"; an active "training X on Y"
        # trains its object X, so the preposition must follow the verb at once.
        r"\b(?:(?:pre-?\s?)?trained|fine-?tuned)\b(?:\s+[\w.-]+){0,4}?\s+(?:on|with|using|from)\b"
        r"|\b(?:(?:pre-?\s?)?train(?:s|ing)?|fine-?tun(?:es|ing|e))\s+(?:on|with|using|from)\b",
    ),
    _rule("TRAINED_ON", "MODEL", "DATASET", r"\b(?:pre-?\s?)?training\b[^.;]{0,20}?\b(?:we|they)\s+us(?:e|ed)\b"),
    _rule("TRAINED_ON", "DATASET", "MODEL", r"\bused\s+(?:to|for)\s+(?:pre-?\s?)?train(?:ing)?\b", reverse=True),
    # Method-centred papers evaluate methods too ("the prototype-based method performs better on CoNLL").
    _rule("EVALUATED_ON", "MODEL METHOD", "DATASET", rf"\b(?:{_EVALUATION_WORDS})\b[^.;]*?\b(?:on|across)\b"),
    _rule(
        "OUTPERFORMS",
        "MODEL",
        "MODEL",
        r"\b(?:outperform(?:s|ed|ing)?|surpass(?:es|ed|ing)?|beats?|beating|exceed(?:s|ed|ing)?|better\s+than|"
        r"superior\s+to|higher\s+than|improv\w*\s+(?:over|upon)|(?:obtains?|achieves?|gains?|improvements?)\b"
        r"[^.;]{0,60}?\bover)\b",
    ),
    _rule(
        "OUTPERFORMS",
        "MODEL",
        "MODEL",
        r"\b(?:outperformed\s+by|surpassed\s+by|inferior\s+to|worse\s+than|underperform(?:s|ed)?|"
        r"lags?\s+behind|falls?\s+behind)\b",
        reverse=True,
    ),
    _rule(
        "USES",
        "MODEL",
        "MODEL",
        r"\b(?:based\s+on|built\s+(?:up)?on|on\s+top\s+of|initiali[sz]\w*\s+(?:with|from|by)|extends|"
        r"extension\s+of|variant\s+of)\b",
    ),
    _rule(
        "USES",
        "MODEL METHOD",
        "METHOD",
        r"\b(?:us(?:es|ing)|use\s+of|based\s+on|built\s+(?:up)?on|employ(?:s|ing)?|adopt(?:s|ing)?|"
        r"appl(?:y|ies|ying)|utiliz(?:es?|ing)|leverag(?:es?|ing)|incorporat(?:es?|ing)|rel(?:y|ies)\s+on|"
        r"equipped\s+with|adds|adding|extends|combin\w*\s+with|(?:pre-?\s?)?trained\s+(?:using|with))\b",
    ),
    _rule("USES", "MODEL METHOD", "METHOD", r"\b(?:with|via|through)\b", strength="weak"),
    _rule(
        "USES",
        "MODEL METHOD",
        "MODEL METHOD",
        r"\b(?:(?:is|are|was|were)\s+(?:used|employed|adopted|applied|added)\s+(?:in|by|for)|used\s+by|"
        r"as\s+(?:the|a|its)?\s*backbone(?:\s+\w+)?\s+(?:in|of|for))\b",
        reverse=True,
    ),
)

# "We evaluate X on Y", "fine-tune X on Y", "initialize X with Y": the verb precedes the first mention.
CONTEXT_WINDOW = 40


@dataclass(frozen=True)
class _ContextRule:
    relationship_type: str
    sources: frozenset[str]
    targets: frozenset[str]
    before: re.Pattern[str]
    between: re.Pattern[str]

    def __post_init__(self) -> None:
        _check_rule(self)



_ARTICLES = r"(?:(?:the|our|a|an|its|their)\s+)?"
CONTEXT_RULES: tuple[_ContextRule, ...] = (
    _ContextRule(
        "EVALUATED_ON",
        frozenset({"MODEL"}),
        frozenset({"DATASET"}),
        re.compile(rf"\b(?:evaluat\w*|test\w*|benchmark\w*|report\w*|compar\w*)\s+{_ARTICLES}$", re.I),
        re.compile(r"\b(?:on|using|across)\b", re.I),
    ),
    _ContextRule(
        "TRAINED_ON",
        frozenset({"MODEL"}),
        frozenset({"DATASET"}),
        re.compile(rf"\b(?:(?:pre-?\s?)?train(?:s|ing)?|fine-?tun(?:e|es|ing))\s+{_ARTICLES}$", re.I),
        re.compile(r"\b(?:on|using|with|from)\b", re.I),
    ),
    _ContextRule(
        "USES",
        frozenset({"MODEL"}),
        frozenset({"MODEL"}),
        re.compile(rf"\binitiali[sz]\w*\s+{_ARTICLES}(?:weights?\s+of\s+{_ARTICLES})?$", re.I),
        re.compile(r"\b(?:with|from)\b", re.I),
    ),
)
# A name right after a preposition is an object ("X initialized with Y outperforms Z"), not the one that wins.
_PREPOSITION_BEFORE = re.compile(r"\b(?:with|by|from|than|using|over|to)\s+(?:the\s+|a\s+|an\s+)?$", re.I)
# "Compared to X, Y performs better": the winner comes second.
_COMPARED_BEFORE = re.compile(r"\bcompared\s+(?:to|with)\b[^.;]*$", re.I)
_BETTER_AFTER = re.compile(r"[^.;]{0,80}?\b(?:better|outperform\w*|superior|surpass\w*|higher)\b", re.I)

# "Our model"/"the proposed model" stand for the paper's own model, when the entities name one.
_OWN_REFERENCE = re.compile(
    r"\b(?:[Oo]ur|[Tt]he\s+proposed)\s+(?:proposed\s+|new\s+|final\s+|base\s+|large\s+)?"
    r"(?:model|models|approach|method|framework|architecture)\b"
)


# --- sentences ---

_ABBREVIATIONS = frozenset(
    "al e.g i.e eg ie vs fig figs eq eqs sec etc cf approx resp no tab ref refs dr mr ms prof et viz st inc ltd "
    "w.r.t wrt p".split()
)
_SENTENCE_END = re.compile(r"[.!?](?=[\"”’)\]]*\s+(?:[\"“(\[]*[A-Z0-9]|\([a-z]{1,4}\)\s))")
_WORD_BEFORE_PERIOD = re.compile(r"([A-Za-z.]+)$")
_LINE = re.compile(r"[^\n]*")
_HEADING = re.compile(r"(?:\d+(?:\.\d+)*\.?|[A-Z]\.\d+(?:\.\d+)*)\s*[A-Z][^.]{0,70}")
_CAPTION = re.compile(r"(?:Table|Figure|Fig\.)\s*\d+\s*[:.]")
# A line seen this often is a running header or footer ("Published as a conference paper at ICLR 2021").
RUNNING_LINE_MIN_REPEATS = 3


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans [start, end) of the prose; headings, running headers and table rows are left out."""
    spans = []
    for block_start, block_end in _prose_blocks(text):
        start = block_start
        for match in _SENTENCE_END.finditer(text, block_start, block_end):
            if match.group() == "." and _is_abbreviation(text, match.start()):
                continue
            spans.extend(_cut_long(text, start, match.end()))
            start = match.end()
        spans.extend(_cut_long(text, start, block_end))
    return [(s, e) for s, e in (_trim(text, s, e) for s, e in spans) if e > s]


def _prose_blocks(text: str) -> list[tuple[int, int]]:
    """Runs of consecutive prose lines; a non-prose line or a caption start ends a run."""
    lines = [(m.start(), m.end()) for m in _LINE.finditer(text) if m.end() > m.start()]
    repeats: dict[str, int] = {}
    for start, end in lines:
        key = text[start:end].strip()
        repeats[key] = repeats.get(key, 0) + 1
    blocks: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for start, end in lines:
        line = text[start:end].strip()
        prose = repeats[line] < RUNNING_LINE_MIN_REPEATS and _is_prose_line(line)
        if not prose or _CAPTION.match(line) or (current is not None and text.count("\n", current[1], start) > 1):
            if current is not None:
                blocks.append(current)
            current = (start, end) if prose else None
        else:
            current = (start, end) if current is None else (current[0], end)
    if current is not None:
        blocks.append(current)
    return blocks


def _is_prose_line(line: str) -> bool:
    """Whether a line reads like running text rather than a heading, table row or formula."""
    visible = [c for c in line if not c.isspace()]
    if not visible or not any(c.islower() for c in visible):
        return False
    if _HEADING.fullmatch(line):
        return False
    return sum(c.isalpha() for c in visible) / len(visible) >= MIN_LETTER_RATIO


def _is_abbreviation(text: str, period: int) -> bool:
    """Whether the period at this index ends an abbreviation or an initial rather than a sentence."""
    word = _WORD_BEFORE_PERIOD.search(text, max(0, period - 12), period)
    if word is None:
        return False
    token = word.group(1).lower().strip(".")
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _cut_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a span longer than LONG_SEGMENT_CHARS into pieces of about that size, at line breaks if possible."""
    pieces = []
    while end - start > LONG_SEGMENT_CHARS:
        window_end = start + 2 * LONG_SEGMENT_CHARS
        cut = text.find("\n", start + LONG_SEGMENT_CHARS, window_end)
        if cut == -1:
            cut = text.rfind(" ", start + 1, min(end, window_end))
        if cut <= start or cut >= end:
            break
        pieces.append((start, cut))
        start = cut + 1
    pieces.append((start, end))
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- matching ---

# Words that cancel or invert a relation between the two mentions ("X without EMD"), or just before the first
# one ("we replace the MLM objective with RTD").
_NEGATION = re.compile(
    r"\b(?:without|instead\s+of|rather\s+than|unlike|replac\w*|no|not(?!\s+only)|never)\b|n't\b", re.I
)
_NEGATION_BEFORE = re.compile(
    r"\b(?:without|instead\s+of|rather\s+than|unlike|replac\w*|not|never)\s+(?:[\w-]+\s+){0,2}$", re.I
)
# Citations ("(Devlin et al., 2019)", "[4]") and short asides do not take part in a sentence's structure.
_CITATION = re.compile(r"\((?:[^()]*\d{4}[a-z]?|\d+(?:,\s*\d+)*)\)|\[\d+(?:[,–-]\s*\d+)*\]")
_PARENTHETICAL = re.compile(r"\([^()]{0,80}\)")
# A new clause gives what follows another subject: "X uses A, this model ... B", "..., NSP is B".
_CLAUSE_BREAK = re.compile(
    r",\s*(?:this|these|that|which|who|where|whereas|while|but|we|it|they|its|their|and\s+(?:we|it|this|they))\b"
    r"|\b(?:where|whereas|while|which)\b|,\s*(?:[\w-]+\s+){1,3}(?:is|are|was|were|has|have)\b",
    re.I,
)
_NEW_SUBJECT = re.compile(r"\b(?:where|whereas|while)\b|,\s*(?:we|it|they|this|these|but)\b", re.I)
_LIST_COMMA = re.compile(r",\s*$")
_VERB_AFTER = re.compile(r"\s+(?:is|are|was|were|has|have)\b")
# What may separate coordinated mentions ("BERT, RoBERTa and XLNet"), footnote marks ("BookCorpus 9") included.
_COORDINATION = re.compile(r"[\s,/&()+]*(?:(?:and|or|as\s+well\s+as|the|respectively|\d+)\b[\s,/&()+]*)*", re.I)


@dataclass(frozen=True)
class _Candidate:
    relationship_type: str
    source: tuple[str, str]
    target: tuple[str, str]
    confidence: float


@dataclass(frozen=True)
class _Pair:
    """Two mentions of one sentence in text order, with the mentions between them."""

    first: Mention
    second: Mention
    between: tuple[Mention, ...]
    sentence_start: int


def _score(strength: str, distance: int) -> float:
    """Confidence of one sentence's evidence: the trigger's strength less a penalty for distance."""
    return max(MIN_CONFIDENCE, TRIGGER_STRENGTH[strength] - DISTANCE_PENALTY * distance)


def _coordinated(text: str, start: int, end: int, mentions: Iterable[Mention]) -> bool:
    """Whether text[start:end] only lists mentions ("BERT, RoBERTa and"), ignoring citations and name suffixes."""
    pieces, cursor = [], start
    for mention in sorted(mentions, key=lambda m: m.start):
        if start <= mention.start and mention.end <= end:
            pieces.append(text[cursor : mention.start])
            cursor = mention.end
            # A suffix glued to a name ("RoBERTa-Large", "BERTbase") belongs to the name.
            while cursor < end and not text[cursor].isspace() and text[cursor] not in ",;()":
                cursor += 1
    pieces.append(text[cursor:end])
    residue = " ".join(pieces)
    for _nesting in range(2):  # asides in lists: "Wikipedia (English dump; 12GB), BookCorpus (Zhu et al., 2015)"
        residue = _PARENTHETICAL.sub(" ", residue)
    return _COORDINATION.fullmatch(residue) is not None


def _interrupted(text: str, pair: _Pair, rule: _Rule, trigger: tuple[int, int]) -> bool:
    """Whether another mention is the trigger's real subject or object ("Unlike RNNs, Transformers apply X")."""
    source, target = (pair.second, pair.first) if rule.reverse else (pair.first, pair.second)
    source_side = (pair.first.end, trigger[0]) if not rule.reverse else (trigger[1], pair.second.start)
    target_side = (trigger[1], pair.second.start) if not rule.reverse else (pair.first.end, trigger[0])
    for mention in pair.between:
        if source_side[0] <= mention.start and mention.end <= source_side[1] and mention.entity_type in rule.sources:
            near, far = (source.end, mention.start) if not rule.reverse else (mention.end, source.start)
            if not _coordinated(text, near, far, pair.between):
                return True
        if target_side[0] <= mention.start and mention.end <= target_side[1] and mention.entity_type in rule.targets:
            near, far = (mention.end, target.start) if not rule.reverse else (target.end, mention.start)
            if not _coordinated(text, near, far, pair.between):
                return True
    # A new clause between source and trigger, or trigger and target, changes who does what to whom
    # ("X incorporates A where the model ... based on B", "X uses A, this model ... B").
    # So does a target that opens its own clause ("P uses A, NSP is B").
    opens_clause = (
        not rule.reverse
        and _LIST_COMMA.search(text, target_side[0], target.start)
        and _VERB_AFTER.match(text, target.end)
    )
    return bool(
        opens_clause
        or _NEW_SUBJECT.search(text, source_side[0], source_side[1])
        or _CLAUSE_BREAK.search(text, target_side[0], target_side[1])
    )


def _pair_candidates(text: str, pair: _Pair) -> list[_Candidate]:
    """Relationships one ordered pair of mentions supports, judged by the words around and between them."""
    first, second = pair.first, pair.second
    offset = first.end
    between = text[offset : second.start]
    before = text[max(pair.sentence_start, first.start - CONTEXT_WINDOW) : first.start]
    if _NEGATION.search(between) or _NEGATION_BEFORE.search(before):
        return []
    distance = len(between)
    found: list[_Candidate] = []
    # The trigger nearest the second mention decides: "trained on A and evaluated on B" relates B by evaluation.
    best: tuple[int, _Rule] | None = None
    for rule in RULES:
        source, target = (second, first) if rule.reverse else (first, second)
        if source.entity_type not in rule.sources or target.entity_type not in rule.targets:
            continue
        if target.name in GENERIC_PROCESSES or (
            source.entity_type == "METHOD" and source.name in GENERIC_PROCESSES and rule.relationship_type != "USES"
        ):
            continue
        if rule.strength == "weak" and distance > WEAK_TRIGGER_MAX_DISTANCE:
            continue
        for match in rule.trigger.finditer(between):
            span = (offset + match.start(), offset + match.end())
            if _interrupted(text, pair, rule, span):
                continue
            if (
                rule.relationship_type == "OUTPERFORMS"
                and not rule.reverse
                and _PREPOSITION_BEFORE.search(text, max(0, source.start - 25), source.start)
            ):
                continue
            if best is None or match.end() > best[0] or (match.end() == best[0] and rule.strength == "between"):
                best = (match.end(), rule)
    if best is not None:
        rule = best[1]
        source, target = (second, first) if rule.reverse else (first, second)
        found.append(_Candidate(rule.relationship_type, source.key, target.key, _score(rule.strength, distance)))
    for context in CONTEXT_RULES:
        if (
            first.entity_type in context.sources
            and second.entity_type in context.targets
            and context.before.search(before)
            and context.between.search(between)
            and not any(m.entity_type in context.targets and m.key != second.key for m in pair.between)
        ):
            found.append(_Candidate(context.relationship_type, first.key, second.key, _score("context", distance)))
    if (
        first.entity_type == second.entity_type == "MODEL"
        and "," in between
        and _COMPARED_BEFORE.search(before)
        and _BETTER_AFTER.match(text, second.end)
    ):
        found.append(_Candidate("OUTPERFORMS", second.key, first.key, _score("context", distance)))
    return found


def _is_process_verb(text: str, mention: Mention) -> bool:
    """Whether a mention of a generic process is a verb ("pre-trained", "fine-tune") rather than the noun."""
    return mention.name in GENERIC_PROCESSES and not text[mention.start : mention.end].lower().endswith("ing")


def _own_model(entities: Iterable[FoundEntity]) -> FoundEntity | None:
    """The paper's own model: the most confident MODEL at the own-contribution level, if any."""
    own = [e for e in entities if e.entity_type == "MODEL" and e.confidence >= OWN_CONTRIBUTION_CONFIDENCE]
    return min(own, key=lambda e: (-e.confidence, e.first_offset), default=None)


def _own_references(text: str, own: FoundEntity | None, taken: list[Mention]) -> list[Mention]:
    """Mentions standing for the own model ("our model"), where no entity mention already is."""
    if own is None:
        return []
    occupied = {(m.start, m.end) for m in taken}
    return [
        Mention(m.start(), m.end(), own.entity_type, own.name, "alias")
        for m in _OWN_REFERENCE.finditer(text)
        if (m.start(), m.end()) not in occupied
    ]


_OPENING_AFTER_NAME = re.compile(r"[^\s(),;]{0,12}[ \t]*\(")


def _expansions(text: str, mentions: list[Mention]) -> dict[Mention, Mention]:
    """Mentions inside a parenthesis right after another mention, which the parenthesis describes.

    "DeBERTa (Decoding-enhanced BERT with disentangled attention)": BERT is part of DeBERTa's name here.
    """
    owners: dict[Mention, Mention] = {}
    starts = [m.start for m in mentions]
    for mention in mentions:
        opening = _OPENING_AFTER_NAME.match(text, mention.end)  # "LayoutLMBASE (Text + Layout, MVLM)" too
        if opening is None:
            continue
        start = opening.end()
        closing = _closing_parenthesis(text, start)
        if closing is None or _CITATION.fullmatch(text[start - 1 : closing + 1]):
            continue
        for inner in mentions[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, closing)]:
            if inner.end <= closing:
                owners[inner] = mention
    return owners


def _closing_parenthesis(text: str, start: int, limit: int = 150) -> int | None:
    """Index of the ")" closing a parenthesis opened just before start, nested ones included."""
    depth = 1
    for index in range(start, min(len(text), start + limit)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _evidence(text: str, start: int, end: int, first: Mention, second: Mention) -> str:
    """The sentence on one line, cut around the pair when longer than EVIDENCE_MAX_CHARS."""
    sentence = " ".join(text[start:end].split())
    if len(sentence) <= EVIDENCE_MAX_CHARS:
        return sentence
    budget = EVIDENCE_MAX_CHARS - 2  # room for an ellipsis at each end
    middle = (first.start + second.end) // 2
    window_start = max(start, min(middle - budget // 2, end - budget))
    snippet = " ".join(text[window_start:end].split())
    if window_start > start and not text[window_start - 1].isspace():
        snippet = snippet.partition(" ")[2]  # no half word at the start
    if len(snippet) > budget:
        snippet = snippet[:budget].rsplit(" ", 1)[0] + "…"
    return ("…" if window_start > start else "") + snippet


RelationshipKey = tuple[str, tuple[str, str], tuple[str, str]]


def extract_relationships(
    text: str, entities: list[FoundEntity], *, on_progress: Callable[[float], None] | None = None
) -> list[FoundRelationship]:
    """Return relationships between the given entities, unique by (type, source, target), deterministic."""
    # "is pre-trained using X" is a trigger, not a mention of pre-training as a method.
    mentions = [m for m in find_mentions(text, entities) if not _is_process_verb(text, m)]
    mentions = sorted(mentions + _own_references(text, _own_model(entities), mentions), key=lambda m: m.start)
    owners = _expansions(text, mentions)
    starts = [m.start for m in mentions]
    if on_progress is not None:
        on_progress(0.3)
    sentences = split_sentences(text)
    best: dict[RelationshipKey, tuple[float, str]] = {}
    support: dict[RelationshipKey, int] = {}
    report_every = max(1, len(sentences) // 10)
    for index, (start, end) in enumerate(sentences):
        inside = mentions[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]
        if len({m.key for m in inside}) >= 2:
            for key, (confidence, first, second) in _sentence_relationships(text, start, inside, owners).items():
                support[key] = support.get(key, 0) + 1
                if key not in best or confidence > best[key][0]:
                    best[key] = (confidence, _evidence(text, start, end, first, second))
        if on_progress is not None and index % report_every == 0:
            on_progress(0.3 + 0.7 * index / len(sentences))
    found = [
        FoundRelationship(
            relationship_type=key[0],
            source=key[1],
            target=key[2],
            confidence=round(min(MAX_CONFIDENCE, confidence + SUPPORT_BONUS * (support[key] - 1)), 4),
            evidence=evidence,
        )
        for key, (confidence, evidence) in best.items()
    ]
    # results.py builds on this module (sentences, FoundRelationship), so it is imported here, not at the top.
    from .results import extract_results, merge_results

    found = merge_results(found, extract_results(text, entities, mentions, sentences=sentences))
    if on_progress is not None:
        on_progress(1.0)
    return found


def _sentence_relationships(
    text: str, start: int, inside: list[Mention], owners: dict[Mention, Mention]
) -> dict[RelationshipKey, tuple[float, Mention, Mention]]:
    """Best candidate per relationship key within one sentence, with the pair that supports it."""
    found: dict[RelationshipKey, tuple[float, Mention, Mention]] = {}
    for i, first in enumerate(inside):
        for j in range(i + 1, len(inside)):
            second = inside[j]
            if second.start - first.end > MAX_PAIR_DISTANCE or j - i - 1 > MAX_MENTIONS_BETWEEN:
                break
            if first.key == second.key or second.start < first.end:
                continue
            # Inside "X (expansion)", the names in the parenthesis relate only to X.
            if first in owners or (second in owners and owners[second] is not first):
                continue
            # Names inside another name's parenthesis are asides, neither subject nor object of a trigger.
            between = tuple(m for m in inside[i + 1 : j] if m not in owners)
            for candidate in _pair_candidates(text, _Pair(first, second, between, start)):
                if candidate.source == candidate.target:
                    continue
                key = (candidate.relationship_type, candidate.source, candidate.target)
                if key not in found or candidate.confidence > found[key][0]:
                    found[key] = (candidate.confidence, first, second)
    return found
