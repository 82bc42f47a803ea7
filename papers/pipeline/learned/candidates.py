"""Group tagged and gazetteer mentions into a paper's candidate entities, and describe how central each is."""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from ..entities import Mention, lookup_term
from .document import Document, inside
from .tagger import TaggedMention

# The gazetteer's types as the annotation's: a MODEL and a METHOD are both "Method" there.
ANNOTATION_TYPE = {"MODEL": "Method", "METHOD": "Method", "DATASET": "Material", "METRIC": "Metric", "TASK": "Task"}
# Building blocks nearly every paper uses; almost never what a paper is about.
# Building blocks nearly every paper uses; almost never what a paper is about (hyphens stand for spaces).
GENERIC = frozenset(
    name.replace("-", " ")
    for name in (
        "CNN RNN LSTM GRU BiLSTM MLP Transformer ResNet VGG dropout attention self-attention SGD fine-tuning "
        "pre-training stochastic-gradient-descent Adam-optimizer batch-normalization layer-normalization "
        "residual-connection word-embeddings beam-search data-augmentation supervised-learning "
        "unsupervised-learning attention-mechanism transfer-learning CRF softmax ReLU "
        # hyperparameters the tagger reads as metrics
        "learning-rate batch-size momentum weight-decay"
    ).split()
)
_GENERIC_KEYS = None  # filled lazily: the normalised keys of GENERIC
_NUMBER_NEAR = re.compile(r"\d+\.\d+|\d+(?:\.\d+)?\s?%")
# "our model", "we propose", "we call": the paper speaking of its own work just before a mention.
_OURS_BEFORE = re.compile(r"\b(?:our|we|ours|proposed|propose|introduce|call|called|named|dubbed)\b[^.\n]*$", re.I)
OURS_WINDOW = 40
_DECIMAL = re.compile(r"\d+\.\d+|\d%")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?%?|(?<=-)\d+\b")
LINE_WINDOW = 200
NUMBER_WINDOW = 60
# Features that read the text around each mention read a candidate's first this many (no paper of the training
# documents has a name this often), so a name repeated a hundred thousand times costs a bounded time.
MAX_OFFSETS_READ = 1000
MAX_NAME_CHARS = 80
_STRIP_WORDS = re.compile(r"^(?:(?:the|our|a|an|this|these|their|its|proposed|new|novel)\s+)+", re.IGNORECASE)
_ACRONYM_AFTER = re.compile(r"\s*\(\s*([A-Za-z][A-Za-z0-9\-]{1,14})\s*\)")
# A span the tagger ran into the definition: "Context-Aware Hierarchical Fusion ( CHFusion".
_ACRONYM_INSIDE = re.compile(r"(.+?)\s*\(\s*([A-Za-z][A-Za-z0-9\-]{1,14})\s*\)?$")
# "a generative model named Stacked GANs": what follows the naming verb is the name ("named entity" is not one).
_NAMED = re.compile(r"^.+?\s(?:named|called|dubbed|termed|coined)\s+(?=\S)", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


# Words that say what kind of thing a name is, not which: "CIFAR-100 dataset", "BLEU score", "WSJ test set".
_KIND_SUFFIX = re.compile(
    r"(?:[\s_-]+(?:data\s*sets?|corpus|corpora|benchmarks?|tasks?|scores?|(?:test|training|dev|validation)\s+sets?))+$",
    re.IGNORECASE,
)


# After a name with capitals or digits, a kind word is not part of it: "LayoutLM model", "FRRN method".
_MODEL_KIND_SUFFIX = re.compile(r"(?<=[A-Z0-9])([a-z0-9]*)\s+(?:models?|methods?|approach|framework|algorithm)$")


@functools.lru_cache(maxsize=65536)
def normalise(name: str) -> str:
    """Comparison key of a name: lowercase letters and digits only, without a kind word or a plural ending."""
    stripped = _KIND_SUFFIX.sub("", name.replace("_", " ")) or name
    stripped = _MODEL_KIND_SUFFIX.sub(r"\1", stripped)
    key = re.sub(r"[^a-z0-9]+", "", stripped.lower())
    if len(key) > 4 and key.endswith("ies"):
        return key[:-3] + "y"
    return key[:-1] if len(key) > 4 and key.endswith("s") and not key.endswith("ss") else key


def _generic_keys() -> frozenset[str]:
    """Normalised keys of the generic names (built on first use)."""
    global _GENERIC_KEYS
    if _GENERIC_KEYS is None:
        _GENERIC_KEYS = frozenset(normalise(name) for name in GENERIC)
    return _GENERIC_KEYS


@dataclass
class Candidate:
    """One entity of the paper before salience is decided: its mentions from both passes."""

    key: str
    surfaces: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)  # annotation type votes
    gazetteer: tuple[str, str] | None = None  # (entity type, canonical name) when the gazetteer knows it
    offsets: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)  # tagger marginals
    gazetteer_kinds: set[str] = field(default_factory=set)  # match kinds: canonical, alias, title, proposed, pattern
    acronym: str | None = None

    @property
    def annotation_type(self) -> str:
        """The majority type; the gazetteer's type wins ties."""
        if self.gazetteer and ANNOTATION_TYPE[self.gazetteer[0]] in self.kinds:
            top = self.kinds.most_common(1)[0][1]
            if self.kinds[ANNOTATION_TYPE[self.gazetteer[0]]] == top:
                return ANNOTATION_TYPE[self.gazetteer[0]]
        return self.kinds.most_common(1)[0][0]


