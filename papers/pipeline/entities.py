"""Find ML entities (models, datasets, metrics, tasks, methods) in a paper's text."""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from .types import ENTITY_TYPES, check_types
from .vocabulary import BLOCKED_PHRASES, CASE_SENSITIVE_METRICS, VOCABULARY, YEARLY_DATASETS

__all__ = ["ENTITY_TYPES"]  # re-exported: the entity types are defined in types.py

# Confidence = base of the strongest match kind + 0.05 per extra mention (bonus capped at 0.25), at most 0.99.
# Gazetteer entities thus stay <= 0.85, so only the paper's own contribution (title/"we propose") reaches 0.9+.
BASE_CONFIDENCE = {"title": 0.95, "proposed": 0.9, "canonical": 0.6, "alias": 0.55, "pattern": 0.45}
MENTION_BONUS, MENTION_BONUS_CAP, MAX_CONFIDENCE = 0.05, 0.25, 0.99
OWN_CONTRIBUTION_CONFIDENCE = 0.9

CHUNK_CHARS = 20_000
# Matches never span more than this, so scanning a chunk this far past its end finds every match starting in it.
CHUNK_OVERLAP = 300


@dataclass(frozen=True)
class FoundEntity:
    """An entity found in a paper, unique per (entity_type, name)."""

    entity_type: str
    name: str
    confidence: float
    mentions: int
    first_offset: int
    # How central the entity is to the paper, in [0, 1]; key: one of the paper's key (salient) entities;
    # signals: where it stood out ("title", "abstract", "proposed", "table", "caption").
    salience: float = 0.0
    key: bool = False
    signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mention:
    """One occurrence of an entity in the text."""

    start: int
    end: int
    entity_type: str
    name: str
    kind: str  # a BASE_CONFIDENCE key

    @property
    def key(self) -> tuple[str, str]:
        """The (entity_type, name) this mention belongs to."""
        return (self.entity_type, self.name)


@dataclass(frozen=True)
class _Term:
    entity_type: str | None  # None: a blocked phrase, found only to swallow what it contains
    name: str
    kind: str


# --- the gazetteer, compiled once ---

_BOUNDARY_BEFORE = r"(?<![A-Za-z0-9])"
# Model sizes glued to a name in tables ("BERTlarge", "DeBERTa1.5B", "Megatron336M") still count as the name.
_SIZE_SUFFIX = r"(?:(?i:x{0,2}-?large|base|small|tiny|mini|medium|huge|xl|ensemble)|\d+(?:\.\d+)?[BMK]?)"
_BOUNDARY_AFTER = rf"(?:s?(?![A-Za-z0-9])|(?={_SIZE_SUFFIX}(?![A-Za-z0-9])))"
_FOLDED_SEPARATOR = r"[\s-]+"


def _is_folded(alias: str, entity_type: str | None = None) -> bool:
    """Whether an alias matches in any case: all-lowercase ones (common words) and most metric names do."""
    if entity_type == "METRIC":
        # "mean IOU", "MIoU", "Bleu": metric names are spelled in any case. A two-letter name ("EM": "em")
        # or one listed as an ordinary word in lowercase ("mAP": "map") would match prose, so keeps its case.
        two_letters = len(alias) <= 2 and alias.isalpha()
        return not two_letters and alias not in CASE_SENSITIVE_METRICS
    return alias == alias.lower() and not any(c.isdigit() for c in alias)


def _folded_key(text: str) -> str:
    """Lookup key of a case-insensitive term: lowercase, hyphens and whitespace runs as one space."""
    return re.sub(_FOLDED_SEPARATOR, " ", text.lower()).strip()


def _exact_key(text: str) -> str:
    """Lookup key of a case-sensitive term: whitespace runs as one space."""
    return re.sub(r"\s+", " ", text).strip()


def _build_terms() -> tuple[dict[str, _Term], dict[str, _Term]]:
    """Split every alias into the exact and the case-folded table."""
    exact: dict[str, _Term] = {}
    folded: dict[str, _Term] = {}
    for entity_type, entries in VOCABULARY.items():
        for name, aliases in entries.items():
            for alias in (name, *aliases):
                term = _Term(entity_type, name, "canonical" if alias == name else "alias")
                if _is_folded(alias, entity_type):
                    folded.setdefault(_folded_key(alias), term)
                    folded.setdefault(_folded_key(alias.replace("-", "")), term)  # "pretraining"
                else:
                    exact.setdefault(_exact_key(alias), term)
    for phrase in BLOCKED_PHRASES:
        blocked = _Term(None, phrase, "blocked")
        if _is_folded(phrase):
            folded[_folded_key(phrase)] = blocked
        else:
            exact[_exact_key(phrase)] = blocked
    return exact, folded


def _trie_regex(words: Iterable[str], separator: str) -> str:
    """One regex alternation for many literal words, factored as a trie so matching stays fast."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node_regex(trie, separator)


def _trie_node_regex(node: dict[str, dict], separator: str) -> str:
    """Regex for one trie node; an optional group where a word may also end here, so longest match wins."""
    branches = [
        (separator if char == " " else re.escape(char)) + _trie_node_regex(child, separator)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


_EXACT_TERMS, _FOLDED_TERMS = _build_terms()
_EXACT_RE = re.compile(_BOUNDARY_BEFORE + "(?:" + _trie_regex(_EXACT_TERMS, r"\s+") + ")" + _BOUNDARY_AFTER)
_FOLDED_RE = re.compile(
    _BOUNDARY_BEFORE + "(?:" + _trie_regex(_FOLDED_TERMS, _FOLDED_SEPARATOR) + ")" + _BOUNDARY_AFTER, re.IGNORECASE
)


def _lowercase_view(table: dict[str, _Term]) -> dict[str, _Term]:
    """The exact table keyed in lowercase (first alias wins), to recognise "DEBERTA" in an all-caps title."""
    view: dict[str, _Term] = {}
    for key, term in table.items():
        if term.entity_type is not None:
            view.setdefault(key.lower(), term)
    return view


_EXACT_BY_LOWER = _lowercase_view(_EXACT_TERMS)


def lookup_term(surface: str) -> _Term | None:
    """The gazetteer term a surface string names, trying exact, case-folded, singular and versioned forms."""
    return _gazetteer_term(surface) or _versioned_term(surface)


def _gazetteer_term(surface: str) -> _Term | None:
    """The vocabulary term a surface string names, trying exact, case-folded and singular forms."""
    for candidate in (surface, surface[:-1] if surface.endswith("s") else None):
        if not candidate:
            continue
        term = _EXACT_TERMS.get(_exact_key(candidate)) or _FOLDED_TERMS.get(_folded_key(candidate))
        if term is not None:
            return term
    return None


# --- versions of datasets: "PASCAL VOC 2012", "WMT'14", "CoNLL-2005", "Visual Genome v1.4", "MS MARCO 2.1" ---

# Right after a dataset name: a year (1990-2039) spaced, hyphenated or glued; a two-digit year after an apostrophe
# ("WMT'14"; not "CoNLL-10", ten annotators, nor "COCO 14") or glued to a YEARLY_DATASETS name ("VOC07");
# "v2", "V1.1"; a bare "2.1" only when no number, unit or percent follows, as table rows put scores after
# names ("COCO 73.6 72.4").
# Fixed-width pieces and a lookahead: a match attempt reads a few characters, so scanning stays linear.
_VERSION = (
    r"(?:[ -]?(?P<year>199\d|20[0-3]\d)"
    r"|['’](?P<short>9\d|[0-3]\d)"
    r"|(?P<glued>9\d|[0-3]\d)"
    r"|[ -]?[vV](?P<v>\d{1,2}(?:\.\d{1,2})?)"
    r"| (?P<dotted>\d\.\d)(?!\s*(?:\d|%|[mM]illion|[bB]illion)))"
    r"(?![A-Za-z0-9]|[.,]\d)"
)
_VERSION_AFTER = re.compile(_VERSION)
_VERSIONED_SURFACE = re.compile(r"(?P<name>.*?[^\W\d_])" + _VERSION, re.DOTALL)
# The version a canonical name already carries ("CoNLL-2003", "SQuAD v1.1"), to name its siblings alike.
_NAME_VERSION = re.compile(r"(?P<base>.+?)(?P<sep>[ -]?)(?:(?P<year>(?:19|20)\d\d)|v?\d+(?:\.\d+)+|v\d+)")


def _version(match: re.Match[str]) -> tuple[str, bool]:
    """The version as it is named ("2014" for "'14", "v1.4", "2.1"), and whether it is a year."""
    if match["year"]:
        return match["year"], True
    if match["short"] or match["glued"]:
        year = int(match["short"] or match["glued"])
        return str(year + (1900 if year >= 90 else 2000)), True
    return ("v" + match["v"], False) if match["v"] else (match["dotted"], False)


@functools.lru_cache(maxsize=4096)  # a paper names a few versions many times; each costs several lookups
def _versioned(term: _Term, version: str, is_year: bool) -> _Term:
    """The dataset term for a version of term: a vocabulary entry if one names it, else base name + version."""
    own = _NAME_VERSION.fullmatch(term.name)
    base = own["base"] if own else term.name
    # "CoNLL-2005" like "CoNLL-2003": a sibling year keeps the canonical name's separator.
    separator = own["sep"] if own and own["year"] and own["sep"] and is_year else " "
    bare = version.removeprefix("v")
    forms = dict.fromkeys((version, bare, "v" + bare))  # ordered: the first vocabulary hit is the same every run
    spellings = [base + separator + version, *(base + sep + form for form in forms for sep in (" ", "-", ""))]
    for spelling in spellings:
        known = _gazetteer_term(spelling)
        if known is not None and known.entity_type == "DATASET":
            return _Term("DATASET", known.name, term.kind)
    return _Term("DATASET", base + separator + version, term.kind)


def _versioned_term(surface: str) -> _Term | None:
    """The term of a dataset name followed by a version ("VOC 2012" -> "PASCAL VOC 2012"), if surface is one."""
    match = _VERSIONED_SURFACE.fullmatch(surface.strip())
    if match is None:
        return None
    term = _gazetteer_term(match["name"])
    if term is None or term.entity_type != "DATASET" or (match["glued"] and term.name not in YEARLY_DATASETS):
        return None
    return _versioned(term, *_version(match))


def _with_version(text: str, end: int, term: _Term) -> tuple[int, _Term]:
    """Extend a dataset mention over a version that follows it; other mentions are returned as they are."""
    if term.entity_type != "DATASET" or text[end - 1].isdigit():  # "CIFAR-10 2012": a digit ends the name
        return end, term
    match = _VERSION_AFTER.match(text, end)
    if match is None or (match["glued"] and term.name not in YEARLY_DATASETS):
        return end, term
    return match.end(), _versioned(term, *_version(match))


# --- document structure ---

_REFERENCES_HEADING = re.compile(
    r"^[ \t]*(?:\d+\.?[ \t]*)?(?:references|bibliography|literature cited|works cited)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_APPENDIX_HEADING = re.compile(
    r"^[ \t]*(?:[A-Z][ .]?)?(?:APPENDI(?:X|CES)|Appendi(?:x|ces)|SUPPLEMENTARY|Supplementary)\b"
    r"|^[ \t]*A(?:\.\d+)*[ \t]+[A-Z]{3,}\b|^[ \t]*A\.\d+[ \t]+\S",
    re.MULTILINE,
)
# A references heading in the first part of a paper is a table of contents or a sentence, not the bibliography.
REFERENCES_MIN_POSITION = 0.3


def references_span(text: str) -> tuple[int, int] | None:
    """Where the bibliography is: from its heading to an appendix heading or the end of the text."""
    headings = [m for m in _REFERENCES_HEADING.finditer(text) if m.start() >= REFERENCES_MIN_POSITION * len(text)]
    if not headings:
        return None
    start = headings[-1].start()
    appendix = _APPENDIX_HEADING.search(text, headings[-1].end())
    return (start, appendix.start() if appendix else len(text))


# --- per-document acronym definitions: "noisy supervised pre-training (NSP)" is not next sentence prediction ---

# Words are read possessively and at most MAX_WORD_CHARS long, so a match attempt costs at most 8 such words:
# an unbroken run of letters is linear, not one full re-read per position.
MAX_WORD_CHARS = 64
_ACRONYM_DEFINITION = re.compile(
    rf"((?:[^\W\d_][\w'-]{{0,{MAX_WORD_CHARS - 1}}}+[ \t\n]++){{1,8}})\(([A-Z]{{2,6}})s?\)\Z"
)
_ACRONYM_PARENTHESIS = re.compile(r"\(([A-Z]{2,6})s?\)")
# A definition is looked for only in this many characters before an "(ACRONYM)", and not across the previous
# one (no word holds a parenthesis): each position is tried at most once, and only near a parenthesis.
DEFINITION_WINDOW = 8 * (MAX_WORD_CHARS + 2)


def _acronym_definitions(text: str) -> Iterator[re.Match[str]]:
    """Each "long form (ACRONYM)" in the text, in order: group 1 the words before, group 2 the acronym."""
    previous = 0
    for parenthesis in _ACRONYM_PARENTHESIS.finditer(text):
        start = max(previous, parenthesis.start() - DEFINITION_WINDOW)
        previous = parenthesis.end()
        match = _ACRONYM_DEFINITION.search(text, start, parenthesis.end())  # \Z: ends at this parenthesis
        if match is not None:
            yield match


_ACRONYM_STOP_WORDS = frozenset("of the and for to a an in on with by".split())
# "Inception score (IS)", "adversarial training (AT)": acronyms that are words, not learned, as headings and
# titles in capitals are full of them.
_WORDS_IN_CAPITALS = frozenset("is at in on as it an be by do go if me my no of or so to up us we am are was".split())


def _long_form(acronym: str, words: list[str]) -> list[str] | None:
    """The trailing words whose initials (or hyphen-part initials) spell the acronym, if any."""
    letters = acronym.lower()

    def match(remaining: int, index: int) -> int | None:
        if remaining == 0:
            return index
        if index == 0:
            return None
        word = words[index - 1]
        if word.lower() in _ACRONYM_STOP_WORDS and remaining < len(letters):
            return match(remaining, index - 1)
        parts = [part for part in word.split("-") if part]
        # In a fixed order (a set's order changes with the hash seed, and so would the first match found).
        for initials in dict.fromkeys((parts[0][0].lower(), "".join(part[0] for part in parts).lower())):
            if letters[:remaining].endswith(initials):
                found = match(remaining - len(initials), index - 1)
                if found is not None:
                    return found
        return None

    first = match(len(letters), len(words))
    return None if first is None else words[first:]


@dataclass(frozen=True)
class _DocumentTerms:
    """What a paper's own acronym definitions add to or change in the gazetteer."""

    acronyms: dict[str, _Term | None]  # acronym -> its meaning here (None: not the gazetteer's meaning)
    long_forms: dict[str, _Term]  # folded key of a long form outside the gazetteer -> its term