def clean_surface(text: str) -> str:
    """A mention's text as a name: spaced hyphens joined, leading articles and "our"/"proposed" dropped."""
    surface = re.sub(r"\s*-\s*", "-", " ".join(text.split()))
    return _STRIP_WORDS.sub("", _NAMED.sub("", surface[:MAX_NAME_CHARS * 2]))[:MAX_NAME_CHARS]


def gazetteer_key(entity_type: str, name: str) -> str:
    """A candidate key for a name the gazetteer knows: its type and canonical name, so two known names that
    normalise alike ("Inception" the model, "Inception score" the metric) stay apart."""
    return f"{entity_type}\x1f{name}"


def gather(document: Document, tagged: list[TaggedMention], gazetteer: list[Mention],
           own_kinds: dict[tuple[str, str], set[str]]) -> list[Candidate]:
    """Candidates from both passes, merged by known or normalised name and by "long form (ACRONYM)" definitions."""
    text = document.text
    bibliography = document.references
    candidates: dict[str, Candidate] = {}
    aliases: dict[str, str] = {}
    known: dict[str, list[str]] = {}  # normalised name -> keys of the gazetteer names that normalise to it

    def resolve(key: str) -> str:
        root = key
        while root in aliases:
            root = aliases[root]
        while key != root:  # path compression: a chain of definitions is walked once
            aliases[key], key = root, aliases[key]
        return root

    def add(key: str, surface: str, kind: str, offset: int) -> Candidate:
        candidate = candidates.setdefault(resolve(key), Candidate(resolve(key)))
        candidate.surfaces[surface] += 1
        candidate.kinds[kind] += 1
        candidate.offsets.append(offset)
        return candidate

    def known_key(name: str, label: str) -> str | None:
        """The gazetteer name an unknown spelling normalises to, preferring the tagger's type."""
        keys = known.get(normalise(name), [])
        typed = [key for key in keys if ANNOTATION_TYPE[key.split("\x1f", 1)[0]] == label]
        return (typed or keys or [None])[0]

    counted: dict[int, str] = {}
    for mention in gazetteer:
        key = gazetteer_key(mention.entity_type, mention.name)
        candidate = add(key, mention.name, ANNOTATION_TYPE[mention.entity_type], mention.start)
        candidate.gazetteer = (mention.entity_type, mention.name)
        candidate.gazetteer_kinds.add(mention.kind)
        counted[mention.start] = key
        if key not in known.setdefault(normalise(mention.name), []):
            known[normalise(mention.name)].append(key)
    for (entity_type, name), kinds in own_kinds.items():
        candidate = candidates.get(resolve(gazetteer_key(entity_type, name)))
        if candidate is not None:
            candidate.gazetteer_kinds |= kinds
    gazetteer_starts = sorted(counted)
    for mention in tagged:
        start, end = document.starts[mention.start], document.ends[mention.end - 1]
        if bibliography and bibliography[0] <= start < bibliography[1]:
            continue
        if bisect.bisect_left(gazetteer_starts, end) - bisect.bisect_left(gazetteer_starts, start) >= 2:
            continue  # a span over two known names ("SST-2 STS-B QNLI" in a table header) is a run, not a name
        inside_definition = _ACRONYM_INSIDE.match(text, start, end)
        if inside_definition and _spells(inside_definition.group(2), inside_definition.group(1)):
            end = inside_definition.end(1)
        surface = clean_surface(text[start:end])
        key = normalise(surface)
        if len(key) < 2 or key.isdigit():
            continue
        term = lookup_term(surface)
        if term is not None and term.entity_type is None:
            continue  # a phrase the gazetteer blocks ("mixed precision") is no name
        if term is not None:
            key = gazetteer_key(term.entity_type, term.name)
        else:
            key = known_key(surface, mention.label) or key
        if start in counted and (term is not None or resolve(key) == resolve(counted[start])):
            # The first pass counted this mention already: add only the tagger's view of it.
            candidate = candidates[resolve(counted[start])]
            candidate.kinds[mention.label] += 1
            candidate.probabilities.append(mention.probability)
            continue
        candidate = add(key, surface, mention.label, start)
        candidate.probabilities.append(mention.probability)
        definition = inside_definition or _ACRONYM_AFTER.match(text, end, end + 20)
        acronym = definition.group(definition.lastindex) if definition else ""
        if definition and _spells(acronym, surface):
            acronym_key = resolve(known_key(acronym, mention.label) or normalise(acronym))
            if acronym_key == candidate.key or len(normalise(acronym)) < 2:
                continue
            if acronym_key in candidates and candidates[acronym_key].gazetteer is not None:
                _merge(candidates, aliases, candidate.key, acronym_key)  # a known acronym keeps its name
            else:
                _merge(candidates, aliases, acronym_key, candidate.key)
                candidates[candidate.key].acronym = acronym
    return list(candidates.values())