def document_terms(text: str) -> _DocumentTerms:
    """Read "long form (ACRONYM)" definitions: keep, override or learn acronyms, and learn their long forms."""
    acronyms: dict[str, _Term | None] = {}
    long_forms: dict[str, _Term] = {}
    defined: set[str] = set()
    for match in _acronym_definitions(text):
        acronym = match.group(2)
        words = None if acronym in defined else _long_form(acronym, match.group(1).split())
        if words is None:
            continue
        defined.add(acronym)  # the first definition decides; a later one is mostly a cited paper's wording
        known = _acronym_term(acronym)
        meaning = _gazetteer_term(" ".join(words))
        if meaning is not None and meaning.entity_type is None:
            meaning = None  # a blocked phrase names nothing
        if known is not None and (
            (meaning is None and _spells_a_long_form(words, known)) or (meaning is not None and _same(meaning, known))
        ):
            if meaning is None:  # "convolution neural net (CNN)": the gazetteer's meaning; this spelling counts too
                _learn(long_forms, _long_form_name(words), _Term(known.entity_type, known.name, "alias"))
            continue
        if meaning is None:
            noun = _NEXT_WORD.match(text, match.end())
            meaning = _new_term(acronym, words, noun.group(1) if noun else "")
            if meaning is not None:
                _learn(long_forms, _long_form_name(words), meaning)
        if known is not None:
            acronyms[acronym] = meaning  # "noisy supervised pre-training (NSP)" is not next sentence prediction
        elif meaning is not None and acronym.lower() not in _WORDS_IN_CAPITALS:
            acronyms[acronym] = _Term(meaning.entity_type, meaning.name, "alias")
    return _DocumentTerms(acronyms, long_forms)