def _spells(acronym: str, long_form: str) -> bool:
    """Whether the acronym's letters follow, in order, the initials of the long form's last words, the first
    letter on a word's initial ("image super-resolution (SR)", "Multi-Task Learning (MTL)"); in a mixed-case
    acronym only the capitals count ("Bi-Directional Attention Flow (BiDAF)", "FacePoseNet (FPN)")."""
    words = re.split(r"[\s\-]+", _CAMEL.sub(" ", long_form))
    initials = "".join(word[0] for word in words if word).lower()
    capitals = [c for c in acronym if c.isupper()]
    mixed = len(capitals) >= 2 and any(c.islower() for c in acronym)
    letters = [c.lower() for c in (capitals if mixed else acronym) if c.isalpha()]
    if len(letters) < 2:
        return False
    for first in range(len(initials)):
        if initials[first] != letters[0]:
            continue
        position = first + 1
        for letter in letters[1:]:
            position = initials.find(letter, position)
            if position < 0:
                break
            position += 1
        else:
            return True
    return False


def _merge(candidates: dict[str, Candidate], aliases: dict[str, str], source: str, target: str) -> None:
    """Fold candidate source into target (an acronym into its long form), remembering the alias."""
    aliases[source] = target
    if source not in candidates:
        return
    old, new = candidates.pop(source), candidates[target]
    new.acronym = new.acronym or old.acronym
    new.surfaces.update(old.surfaces)
    new.kinds.update(old.kinds)
    new.offsets.extend(old.offsets)
    new.probabilities.extend(old.probabilities)
    new.gazetteer_kinds |= old.gazetteer_kinds
    new.gazetteer = new.gazetteer or old.gazetteer