def _acronym_term(acronym: str) -> _Term | None:
    """The gazetteer entity an acronym names as written (metrics match in any case: "MSE")."""
    term = _EXACT_TERMS.get(acronym) or _FOLDED_TERMS.get(acronym.lower())
    return term if term is not None and term.entity_type is not None else None


def _same(term: _Term, other: _Term) -> bool:
    """Whether two terms name the same entity."""
    return (term.entity_type, term.name) == (other.entity_type, other.name)


def _learn(long_forms: dict[str, _Term], name: str, term: _Term) -> None:
    """Match a long form, spelled with or without its hyphens, as term."""
    long_forms[_folded_key(name)] = long_forms[_folded_key(name.replace("-", ""))] = term


def _long_form_name(words: list[str]) -> str:
    """A long form as a name: capitalised words in lowercase, words with inner capitals as written."""
    return " ".join(word.lower() if word[1:] == word[1:].lower() else word for word in words)


_NEXT_WORD = re.compile(r"[ \t\n]{0,8}([A-Za-z]{1,32})")


def _new_term(acronym: str, words: list[str], noun: str) -> _Term | None:
    """What a long form outside the gazetteer names, told by its shape or the noun after "(ACRONYM)"."""
    kind = _KIND_NOUNS.get(noun.lower())
    for entity_type in ("METHOD", "TASK"):
        # "noisy supervised pre-training (NSP)", "aspect-based sentiment analysis (ABSA)": a paper's named
        # variant of a known method or task is one too; but "document classification (MDC) loss" is a method.
        if any(_typed(" ".join(words[i:]), entity_type) for i in range(1, len(words))):
            return _Term("METHOD" if kind == "METHOD" else entity_type, _long_form_name(words), "alias")
    if kind == "DATASET" or _KIND_NOUNS.get(_singular(words[-1].lower())) == "DATASET":
        # "Million Song Dataset (MSD)", "Wall Street Journal (WSJ) corpus": datasets go by their acronyms.
        return _Term("DATASET", acronym, "alias")
    return None