def features(
    document: Document, candidates: list[Candidate], priors: dict[str, dict[str, int]] | None = None,
    prior_documents: int = 1,
) -> list[dict[str, float]]:
    """Salience features of each candidate: how often, where, how it was found, and in what share of the training
    papers that name was a key entity (priors: annotation type -> normalised name -> papers, of prior_documents;
    a share, so priors counted on half the papers and on all of them mean the same)."""
    text, length = document.text, max(1, len(document.text))
    priors = priors or {}
    per_hundred = 100 / max(1, prior_documents)
    most = Counter()
    for candidate in candidates:
        most[candidate.annotation_type] = max(most[candidate.annotation_type], len(candidate.offsets))
    per_type = Counter()
    for candidate in candidates:
        per_type[candidate.annotation_type] += len(candidate.offsets)
    ranked: dict[str, list[Candidate]] = {}
    for candidate in sorted(candidates, key=lambda c: -len(c.offsets)):
        ranked.setdefault(candidate.annotation_type, []).append(candidate)
    rank = {id(c): index + 1 for group in ranked.values() for index, c in enumerate(group)}
    title = normalise(text[slice(*document.title)])
    rows = []
    for candidate in candidates:
        kind = candidate.annotation_type
        count = len(candidate.offsets)
        name = display_name(candidate)
        in_abstract = sum(inside(o, document.abstract) for o in candidate.offsets)
        read = candidate.offsets[:MAX_OFFSETS_READ]
        numbers = sum(1 for o in read if _NUMBER_NEAR.search(text, max(0, o - NUMBER_WINDOW), o + NUMBER_WINDOW))
        table = sum(1 for o in read if _on_table_row(text, o))
        ours = sum(1 for o in read if _OURS_BEFORE.search(text, max(0, o - OURS_WINDOW), o))
        row = {
            "bias": 1.0,
            "prior": math.log1p(per_hundred * priors.get(kind, {}).get(normalise(name), 0)),
            "relative": count / max(1, most[kind]),
            "ours": math.log1p(ours),
            "title_count": math.log1p(sum(inside(o, document.title) for o in candidate.offsets)),
            "log_mentions": math.log1p(count),
            "share": count / max(1, per_type[kind]),
            "inverse_rank": 1.0 / rank[id(candidate)],
            "first_position": min(candidate.offsets) / length,
            "title": float(any(inside(o, document.title) for o in candidate.offsets)),
            "abstract": float(in_abstract > 0),
            "log_abstract": math.log1p(in_abstract),
            "caption": float(any(inside(o, document.captions) for o in candidate.offsets)),
            "results": math.log1p(sum(inside(o, document.results) for o in candidate.offsets)),
            "numbers": math.log1p(numbers),
            "table": float(table > 0),
            "spread": len({int(10 * o / length) for o in candidate.offsets}) / 10,
            "proposed": float(bool(candidate.gazetteer_kinds & {"title", "proposed"})),
            "gazetteer": float(bool(candidate.gazetteer_kinds & {"canonical", "alias"})),
            "pattern": float("pattern" in candidate.gazetteer_kinds),
            "tagged": float(bool(candidate.probabilities)),
            "probability": _mean(candidate.probabilities),
            "generic": float(normalise(name) in _generic_keys()),
            "acronym": float(candidate.acronym is not None or (name.isupper() and len(name) >= 2)),
            "words": min(4, len(name.split())) / 4,
            "digits": float(any(c.isdigit() for c in name)),
            # The title names it in any of its spellings ("Stacked Generative Adversarial Networks" for SGAN).
            "title_name": float(any(len(k) >= 4 and k in title for k in map(normalise, candidate.surfaces))),
        }
        for feature in (
            "log_mentions", "inverse_rank", "abstract", "title", "share", "bias", "generic", "numbers", "prior",
            "relative", "ours", "probability", "table", "caption", "title_name",
        ):
            row[f"{kind}:{feature}"] = row[feature]
        rows.append(row)
    return rows


def _on_table_row(text: str, offset: int) -> bool:
    """Whether the mention's line (read at most LINE_WINDOW either side) reads like a table row: two or more
    numbers, one of them a decimal or a percentage ("VGG-16 90.97%", "BERT 84.1 90.9")."""
    start = text.rfind("\n", max(0, offset - LINE_WINDOW), offset) + 1 or max(0, offset - LINE_WINDOW)
    end = text.find("\n", offset, offset + LINE_WINDOW)
    line = text[start : end if end >= 0 else offset + LINE_WINDOW]
    return len(_NUMBER.findall(line)) >= 2 and _DECIMAL.search(line) is not None


def _mean(values: list[float]) -> float:
    """Mean, 0 for none."""
    return sum(values) / len(values) if values else 0.0


def display_name(candidate: Candidate) -> str:
    """The gazetteer's canonical name, else a defined acronym, else the most frequent spelling."""
    if candidate.gazetteer is not None:
        return candidate.gazetteer[1]
    if candidate.acronym is not None:
        return candidate.acronym
    return max(candidate.surfaces.items(), key=lambda item: (item[1], -len(item[0]), item[0]))[0]