def _typed(surface: str, entity_type: str) -> bool:
    """Whether surface is a gazetteer term of this type."""
    term = _gazetteer_term(surface)
    return term is not None and term.entity_type == entity_type


# Words a long form may add or leave out and still mean the same: "Stanford Question Answering Dataset".
_LONG_FORM_FILLERS = _ACRONYM_STOP_WORDS | {"corpus", "corpora", "dataset", "datasets", "data", "set", "benchmark"}


def _content_words(phrase: str) -> tuple[str, ...]:
    """A long form's words to compare: lowercase, split at hyphens, singular, without possessives and fillers."""
    parts = [_singular(part.removesuffix("'s").removesuffix("’s")) for part in re.split(r"[-\s]+", phrase.lower())]
    parts = [part for part in parts if part]
    return tuple(part for part in parts if part not in _LONG_FORM_FILLERS) or tuple(parts)


def _singular(word: str) -> str:
    """The word without a plural "s" ("nets", "networks"), short words and "-ss" words as they are."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _build_long_forms() -> dict[tuple[str, str], tuple[tuple[str, ...], ...]]:
    """The content words of every multi-word alias, by entity: the long forms a definition may spell out."""
    forms: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {}
    for entity_type, entries in VOCABULARY.items():
        for name, aliases in entries.items():
            words = [_content_words(alias) for alias in (name, *aliases) if len(re.split(r"[-\s]+", alias)) > 1]
            if words:
                forms[(entity_type, name)] = tuple(words)
    return forms


_LONG_FORMS = _build_long_forms()


def _spells_a_long_form(words: list[str], term: _Term) -> bool:
    """Whether the words spell one of term's long forms, up to case, hyphens, plurals, fillers and typos."""
    written = _content_words(" ".join(words))
    return any(
        "".join(written) == "".join(form) or (len(written) == len(form) and all(map(_close_words, written, form)))
        for form in _LONG_FORMS.get((term.entity_type, term.name), ())
    )


def _close_words(word: str, other: str) -> bool:
    """Whether two words are one word's spellings: a shortening ("net"), a suffix ("convolution-al"), a typo."""
    if word == other:
        return True
    shorter = min(len(word), len(other))
    prefix = len(os.path.commonprefix([word, other]))
    if prefix >= 3 and prefix == shorter:  # net/network, square/squared, gate/gated
        return True
    if prefix >= 4 and shorter - prefix <= 2:  # neuron/neural, recurrent/recurent
        return True
    return shorter >= 4 and _one_edit_apart(word, other)  # neutral/neural, filed/field


def _one_edit_apart(word: str, other: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns one word into the other."""
    short, long = sorted((word, other), key=len)
    if len(long) - len(short) > 1:
        return False
    i = len(os.path.commonprefix([short, long]))
    if len(short) < len(long):
        return short[i:] == long[i + 1 :]
    swapped = short[i + 1 : i + 2] == long[i : i + 1] and short[i : i + 1] == long[i + 1 : i + 2]
    return short[i + 1 :] == long[i + 1 :] or (swapped and short[i + 2 :] == long[i + 2 :])


# --- the paper's own contribution ---

_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-+.][A-Za-z0-9]+)*")
_GENERIC_ACRONYMS = frozenset(
    (
        "NLP NLU NLG AI ML DL SOTA SoTA PLM PLMs LLM LLMs GPU GPUs TPU CPU API URL PDF ABSTRACT KEYWORDS "
        "INTRODUCTION TITLE NOTE ACM IEEE ICLR ICML ACL EMNLP NAACL KDD CVPR AAAI IJCAI NeurIPS NIPS arXiv LaTeX"
    ).split()
)
_TITLE_NAME = re.compile(r"^[ \t]*([A-Za-z][A-Za-z0-9]*(?:[-+.][A-Za-z0-9]+)*)[ \t]*:", re.MULTILINE)
_ABSTRACT_HEADING = re.compile(r"^[ \t]*abstract\b", re.IGNORECASE | re.MULTILINE)
TITLE_REGION_CHARS = 1500
_PROPOSE = re.compile(
    r"\b(?:we|this\s+paper|this\s+work|our\s+work)\s+(?:\w+ly\s+|also\s+|further\s+|then\s+)?"
    r"(?:propose|present|introduce|develop)[sd]?\b",
    re.IGNORECASE,
)
_PROPOSE_WINDOW_TOKENS = 10
MAX_PROPOSED_NAMES = 32
_WINDOW_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9+]*(?:[-.][A-Za-z0-9+]+)*|[^\sA-Za-z0-9]")
_PROPOSE_STOP_WORDS = frozenset(
    "to for that which of in on with by from as where when into using and or is are can will how what here".split()
)
# The noun naming what a proposed name is ("the X algorithm", "a new dataset X"); MODEL when none says otherwise.
_KIND_NOUNS = {
    **dict.fromkeys("model models architecture network framework system encoder decoder transformer".split(), "MODEL"),
    **dict.fromkeys(
        "algorithm method technique objective loss mechanism strategy scheme procedure regularizer trick".split(),
        "METHOD",
    ),
    **dict.fromkeys("dataset corpus benchmark collection suite treebank".split(), "DATASET"),
}
check_types("entity", _KIND_NOUNS.values(), ENTITY_TYPES)


def _is_name_like(token: str) -> bool:
    """A token shaped like a model name: acronym, CamelCase or letters with digits ("DeBERTa", "T5", "FooNet")."""
    if token in _GENERIC_ACRONYMS or not _NAME_LIKE.fullmatch(token) or len(token) < 2:
        return False
    uppers = sum(c.isupper() for c in token)
    camel = re.search(r"[a-z][A-Z]", token) is not None
    return (uppers >= 2 and len(token) >= 3) or camel or (uppers >= 1 and any(c.isdigit() for c in token))


@dataclass(frozen=True)
class _OwnName:
    entity_type: str
    name: str
    kind: str  # "title" or "proposed"
    offset: int
    surface: str


def _canonical_spelling(name: str, text: str) -> str:
    """The most frequent mixed-case spelling of a name in the text ("DEBERTA" -> "DeBERTa")."""
    spellings = Counter(
        m.group() for m in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![a-z])", text, re.IGNORECASE)
    )
    mixed = [(count, spelling) for spelling, count in spellings.items() if not spelling.isupper()]
    return max(mixed)[1] if mixed else name


def _own_name(
    token: str, nouns: list[str], text: str, kind: str, offset: int, spellings: dict[str, str] | None = None
) -> _OwnName | None:
    """Resolve a candidate to a gazetteer entity or a new one typed by the nearest describing noun (spellings:
    canonical spellings already read, so a name repeated in many "we propose" sentences is read once)."""
    term = _EXACT_TERMS.get(token) or _EXACT_BY_LOWER.get(token.lower())
    if term is not None:
        return None if term.entity_type is None else _OwnName(term.entity_type, term.name, kind, offset, token)
    spellings = {} if spellings is None else spellings
    if token not in spellings:
        spellings[token] = _canonical_spelling(token, text)
    name = spellings[token]
    if not _is_name_like(name):
        return None  # an all-caps title word that the body spells as an ordinary word
    types = [_KIND_NOUNS[noun.lower()] for noun in nouns if noun.lower() in _KIND_NOUNS]
    return _OwnName(types[0] if types else "MODEL", name, kind, offset, token)


def _title_names(text: str) -> list[_OwnName]:
    """A name before a colon at the start of a title line ("DeBERTa: Decoding-enhanced BERT ...")."""
    abstract = _ABSTRACT_HEADING.search(text, 0, TITLE_REGION_CHARS)
    region_end = abstract.start() if abstract else min(len(text), TITLE_REGION_CHARS)
    for match in _TITLE_NAME.finditer(text, 0, region_end):
        token = match.group(1)
        if _is_name_like(token):
            own = _own_name(token, [], text, "title", match.start(1))
            if own is not None:
                return [own]  # the title comes first; later "Name:" lines are affiliations or notes
    return []


def _proposed_names(text: str, skip: tuple[int, int] | None) -> list[_OwnName]:
    """The first name-like token after "we propose/present/introduce" ("we propose a new model X")."""
    found = []
    # Resolving a new name reads the whole text, so a paper gets MAX_PROPOSED_NAMES distinct candidates, each
    # read once: tens of thousands of "we propose X1", "we propose X2" (or of "we propose X") would otherwise
    # cost one full scan each.
    seen: set[str] = set()
    spellings: dict[str, str] = {}
    for match in _PROPOSE.finditer(text):
        if skip and skip[0] <= match.start() < skip[1]:
            continue
        tokens = list(_WINDOW_TOKEN.finditer(text, match.end(), match.end() + 200))[:_PROPOSE_WINDOW_TOKENS]
        words = [token.group() for token in tokens]
        for index, word in enumerate(words):
            if word.lower() in _PROPOSE_STOP_WORDS or not (word[0].isalnum() or word == ","):
                break
            if _is_name_like(word):
                seen.add(word)
                if len(seen) > MAX_PROPOSED_NAMES:
                    return found
                # The noun right after the name decides first ("X algorithm"), then the nearest one before it.
                nouns = words[index + 1 : index + 2] + words[:index][::-1]
                own = _own_name(word, nouns, text, "proposed", tokens[index].start(), spellings)
                if own is not None:
                    found.append(own)
                break
    return found


# --- scanning ---


def _chunks(length: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) windows of about CHUNK_CHARS covering the text."""
    return [(start, min(length, start + CHUNK_CHARS)) for start in range(0, max(length, 1), CHUNK_CHARS)]


def _gazetteer_matches(text: str, terms: _DocumentTerms, on_step: Callable[[], None] | None = None) -> list[Mention]:
    """Vocabulary mentions, longest match first, blocked phrases and overridden acronyms removed."""
    passes = [
        (_EXACT_RE, _EXACT_TERMS, _exact_key, terms.acronyms),
        (_FOLDED_RE, _FOLDED_TERMS, _folded_key, terms.acronyms),  # metric acronyms ("MSE") are folded terms
    ]
    # Acronyms the paper defines for what the gazetteer has no acronym for ("batch normalization (BN)").
    new_acronyms = {
        acronym: term for acronym, term in terms.acronyms.items() if term is not None and _acronym_term(acronym) is None
    }
    if new_acronyms:
        trie = _trie_regex(new_acronyms, r"\s+")
        passes.append(
            (re.compile(_BOUNDARY_BEFORE + "(?:" + trie + ")" + _BOUNDARY_AFTER), new_acronyms, _exact_key, {})
        )
    if terms.long_forms:
        trie = _trie_regex(terms.long_forms, _FOLDED_SEPARATOR)
        regex = re.compile(_BOUNDARY_BEFORE + "(?:" + trie + ")" + _BOUNDARY_AFTER, re.IGNORECASE)
        passes.append((regex, terms.long_forms, _folded_key, {}))
    raw: list[tuple[int, int, _Term, int]] = []
    for priority, (regex, table, key, overrides) in enumerate(passes):
        for start, end in _chunks(len(text)):
            for match in regex.finditer(text, start, min(len(text), end + CHUNK_OVERLAP)):
                if match.start() >= end:
                    break
                term = _resolve(match.group(), table, key, overrides)
                if term is not None:
                    raw.append((match.start(), *_with_version(text, match.end(), term), priority))
            if on_step is not None and priority < 2:
                on_step()
    mentions = []
    last_end = -1
    for start, end, term, _priority in sorted(raw, key=lambda item: (item[0], item[0] - item[1], item[3])):
        if start < last_end:
            continue
        last_end = end
        if term.entity_type is not None:
            mentions.append(Mention(start, end, term.entity_type, term.name, term.kind))
    return mentions


def _resolve(
    surface: str, table: dict[str, _Term], key: Callable[[str], str], overrides: dict[str, _Term | None]
) -> _Term | None:
    """The term for a matched surface string; a blocked term is returned so it can swallow its span."""
    for candidate in (surface, surface[:-1]) if surface.endswith("s") else (surface,):  # a plural "s"?
        if candidate in overrides:
            return overrides[candidate] or _Term(None, candidate, "blocked")
        term = table.get(key(candidate))
        if term is not None:
            return term
    return None


# Unknown names built like model names: SimBERT, StructBERT, UniLM, Longformer, InfoXLM.
# A capital, then at least one lowercase letter before the ending. Reading up to the first lowercase letter
# possessively makes a match attempt linear in the word; "anywhere" before it was quadratic on a long word.
_MODEL_SHAPED = re.compile(
    _BOUNDARY_BEFORE + r"([A-Z][A-Z0-9]*+[a-z][A-Za-z0-9]*?(?:BERT|BERTa|former|Former|LM|GPT))" + _BOUNDARY_AFTER
)


def _pattern_matches(text: str, taken: list[Mention]) -> list[Mention]:
    """Model-shaped names not in the gazetteer, where no gazetteer mention already sits."""
    occupied = {position for mention in taken for position in range(mention.start, mention.end)}
    found = []
    for match in _MODEL_SHAPED.finditer(text):
        name = match.group(1)
        if match.start() in occupied or lookup_term(name) is not None or name in _GENERIC_ACRONYMS:
            continue
        found.append(Mention(match.start(), match.start() + len(name), "MODEL", name, "pattern"))
    return found


def _name_matches(text: str, names: Iterable[tuple[str, str]], kind: str) -> list[Mention]:
    """Every occurrence of names outside the gazetteer, as spelled or in capitals."""
    found = []
    for entity_type, name in names:
        spellings = sorted({name, name.upper()}, key=len, reverse=True)
        regex = re.compile(_BOUNDARY_BEFORE + "(?:" + "|".join(map(re.escape, spellings)) + ")" + _BOUNDARY_AFTER)
        found.extend(Mention(m.start(), m.end(), entity_type, name, kind) for m in regex.finditer(text))
    return found


def _outside(mentions: Iterable[Mention], span: tuple[int, int] | None) -> Iterator[Mention]:
    """Mentions not inside the span."""
    for mention in mentions:
        if span is None or not span[0] <= mention.start < span[1]:
            yield mention


def _all_mentions(
    text: str, on_progress: Callable[[float], None] | None = None
) -> tuple[list[Mention], dict[tuple[str, str], set[str]]]:
    """Every counted mention in the text, and the extra match kinds owed to the paper's own contribution."""
    # Bibliography mentions are skipped entirely: a cited title says what others did, not what this paper uses.
    bibliography = references_span(text)
    steps = 2 * len(_chunks(len(text)))
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(0.9 * done / steps)

    gazetteer = list(_outside(_gazetteer_matches(text, document_terms(text), step), bibliography))
    proposed = _proposed_names(text, bibliography)
    typed = {name.name: name.entity_type for name in proposed}
    titled = [replace(name, entity_type=typed.get(name.name, name.entity_type)) for name in _title_names(text)]
    own = titled + proposed
    own_kinds: dict[tuple[str, str], set[str]] = {}
    for name in own:
        own_kinds.setdefault((name.entity_type, name.name), set()).add(name.kind)
    known = {mention.key for mention in gazetteer}
    new_names = [key for key in own_kinds if key not in known and lookup_term(key[1]) is None]
    mentions = gazetteer + list(_outside(_name_matches(text, new_names, "proposed"), bibliography))
    mentions += list(_outside(_pattern_matches(text, mentions), bibliography))
    # A title written in capitals ("DEBERTA:") is still a mention of the name.
    covered = {m.start for m in mentions}
    mentions += [
        Mention(n.offset, n.offset + len(n.surface), n.entity_type, n.name, n.kind)
        for n in own
        if n.kind == "title" and n.offset not in covered
    ]
    return sorted(mentions, key=lambda m: m.start), own_kinds


def _confidence(kinds: Iterable[str], mentions: int) -> float:
    """Base of the strongest match kind plus a capped bonus per extra mention."""
    base = max(BASE_CONFIDENCE[kind] for kind in kinds)
    return round(min(MAX_CONFIDENCE, base + min(MENTION_BONUS_CAP, MENTION_BONUS * (mentions - 1))), 4)


def extract_entities(text: str, *, on_progress: Callable[[float], None] | None = None) -> list[FoundEntity]:
    """Return entities found in text, ordered by first_offset; on_progress(fraction in [0,1]) during work."""
    mentions, own_kinds = _all_mentions(text, on_progress)
    grouped: dict[tuple[str, str], list[Mention]] = {}
    for mention in mentions:
        grouped.setdefault(mention.key, []).append(mention)
    found = [
        FoundEntity(
            entity_type=key[0],
            name=key[1],
            confidence=_confidence({m.kind for m in group} | own_kinds.get(key, set()), len(group)),
            mentions=len(group),
            first_offset=group[0].start,
        )
        for key, group in grouped.items()
    ]
    if on_progress is not None:
        on_progress(1.0)
    return sorted(found, key=lambda e: (e.first_offset, e.entity_type, e.name))


def find_mentions(text: str, entities: Iterable[FoundEntity]) -> list[Mention]:
    """Mentions of the given entities in text (bibliography excluded), ordered by position."""
    wanted = {(entity.entity_type, entity.name) for entity in entities}
    mentions, _own = _all_mentions(text)
    found = [mention for mention in mentions if mention.key in wanted]
    # Entities produced elsewhere (e.g. an older extractor) may name things this scan did not find.
    missing = wanted - {mention.key for mention in found}
    if missing:
        extra = _outside(_name_matches(text, sorted(missing), "alias"), references_span(text))
        taken = {(m.start, m.end) for m in found}
        found += [m for m in extra if (m.start, m.end) not in taken]
    return sorted(found, key=lambda m: (m.start, m.end))
