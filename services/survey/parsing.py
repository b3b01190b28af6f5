"""Reading a patient's SMS reply: opt-out keywords, red-flag symptoms, common effects and
numbers, in one pass over the whole message (DESIGN.md, "Clinical rules" and
"Understanding replies, failing toward safety").

A small clinical reader, pure functions over text: the words it knows are concepts in
``vocabulary.yaml`` (lay phrasings per reason code, English and Spanish), matched after
normalisation (case, accents, punctuation, emoji, stretched letters) with bounded typo
tolerance; the context rules (negation and its scope over lists, reports about someone
else, questions, hedges) are NegEx/ConText-style rules whose words also live in the data.
Every decision comes with the matched span and the rule (:class:`Finding`), so a
clinician sees why a reply was escalated. When in doubt the rules lean towards
escalation: a red flag read wrongly costs a clinician a phone call, a red flag missed
costs far more.

Hostile input is bounded: the reader looks at the first ``MAX_CHARS`` characters of a
message only, every rule is a linear scan over a bounded window, and no input raises.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz.distance import OSA, Indel

Question = Literal["q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"]
Keyword = Literal["stop", "start", "help"]
RedFlagCode = Literal["dysphagia", "dyspnea", "dysarthria", "vision", "generalized_weakness"]
EffectReason = Literal["neck_pain", "ptosis", "injection_site_pain", "headache_worse", "muscle_weakness"]
Severity = Literal["mild", "severe"]
Decision = Literal["reported", "negated", "someone_else", "question", "answer"]

VOCABULARY_PATH = Path(__file__).with_name("vocabulary.yaml")
MAX_DAYS = 28
# Twilio concatenates at most 10 segments (1,600 characters); anything longer is read up to there.
MAX_CHARS = 1600
RED_FLAG_CODES: tuple[RedFlagCode, ...] = get_args(RedFlagCode)


# --- what the reader returns --------------------------------------------------------------


class Effect(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: int = Field(ge=1, le=5)
    reason: str
    severity: Severity | None = None


class Finding(BaseModel):
    """Why the reader decided something: the words it matched and the rule that read them."""

    model_config = ConfigDict(frozen=True)

    code: str  # a red-flag or effect reason, "yes", "no" or "number"
    span: str  # the matched words, normalised
    rule: str  # the lexicon entry or context rule that decided
    decision: Decision = "reported"

    def describe(self) -> str:
        return f"'{self.span}' -> {self.code} ({self.decision}: {self.rule})"


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    keyword: Keyword | None = None
    red_flags: tuple[str, ...] = ()
    yes_no: bool | None = None
    effects: tuple[Effect, ...] | None = None
    number: int | None = Field(None, ge=0, le=MAX_DAYS)
    medication_days: int | None = Field(None, ge=0, le=MAX_DAYS)  # Q3b answered along with Q3a
    understood: bool = False
    findings: tuple[Finding, ...] = ()

    def without_findings(self) -> Reply:
        return self.model_copy(update={"findings": ()})


# --- the vocabulary file ------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Words = Annotated[tuple[str, ...], Field(min_length=1)]


class MatchingRules(_Strict):
    before_window: int = Field(ge=1, le=10)
    after_window: int = Field(ge=1, le=10)
    max_gap: int = Field(ge=0, le=5)
    fuzzy_min_length: int = Field(ge=4)
    fuzzy_long_length: int = Field(ge=6)  # words this long may carry two slips


class KeywordWords(_Strict):
    stop: Words
    start: Words
    help: Words


class AnswerWords(_Strict):
    yes: Words
    no: Words
    hedged_yes: Words
    no_phrases: Words
    denials: Words
    openers: Words
    unsure: tuple[str, ...] = ()
    reach: int = Field(ge=1, le=6)


class SymptomPhrases(_Strict):
    phrases: Words
    not_symptom: tuple[str, ...] = ()


class EffectPhrases(_Strict):
    reason: EffectReason
    phrases: Words


class NetSites(_Strict):
    sites: Words
    trouble: tuple[str, ...] = ()


class SafetyNet(_Strict):
    trouble: Words
    sites: dict[RedFlagCode, NetSites]
    whole_body: Words


class NegationWords(_Strict):
    cues: Words
    ability: Words
    inability: Words
    reassurance: Words
    trouble: Words
    unreassuring_before: tuple[str, ...] = ()
    unreassuring_after: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    compared: tuple[str, ...] = ()


class ContextWords(_Strict):
    self: Words
    others: Words
    question_openers: Words
    hypothetical: Words


class ClauseWords(_Strict):
    breaks: Words
    joiners: Words
    fillers: Words
    predicates: Words


class NumberWords(_Strict):
    values: dict[str, int]
    compound_links: tuple[str, ...] = ()
    nothing: Words
    unsure: tuple[str, ...] = ()
    every_day: tuple[str, ...] = ()
    not_quite: tuple[str, ...] = ()
    phrases: dict[str, int] = Field(default_factory=dict)
    times: Words
    per: Words
    every: Words
    week: Words
    ordinals: dict[str, int]
    articles: tuple[str, ...] = ()
    determiners: tuple[str, ...] = ()
    denominators: tuple[str, ...] = ()
    period_units: Words
    day_units: Words
    medication: Words


class SeverityWords(_Strict):
    reach: int = Field(ge=1, le=5)
    mild: Words
    severe: Words
    every_one: tuple[str, ...] = ()
    mild_phrases: tuple[str, ...] = ()
    severe_phrases: tuple[str, ...] = ()


class Vocabulary(_Strict):
    matching: MatchingRules
    keywords: KeywordWords
    answers: AnswerWords
    red_flags: dict[RedFlagCode, SymptomPhrases]
    effects: dict[int, EffectPhrases]
    safety_net: SafetyNet
    negation: NegationWords
    context: ContextWords
    clauses: ClauseWords
    numbers: NumberWords
    severity: SeverityWords

    @model_validator(mode="after")
    def _covers_every_code(self) -> Vocabulary:
        if missing := set(RED_FLAG_CODES) - set(self.red_flags):
            raise ValueError(f"red_flags lacks phrases for {sorted(missing)}")
        if set(self.effects) != {1, 2, 3, 4, 5}:
            raise ValueError("effects must map exactly the numbers 1 to 5")
        return self


@functools.cache
def load_vocabulary(path: Path = VOCABULARY_PATH) -> Vocabulary:
    return Vocabulary.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


# --- normalised text and tokens -----------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
# Every alternative is a single character class with a + or nothing: linear, no backtracking.
_TOKEN = re.compile(
    r"(?P<number>[0-9]+)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*|[&/+])"
    r"|(?P<emoji>[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff])"
    r"|(?P<stop>[.;!\n]+)"
    r"|(?P<question>[?]+)"
    r"|(?P<opening>[\u00bf])"
    r"|(?P<comma>[,:\-()]+)"
)
_REPEATS = re.compile(r"(.)\1+")
_LONG_REPEATS = re.compile(r"(.)\1{2,}")

TokenKind = Literal["number", "word", "emoji", "stop", "question", "opening", "comma"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str


def normalise(text: str) -> str:
    """Case-, width- and accent-insensitive text: "SÍ" and "si" read the same; "sooo" is
    "soo" (a letter said three times or more is said twice)."""
    folded = unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold().translate(_APOSTROPHES)
    decomposed = unicodedata.normalize("NFD", _SKIN_TONES.sub("", folded))
    plain = "".join(char for char in decomposed if not unicodedata.category(char).startswith("M"))
    return _LONG_REPEATS.sub(r"\1\1", plain[:MAX_CHARS])


def tokenise(text: str) -> list[Token]:
    return [Token(match.lastgroup, match.group()) for match in _TOKEN.finditer(normalise(text))]  # type: ignore[arg-type]


def _words(tokens: Sequence[Token]) -> list[str]:
    return [token.text for token in tokens if token.kind in ("word", "number")]


def _squeezed(word: str) -> str:
    """ "yesss" -> "yes", "nooo" -> "no": patients stretch their short answers."""
    return _REPEATS.sub(r"\1", word)


def _phrase_words(phrase: str) -> tuple[str, ...]:
    return tuple(_words(tokenise(phrase)))


# --- lexicon phrases, compiled once -------------------------------------------------------

GAP = "..."


@dataclass(frozen=True)
class Alternative:
    text: str
    is_stem: bool


Slot = tuple[Alternative, ...] | None  # None is a gap of up to max_gap words


@dataclass(frozen=True)
class Phrase:
    code: str  # a red-flag code or an effect reason
    kind: Literal["red_flag", "effect"]
    slots: tuple[Slot, ...]
    source: str  # the entry as written in the vocabulary
    net: bool = False  # a safety-net pairing (a site and a trouble word), not a lexicon phrase

    @property
    def heads(self) -> tuple[str, ...]:
        """The first two letters a matching word starts with (typos spare the first two)."""
        head = self.slots[0]
        return tuple({alt.text[:2] for alt in head}) if head else ()


def _compile_phrase(code: str, kind: Literal["red_flag", "effect"], phrase: str) -> Phrase:
    slots = tuple(None if part == GAP else _compile_slot(normalise(part)) for part in phrase.split())
    if not slots or slots[0] is None or slots[-1] is None:
        raise ValueError(f"phrase {phrase!r} must start and end with a word")
    return Phrase(code, kind, slots, phrase)


def _compile_slot(part: str) -> Slot:
    return tuple(Alternative(alt.rstrip("*"), alt.endswith("*")) for alt in part.split("|"))


@dataclass(frozen=True)
class Lexicon:
    """The vocabulary normalised the way replies are, ready for look-ups."""

    rules: MatchingRules
    keywords: dict[tuple[str, ...], Keyword]
    yes: frozenset[str]
    no: frozenset[str]
    hedged_yes: tuple[tuple[str, ...], ...]
    no_phrases: tuple[tuple[str, ...], ...]
    denials: tuple[tuple[str, ...], ...]
    openers: frozenset[str]
    unsure_openers: tuple[tuple[str, ...], ...]
    answer_reach: int
    by_head: dict[str, tuple[Phrase, ...]]
    sites: tuple[Alternative, ...]
    whole_body: frozenset[str]
    not_symptom: tuple[Phrase, ...]
    effect_reasons: dict[int, EffectReason]
    cues: frozenset[str]
    ability: frozenset[str]
    inability: frozenset[str]
    reassurance: frozenset[str]
    trouble: frozenset[str]
    unreassuring_before: frozenset[str]
    unreassuring_after: frozenset[str]
    never: frozenset[str]
    compared: tuple[tuple[str, ...], ...]
    self_words: frozenset[str]
    others: frozenset[str]
    question_openers: frozenset[str]
    hypothetical: frozenset[str]
    breaks: frozenset[str]
    joiners: frozenset[str]
    fillers: frozenset[str]
    predicates: frozenset[str]
    number_values: dict[str, int]
    compound_links: frozenset[str]
    nothing: frozenset[str]
    unsure: frozenset[str]
    every_day: tuple[tuple[str, ...], ...]
    not_quite: frozenset[str]
    number_phrases: tuple[tuple[tuple[str, ...], int], ...]
    times: frozenset[str]
    per: frozenset[str]
    every: frozenset[str]
    week: frozenset[str]
    ordinals: dict[str, int]
    articles: frozenset[str]
    determiners: frozenset[str]
    denominators: frozenset[str]
    period_units: frozenset[str]
    day_units: frozenset[str]
    medication: frozenset[str]
    mild: frozenset[str]
    severe: frozenset[str]
    mild_phrases: tuple[tuple[str, ...], ...]
    severe_phrases: tuple[tuple[str, ...], ...]
    severity_reach: int
    every_one: frozenset[str]


def _normalised(words: Sequence[str]) -> frozenset[str]:
    return frozenset(normalise(word) for word in words)


def _squeezed_set(words: Sequence[str]) -> frozenset[str]:
    return frozenset(_squeezed(word) for word in _normalised(words))


def _phrases(items: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(sorted({_phrase_words(item) for item in items if _phrase_words(item)}, key=len, reverse=True))


@functools.cache
def lexicon() -> Lexicon:
    vocab = load_vocabulary()
    numbers = vocab.numbers
    return Lexicon(
        rules=vocab.matching,
        keywords=_keyword_index(vocab.keywords),
        yes=_squeezed_set(vocab.answers.yes),
        no=_squeezed_set(vocab.answers.no),
        hedged_yes=_phrases(vocab.answers.hedged_yes),
        no_phrases=_phrases(vocab.answers.no_phrases),
        denials=_phrases(vocab.answers.denials),
        openers=_squeezed_set(vocab.answers.openers),
        unsure_openers=_phrases(vocab.answers.unsure),
        answer_reach=vocab.answers.reach,
        by_head=_index_by_head(_all_phrases(vocab)),
        sites=tuple(alt for entry in vocab.safety_net.sites.values() for alt in _compile_slot(normalise("|".join(entry.sites))) or ()),
        whole_body=_normalised(vocab.safety_net.whole_body),
        not_symptom=tuple(_compile_phrase(code, "red_flag", phrase)
                          for code in RED_FLAG_CODES for phrase in vocab.red_flags[code].not_symptom),
        effect_reasons={code: entry.reason for code, entry in vocab.effects.items()},
        cues=_normalised(vocab.negation.cues),
        ability=_normalised(vocab.negation.ability),
        inability=_normalised(vocab.negation.inability),
        reassurance=_normalised(vocab.negation.reassurance),
        trouble=_normalised(vocab.negation.trouble),
        unreassuring_before=_normalised(vocab.negation.unreassuring_before),
        unreassuring_after=_normalised(vocab.negation.unreassuring_after),
        never=_normalised(vocab.negation.never),
        compared=_phrases(vocab.negation.compared),
        self_words=_normalised(vocab.context.self),
        others=_normalised(vocab.context.others),
        question_openers=_normalised(vocab.context.question_openers),
        hypothetical=_normalised(vocab.context.hypothetical),
        breaks=_normalised(vocab.clauses.breaks),
        joiners=_normalised(vocab.clauses.joiners),
        fillers=_normalised(vocab.clauses.fillers),
        predicates=_normalised(vocab.clauses.predicates),
        number_values={normalise(word): value for word, value in numbers.values.items()},
        compound_links=_normalised(numbers.compound_links),
        nothing=_normalised(numbers.nothing),
        unsure=_normalised(numbers.unsure),
        every_day=_phrases(numbers.every_day),
        not_quite=_normalised(numbers.not_quite),
        number_phrases=tuple(sorted(((_phrase_words(p), v) for p, v in numbers.phrases.items()),
                                    key=lambda item: len(item[0]), reverse=True)),
        times=_normalised(numbers.times),
        per=_normalised(numbers.per),
        every=_normalised(numbers.every),
        week=_normalised(numbers.week),
        ordinals={normalise(word): value for word, value in numbers.ordinals.items()},
        articles=_normalised(numbers.articles),
        determiners=_normalised(numbers.determiners),
        denominators=_normalised(numbers.denominators),
        period_units=_normalised(numbers.period_units),
        day_units=_normalised(numbers.day_units),
        medication=_normalised(numbers.medication),
        mild=_normalised(vocab.severity.mild),
        severe=_normalised(vocab.severity.severe),
        mild_phrases=_phrases(vocab.severity.mild_phrases),
        severe_phrases=_phrases(vocab.severity.severe_phrases),
        severity_reach=vocab.severity.reach,
        every_one=_normalised(vocab.severity.every_one),
    )


def _keyword_index(keywords: KeywordWords) -> dict[tuple[str, ...], Keyword]:
    kinds: tuple[Keyword, ...] = get_args(Keyword)
    return {_phrase_words(word): kind for kind in kinds for word in getattr(keywords, kind)}


def _all_phrases(vocab: Vocabulary) -> list[Phrase]:
    red_flags = [_compile_phrase(code, "red_flag", phrase)
                 for code in RED_FLAG_CODES for phrase in vocab.red_flags[code].phrases]
    effects = [_compile_phrase(entry.reason, "effect", phrase)
               for entry in vocab.effects.values() for phrase in entry.phrases]
    return red_flags + effects + _safety_net_phrases(vocab.safety_net)


def _safety_net_phrases(net: SafetyNet) -> list[Phrase]:
    """Each red flag's sites paired with the trouble words, in either order."""
    phrases = []
    for code, entry in net.sites.items():
        sites, trouble = "|".join(entry.sites), "|".join((*net.trouble, *entry.trouble))
        for phrase in (f"{sites} {GAP} {trouble}", f"{trouble} {GAP} {sites}"):
            compiled = _compile_phrase(code, "red_flag", phrase)
            phrases.append(Phrase(code, "red_flag", compiled.slots, f"safety net: a {code} site with a trouble word", net=True))
    return phrases


def _index_by_head(phrases: Sequence[Phrase]) -> dict[str, tuple[Phrase, ...]]:
    index: dict[str, list[Phrase]] = {}
    for phrase in phrases:
        for head in phrase.heads:
            index.setdefault(head, []).append(phrase)
    return {head: tuple(found) for head, found in index.items()}


# --- keywords -----------------------------------------------------------------------------


def match_keyword(text: str) -> Keyword | None:
    """The keyword the whole message is ("STOP", " opt-out! ", "Ayuda"), if it is one."""
    return lexicon().keywords.get(tuple(_words(tokenise(text))))


# --- clauses: the pieces negation and context are read in ---------------------------------


@dataclass(frozen=True)
class Mention:
    phrase: Phrase
    start: int
    end: int

    @property
    def code(self) -> str:
        return self.phrase.code

    def covers(self, other: Mention) -> bool:
        return self.start <= other.start and other.end <= self.end and (self.start, self.end) != (other.start, other.end)


def _sentences(tokens: Sequence[Token], lex: Lexicon) -> Iterator[list[list[str]]]:
    """Pieces no negation reaches across, each split further at its commas (and at the
    "?" and ":" of "Swallowing? No." and "Breathing: fine"). A question about a symptom
    ("is blurry vision a side effect?") is dropped: it is not a report."""
    segments: list[list[str]] = [[]]
    opened = False  # a Spanish "¿" opened the question
    for token in tokens:
        if token.kind == "opening":
            opened = True
        elif token.kind == "stop" or token.text in lex.breaks:
            yield segments
            segments, opened = [[]], False
        elif token.kind == "question":
            if _is_question(segments[-1], lex, opened):
                segments[-1] = []
            segments.append([])
            opened = False
        elif token.kind == "comma":
            segments.append([])
        elif token.kind in ("word", "number"):
            segments[-1].append(token.text)
    yield segments


def _is_question(words: Sequence[str], lex: Lexicon, opened: bool = False) -> bool:
    """ "can this cause trouble swallowing?" asks; "is it normal that I can't swallow?"
    reports (the patient speaks of themself, not of an "if")."""
    if not words or not (opened or words[0] in lex.question_openers):
        return False
    about_me = any(word in lex.self_words for word in words)
    return not about_me or any(word in lex.hypothetical for word in words)


def _clauses(tokens: Sequence[Token], lex: Lexicon) -> Iterator[tuple[str, ...]]:
    for segments in _sentences(tokens, lex):
        yield from _join_list_segments([tuple(s) for s in segments if s], lex)


def _join_list_segments(segments: list[tuple[str, ...]], lex: Lexicon) -> Iterator[tuple[str, ...]]:
    """ "never had any choking, shortness of breath or blurry eyes": a comma-separated
    list of symptoms stays in the clause of its negation, and "Swallowing? No" reads as
    "swallowing no"; any other comma starts a new clause."""
    clause: tuple[str, ...] = ()
    previous: tuple[str, ...] = ()
    for segment in segments:
        if clause and _continues(previous, segment, lex):
            clause = clause + segment
        else:
            if clause:
                yield clause
            clause = segment
        previous = segment
    if clause:
        yield clause


def _continues(previous: tuple[str, ...], segment: tuple[str, ...], lex: Lexicon) -> bool:
    if all(word in lex.mild or word in lex.severe or word in lex.fillers for word in segment):
        return True  # "sore injection sites, mild"
    if _is_symptom_list(segment, lex):
        return _ends_with_symptom(previous, lex)
    return _is_symptom_list(previous, lex) and _is_verdict(segment, lex)


def _is_verdict(segment: Sequence[str], lex: Lexicon) -> bool:
    """ "No", "all fine", "no problems": an answer about the symptoms just named."""
    verdicts = lex.cues | lex.reassurance | lex.trouble | lex.no
    return any(word in verdicts for word in segment[: lex.rules.after_window])


def _ends_with_symptom(words: tuple[str, ...], lex: Lexicon) -> bool:
    covered = _covered(_mentions(words))
    last = len(words) - 1
    while last >= 0 and words[last] in lex.fillers and last not in covered:
        last -= 1
    return last in covered or (last >= 0 and _is_site(words[last], lex))


def _is_symptom_list(words: tuple[str, ...], lex: Lexicon) -> bool:
    if any(word in lex.predicates for word in words):
        return False  # "speaking is hard" is a statement of its own, not an item of a list
    covered = _covered(_mentions(words))
    return bool(covered) and all(i in covered or w in lex.joiners or w in lex.fillers or _is_site(w, lex)
                                 for i, w in enumerate(words))


def _is_site(word: str, lex: Lexicon) -> bool:
    """A body function or site named as a list item ("nothing with my eyes, voice or breathing")."""
    return _site_word(word, lex.sites)


@functools.lru_cache(maxsize=8192)
def _site_word(word: str, sites: tuple[Alternative, ...]) -> bool:
    return any(word == alt.text or (alt.is_stem and word.startswith(alt.text)) for alt in sites)


def _covered(mentions: Sequence[Mention]) -> set[int]:
    return {i for mention in mentions for i in range(mention.start, mention.end)}


# --- matching lexicon phrases -------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _mentions(words: tuple[str, ...]) -> tuple[Mention, ...]:
    """Every lexicon phrase in ``words``; a phrase inside a longer one of the same kind
    ("vision" inside "double vision") gives way to it."""
    lex = lexicon()
    found = [
        Mention(phrase, start, end)
        for start, word in enumerate(words)
        for phrase in lex.by_head.get(word[:2], ())
        if (end := _match_at(phrase.slots, words, start, lex.rules)) is not None
        and not (phrase.kind == "red_flag" and _is_not_symptom(phrase.code, words, start, lex))
    ]
    first: dict[tuple[str, int, int], Mention] = {}
    for m in found:
        first.setdefault((m.code, m.start, m.end), m)  # a lexicon phrase before the safety net's pairing
    unique = list(first.values())
    # only overlapping mentions can give way to each other: compare neighbours, not all pairs
    by_start: dict[int, list[Mention]] = {}
    for m in unique:
        by_start.setdefault(m.start, []).append(m)
    reach = max((m.end - m.start for m in unique), default=0)
    return tuple(m for m in unique if not any(
        _gives_way(m, o) for start in range(max(0, m.start - reach), m.end) for o in by_start.get(start, ())))


def _gives_way(mention: Mention, other: Mention) -> bool:
    """ "vision" inside "double vision" gives way to it; a red flag inside a common effect
    ("feels weak" inside "my face feels weak") gives way to the effect."""
    inside = other.start <= mention.start and mention.end <= other.end
    if other.phrase.net != mention.phrase.net:
        # the safety net only reaches what no lexicon phrase read: it never displaces one
        overlap = mention.start < other.end and other.start < mention.end
        return mention.phrase.net and overlap
    if mention.phrase.kind == other.phrase.kind:
        # "vision" in "double vision", "ahog*" heading "ahogo cuando tomo agua", "got weak"
        # ending "voice got weak"; not the "tragar" inside "me cuesta tragar y hablar", a
        # symptom of its own
        shares_an_end = mention.start == other.start or mention.end == other.end
        return other.covers(mention) and (mention.code == other.code or shares_an_end)
    return inside and mention.phrase.kind == "red_flag" and (other.start, other.end) != (mention.start, mention.end)


def _is_not_symptom(code: str, words: Sequence[str], start: int, lex: Lexicon) -> bool:
    """ "can I speak to the nurse" names a verb of the symptom but is not one."""
    return any(
        phrase.code == code and _match_at(phrase.slots, words, start, lex.rules) is not None
        for phrase in lex.not_symptom
    )


def _match_at(slots: Sequence[Slot], words: Sequence[str], start: int, rules: MatchingRules) -> int | None:
    """The end of ``slots`` matched from ``words[start]``, or None."""
    if not slots:
        return start
    head, rest = slots[0], slots[1:]
    if head is None:
        return _match_after_gap(rest, words, start, rules)
    if start < len(words) and _slot_fits(words[start], head, rules):
        return _match_at(rest, words, start + 1, rules)
    return None


_SLOT_FITS: dict[tuple[str, int], bool] = {}


def _slot_fits(word: str, slot: tuple[Alternative, ...], rules: MatchingRules) -> bool:
    """Whether ``word`` fits one of the slot's alternatives; remembered per word and slot
    (the slots live as long as the lexicon), so a long reply pays each look-up once."""
    key = (word, id(slot))
    if (known := _SLOT_FITS.get(key)) is None:
        if len(_SLOT_FITS) > 200_000:
            _SLOT_FITS.clear()
        known = _SLOT_FITS[key] = any(_fits(word, alt.text, alt.is_stem, rules) for alt in slot)
    return known


def _match_after_gap(slots: Sequence[Slot], words: Sequence[str], start: int, rules: MatchingRules) -> int | None:
    for skipped in range(rules.max_gap + 1):
        if (end := _match_at(slots, words, start + skipped, rules)) is not None:
            return end
    return None


@functools.lru_cache(maxsize=65536)
def _fits(word: str, text: str, is_stem: bool, rules: MatchingRules) -> bool:
    """Exact, a stem's prefix, or a slip, never in the first two letters nor in short
    function words: an entry of ``fuzzy_min_length`` letters tolerates a thumb's slip (two
    letters swapped, one dropped or doubled: "cabmio", "swalow"); a longer one any single
    edit ("brwathing"), two from ``fuzzy_long_length`` letters. No substitution in a short
    entry: "traga*" must not reach "trabajo", nor "choke" "chose"."""
    if word == text or (is_stem and word.startswith(text)):
        return True
    if len(text) < rules.fuzzy_min_length or len(word) < rules.fuzzy_min_length - 1 or word[:2] != text[:2]:
        return False
    allowed = 2 if len(text) >= rules.fuzzy_long_length else 1
    close = _thumb_slip if len(text) <= rules.fuzzy_min_length else functools.partial(_edits_within, allowed=allowed)
    if not is_stem:
        return close(word, text)
    return any(close(word[:n], text) for n in range(len(text) - allowed, min(len(text) + allowed, len(word)) + 1))


def _edits_within(a: str, b: str, allowed: int) -> bool:
    return OSA.distance(a, b, score_cutoff=allowed) <= allowed


def _thumb_slip(a: str, b: str) -> bool:
    if Indel.distance(a, b, score_cutoff=1) <= 1:
        return True  # one letter dropped or doubled
    if len(a) != len(b):
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return len(differ) == 2 and differ[1] == differ[0] + 1 and a[differ[0]] == b[differ[1]] and a[differ[1]] == b[differ[0]]


# --- context: is the patient reporting it? ------------------------------------------------


def _read_mentions(clause: tuple[str, ...], lex: Lexicon) -> list[tuple[Mention, Decision, str]]:
    mentions = _mentions(clause)
    covered = _covered(mentions)
    if any(m.code == "muscle_weakness" for m in mentions) and not set(clause) & lex.whole_body:
        mentions = tuple(m for m in mentions if m.code != "generalized_weakness")  # "my forehead feels heavy and weak"
    return [(mention, *_decide(clause, mention, covered, lex)) for mention in mentions]


def _decide(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> tuple[Decision, str]:
    """Whether the patient says they have it: "can't swallow", "no puedo tragar", "pills
    won't go down" report it; "no trouble swallowing", "swallowing is fine" do not;
    "my husband can't swallow" is someone else's."""
    if (other := _someone_else(words, mention, lex)) is not None:
        return "someone_else", f"about someone else ('{other}')"
    inside = set(words[mention.start : mention.end])
    if mention.phrase.net and (cue := _cue_between(words, mention, lex)) is not None:
        return "negated", f"{mention.phrase.source}, negated by '{cue}'"
    if inside & (lex.cues | lex.inability) and not _negated_from_outside(words, mention, lex):
        return "reported", f"lexicon '{mention.phrase.source}' (its own negation)"
    before = _words_before(words, mention, covered, lex)
    signals = set(before) | inside
    if signals & lex.inability or (signals & lex.cues and signals & lex.ability):
        return "reported", f"lexicon '{mention.phrase.source}', inability"
    cue = next((w for w in before if w in lex.cues), None)
    if cue in lex.never and (pseudo := _find_phrase(tuple(words), lex.compared)) is not None:
        return "reported", f"lexicon '{mention.phrase.source}', never ... '{' '.join(pseudo)}' compares, it does not deny"
    reassured = _reassured_after(words, mention, covered, lex)
    if cue is not None and not reassured:
        return "negated", f"negated by '{cue}'"
    if cue is None and reassured:
        return "negated", "reassured after ('fine', 'no problem')"
    return "reported", f"lexicon '{mention.phrase.source}'"


def _cue_between(words: Sequence[str], mention: Mention, lex: Lexicon) -> str | None:
    """ "throat is fine, no trouble", "tragar no me cuesta": a negation between the site and
    its trouble word denies it, unless it negates an ability ("tragar, no puedo")."""
    between = words[mention.start + 1 : mention.end - 1]
    if set(between) & (lex.ability | lex.inability):
        return None
    return next((w for w in between if w in lex.cues), None)


def _negated_from_outside(words: Sequence[str], mention: Mention, lex: Lexicon) -> bool:
    """ "I never had no strength" is rare; "never had any trouble speaking" is common: a
    phrase with its own negation is still governed by a cue just before it."""
    return mention.start > 0 and any(w in lex.cues for w in words[max(0, mention.start - 3) : mention.start])


def _someone_else(words: Sequence[str], mention: Mention, lex: Lexicon) -> str | None:
    """The nearest person before the symptom in its clause: "my mom has blurry vision"; a
    first-person verb in the symptom itself keeps it the patient's ("mi esposo dice que hablo raro")."""
    if any(word in lex.self_words for word in words[mention.start : mention.end]):
        return None
    for word in reversed(words[: mention.start]):
        if word in lex.self_words:
            return None
        if word in lex.others or word.removesuffix("'s") in lex.others:  # "my husband's legs"
            return word
    return None


def _words_before(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> list[str]:
    """The last few words before a symptom, passing over the other symptoms of a list."""
    picked: list[str] = []
    for i in range(mention.start - 1, -1, -1):
        word = words[i]
        if i in covered or (word in lex.fillers and word not in lex.cues) or _is_site(word, lex):
            continue  # another symptom of the list, or a body function named in it ("my eyes, voice or breathing")
        if word in lex.joiners and word not in lex.cues:
            if _symptom_before(words, i, covered, lex):
                continue  # "no choking or any blurry eyes": the list goes on
            break  # "no fever and my speech is slurred": a new statement
        picked.append(word)
        if len(picked) == lex.rules.before_window:
            break
    return picked


def _symptom_before(words: Sequence[str], joiner: int, covered: set[int], lex: Lexicon) -> bool:
    i = joiner - 1
    while i >= 0 and words[i] in lex.fillers and i not in covered:
        i -= 1
    return i in covered or (i >= 0 and _is_site(words[i], lex))


def _reassured_after(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> bool:
    """ "swallowing is fine", "breathing no problem"; not "vision is not good" nor
    "breathing is not easy"."""
    negated = False
    seen: list[str] = []
    for i in range(mention.end, len(words)):
        if i in covered or words[i] in lex.joiners:
            continue
        word = words[i]
        seen.append(word)
        if len(seen) > lex.rules.after_window:
            return False
        if word in lex.cues:
            negated = True
        elif word in lex.reassurance:
            return not negated and not _undone(words, i, lex)
        elif word in lex.trouble:
            return negated
    return _ends_with_a_bare_no(words, mention)


def _undone(words: Sequence[str], i: int, lex: Lexicon) -> bool:
    """ "worse than normal", "winded so easy", "bien feo": the reassuring word reassures nothing."""
    before = words[i - 1] if i > 0 else None
    after = words[i + 1] if i + 1 < len(words) else None
    return before in lex.unreassuring_before or after in lex.unreassuring_after


def _ends_with_a_bare_no(words: Sequence[str], mention: Mention) -> bool:
    """ "Swallowing: no" answers no; in "no trouble speaking and no hoarseness" the second
    "no" belongs to the next symptom, and "breathing is not" leaves the symptom standing."""
    lex = lexicon()
    after = [w for w in words[mention.end :] if w not in lex.joiners and w not in lex.fillers]
    return 0 < len(after) <= 2 and after[-1] in lex.no


# --- red flags and effects in the whole reply ---------------------------------------------


@dataclass(frozen=True)
class Reading:
    """Every lexicon mention of a reply with the context decision on it."""

    items: tuple[tuple[Mention, Decision, str, tuple[str, ...]], ...]  # mention, decision, rule, clause

    def red_flags(self) -> tuple[str, ...]:
        found = {m.code for m, decision, _, _ in self.items if m.phrase.kind == "red_flag" and decision == "reported"}
        return tuple(code for code in RED_FLAG_CODES if code in found)

    def denied_anything(self) -> bool:
        return any(decision == "negated" for _, decision, _, _ in self.items)

    def reported_effects(self) -> list[tuple[Mention, tuple[str, ...]]]:
        return [(m, clause) for m, decision, _, clause in self.items if m.phrase.kind == "effect" and decision == "reported"]

    def findings(self) -> tuple[Finding, ...]:
        return tuple(Finding(code=m.code, span=" ".join(clause[m.start : m.end]), rule=rule, decision=decision)
                     for m, decision, rule, clause in self.items)


def read_mentions(tokens: Sequence[Token], lex: Lexicon | None = None) -> Reading:
    lex = lex or lexicon()
    return Reading(tuple(
        (mention, decision, rule, clause)
        for clause in _clauses(tokens, lex)
        for mention, decision, rule in _read_mentions(clause, lex)
    ))


def detect_red_flags(text: str) -> tuple[str, ...]:
    """The red-flag codes a patient reports anywhere in ``text``, context respected."""
    return read_mentions(tokenise(text)).red_flags()


def explain(text: str) -> tuple[Finding, ...]:
    """The reasons the reader gives for the red flags and effects it read in ``text``."""
    return read_mentions(tokenise(text)).findings()


# --- yes or no ----------------------------------------------------------------------------


def _read_yes_no(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> tuple[bool | None, Finding | None]:
    """The opening words decide (after a greeting or an "hmm"); then a hedge ("probably",
    "puede ser") is a yes; then "all good" or a denied symptom is a no. Emoji count only
    when there are no words ("No 👍" is a no)."""
    opening = [t for t in tokens if t.kind in ("word", "emoji", "number")]
    words = [t.text for t in opening if t.kind != "emoji"]
    while words and _squeezed(words[0]) in lex.openers:
        words = words[1:]
    unsure = next((u for u in lex.unsure_openers if tuple(words[: len(u)]) == u), None)
    if unsure is not None:
        words = words[len(unsure):]  # "no sé, puede": the "no" of "no sé" is not an answer
    said = _polarity([_squeezed(word) for word in words[:2]], lex)
    if said is not None:
        return said, Finding(code="yes" if said else "no", span=" ".join(words[:2]), rule="opening words", decision="answer")
    head = tuple(words[: lex.answer_reach + 2])
    if (denial := _find_phrase(head, lex.denials)) is not None:
        return False, Finding(code="no", span=" ".join(denial), rule="a denial", decision="answer")
    asks = any(t.kind == "question" for t in tokens) and bool(words) and words[0] in lex.question_openers
    if not asks and (hedge := _find_phrase(head, lex.hedged_yes)) is not None:
        return True, Finding(code="yes", span=" ".join(hedge), rule="a hedged yes counts as yes", decision="answer")
    if (denial := _find_phrase(tuple(words), lex.no_phrases)) is not None:
        return False, Finding(code="no", span=" ".join(denial), rule="a no in other words", decision="answer")
    if reading.denied_anything() and not words[:1] == ["yes"]:
        return False, Finding(code="no", span=" ".join(words[:6]), rule="every symptom named is denied", decision="answer")
    said = _polarity([t.text for t in opening if t.kind == "emoji"], lex) if not words else None
    if said is None:
        return None, None
    return said, Finding(code="yes" if said else "no", span="emoji", rule="emoji answer", decision="answer")


def _polarity(words: Sequence[str], lex: Lexicon) -> bool | None:
    said_yes = any(word in lex.yes for word in words)
    said_no = any(word in lex.no for word in words)
    return None if said_yes == said_no else said_yes


def _find_phrase(words: tuple[str, ...], phrases: Sequence[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The first of ``phrases`` (longest first) found in ``words``, bounded: phrases are short."""
    for phrase in phrases:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if words[i : i + n] == phrase:
                return phrase
    return None


# --- numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberMention:
    position: int  # of the number's last word
    value: int


def _numbers_in(words: Sequence[str], lex: Lexicon, durations: frozenset[str]) -> list[NumberMention]:
    """Every number said in digits or words, except durations ("for 3 weeks") and
    denominators ("out of 28")."""
    found: list[NumberMention] = []
    position = 0
    while position < len(words):
        value = _number_value(words[position], lex)
        if value is None:
            position += 1
            continue
        mention = _with_units(words, NumberMention(position, value), lex)
        if not _followed_by(words, mention.position, durations) and not _is_denominator(words, position, lex):
            found.append(mention)
        position = mention.position + 1
    return found


def _number_value(word: str, lex: Lexicon) -> int | None:
    if word.isascii() and word.isdecimal():
        return int(word) if len(word) <= 4 else None
    return lex.number_values.get(word)


def _with_units(words: Sequence[str], tens: NumberMention, lex: Lexicon) -> NumberMention:
    """ "twenty eight", "veinte y ocho" are one number."""
    if tens.value < 20 or tens.value % 10 or words[tens.position].isdecimal():
        return tens
    following = tens.position + 1
    if following < len(words) and words[following] in lex.compound_links:
        following += 1
    unit = _number_value(words[following], lex) if following < len(words) else None
    if unit is None or not 1 <= unit <= 9 or words[following].isdecimal():
        return tens
    return NumberMention(following, tens.value + unit)


def _is_denominator(words: Sequence[str], position: int, lex: Lexicon) -> bool:
    """The 28 of "15 out of 28", "15/28", "15 de 28" (a number was said before it)."""
    if position < 2 or words[position - 1] not in lex.denominators:
        return False
    return any(_number_value(word, lex) is not None for word in words[: position - 1])


def _followed_by(words: Sequence[str], position: int, units: frozenset[str]) -> bool:
    return position + 1 < len(words) and words[position + 1] in units


def _says_nothing(words: Sequence[str], lex: Lexicon) -> bool:
    spoken = set(words)
    return bool(spoken & lex.nothing) and not spoken & lex.unsure


def _per_week(words: Sequence[str], mention: NumberMention, lex: Lexicon) -> int | None:
    """ "3 times a week", "dos veces por semana": four weeks of it."""
    rest = list(words[mention.position + 1 : mention.position + 6])
    if rest and (rest[0] in lex.times or rest[0] in lex.day_units):
        rest = rest[1:]  # "3 times a week", "2 days a week"
    if not rest or rest[0] not in lex.per:
        return None  # "3 a week", "3 per week", "3 por semana", "3 a la semana"
    tail = [w for w in rest if w not in lex.per]
    return mention.value * 4 if tail and tail[0] in lex.week else None


def _every_n_days(words: Sequence[str], mention: NumberMention, lex: Lexicon) -> int | None:
    """ "every 2 days", "cada dos días": 28 days over N."""
    before = mention.position - 1
    after = mention.position + 1
    if before < 0 or words[before] not in lex.every or after >= len(words) or words[after] not in lex.day_units:
        return None
    return MAX_DAYS // mention.value if mention.value else None


def _read_days(tokens: Sequence[Token], lex: Lexicon) -> tuple[int | None, Finding | None]:
    """Days out of the last 28. A range or a choice ("4 or 5", "between 8 and 10") reads as
    its upper bound; "every day" is 28; "almost every day" and "I can't recall" are no
    number (re-prompt, never 0)."""
    words = _words(tokens)
    words_t = tuple(words)
    if (phrase := _find_phrase(words_t, lex.every_day)) is not None:
        if any(w in lex.not_quite for w in words):
            return None, None
        return MAX_DAYS, Finding(code="number", span=" ".join(phrase), rule="every day is 28", decision="answer")
    values: list[int] = []
    said_digits = any(word.isdecimal() for word in words)
    for phrase, value in () if said_digits else lex.number_phrases:  # "10, a couple were bad" is 10
        if _find_phrase(words_t, (phrase,)) is not None:
            return _checked(value, " ".join(phrase), "approximate number")
    mentions = _numbers_in(words, lex, lex.period_units)
    for mention in mentions:
        rate = _per_week(words, mention, lex) or _every_n_days(words, mention, lex)
        values.append(rate if rate is not None else mention.value)
    if values:
        return _checked(max(values), " ".join(words[:8]), "the highest number said")
    if any(w in lex.not_quite for w in words):
        return None, None
    if _says_nothing(words, lex):
        return 0, Finding(code="number", span=" ".join(words[:6]), rule="none is 0", decision="answer")
    return None, None


def _checked(value: int, span: str, rule: str) -> tuple[int | None, Finding | None]:
    if value > MAX_DAYS:
        return None, None
    return value, Finding(code="number", span=span, rule=rule, decision="answer")


# --- effects (Q2) -------------------------------------------------------------------------


def _effects_by_number(words: Sequence[str], lex: Lexicon) -> tuple[Effect, ...] | None:
    mentions = [m for m in _numbers_in(words, lex, lex.period_units | lex.day_units) if not _is_article(words, m, lex)]
    mentions += [NumberMention(i, lex.ordinals[w]) for i, w in enumerate(words) if w in lex.ordinals]
    mentions.sort(key=lambda m: m.position)
    if not mentions:
        return None
    codes = {mention.value for mention in mentions}
    if codes == {0}:
        return ()
    if not codes <= set(lex.effect_reasons):
        return None
    return _for_every_one(words, _merged(_effect(words, mentions, i, lex) for i in range(len(mentions))), lex)


def _for_every_one(words: Sequence[str], effects: tuple[Effect, ...], lex: Lexicon) -> tuple[Effect, ...]:
    """ "1 and 3, both mild": one severity said for all of them applies to each."""
    said = {e.severity for e in effects} - {None}
    if len(said) != 1 or not set(words) & lex.every_one:
        return effects
    severity = said.pop()
    return tuple(e.model_copy(update={"severity": e.severity or severity}) for e in effects)


def _is_article(words: Sequence[str], mention: NumberMention, lex: Lexicon) -> bool:
    """ "un poco de dolor", "the second one": a word for one that is not effect 1."""
    word = words[mention.position]
    if word in lex.articles:
        return True
    if lex.number_values.get(word) != 1:
        return False
    after = words[mention.position + 1] if mention.position + 1 < len(words) else None
    counted = after is None or after in lex.joiners or after in lex.mild or after in lex.severe \
        or _number_value(after, lex) is not None
    return not counted or (mention.position > 0 and words[mention.position - 1] in lex.determiners)


def _effect(words: Sequence[str], mentions: Sequence[NumberMention], index: int, lex: Lexicon) -> Effect:
    mention = mentions[index]
    until = mentions[index + 1].position if index + 1 < len(mentions) else len(words)
    following = words[mention.position + 1 : min(until, mention.position + 1 + lex.severity_reach)]
    return Effect(code=mention.value, reason=lex.effect_reasons[mention.value], severity=_severity_in(following, lex))


def _effects_in_words(reading: Reading, lex: Lexicon) -> tuple[Effect, ...]:
    code_of = {reason: code for code, reason in lex.effect_reasons.items()}
    found = []
    for mention, clause in reading.reported_effects():
        window = clause[max(0, mention.start - lex.severity_reach) : mention.end + lex.severity_reach]
        found.append(Effect(code=code_of[mention.code], reason=mention.code, severity=_severity_in(window, lex)))
    return _merged(iter(found))


def _severity_in(words: Sequence[str], lex: Lexicon) -> Severity | None:
    window = tuple(words)
    if _find_phrase(window, lex.mild_phrases) is not None:
        return "mild"
    if _find_phrase(window, lex.severe_phrases) is not None:
        return "severe"
    if any(word in lex.mild for word in words):
        return "mild"  # "very mild", "really just a little"
    return "severe" if any(word in lex.severe for word in words) else None


_SEVERITY_RANK: dict[Severity | None, int] = {None: 0, "mild": 1, "severe": 2}


def _merged(effects: Iterator[Effect]) -> tuple[Effect, ...]:
    """One effect per code, in the order said; said twice, the more severe reading wins."""
    by_code: dict[int, Effect] = {}
    for effect in effects:
        known = by_code.get(effect.code)
        if known is None or _SEVERITY_RANK[effect.severity] > _SEVERITY_RANK[known.severity]:
            by_code[effect.code] = effect
    return tuple(by_code.values())


def _read_effects(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> tuple[Effect, ...] | None:
    """Q2 by numbers ("1, 3m"), position ("the first and third") or words ("stiff neck");
    "none" is no effect."""
    words = _words(tokens)
    by_number = _effects_by_number(words, lex)
    in_words = _effects_in_words(reading, lex)
    if by_number is None and not in_words:
        if _says_nothing(words, lex) or _find_phrase(tuple(words), lex.no_phrases) is not None:
            return ()
        return None
    return _merged(iter((*(by_number or ()), *in_words)))


# --- the whole reply ----------------------------------------------------------------------


def parse_reply(text: str, question: Question | None) -> Reply:
    """Everything ``text`` says, read against the question open when it arrived."""
    keyword = match_keyword(text)
    if keyword is not None:
        return Reply(keyword=keyword, understood=True)
    lex = lexicon()
    tokens = tokenise(text)
    reading = read_mentions(tokens, lex)
    red_flags = reading.red_flags()
    if question is None:
        return Reply(red_flags=red_flags, findings=reading.findings())
    return _ANSWER_READERS[question](tokens, reading, lex)


def _answer_q1(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> Reply:
    """A red flag is a yes; a no may come with the common effects ("no, though my neck is
    stiff"), which then answer Q2 too."""
    red_flags = reading.red_flags()
    yes_no, finding = _read_yes_no(tokens, reading, lex)
    findings = reading.findings() + ((finding,) if finding else ())
    effects = _effects_in_words(reading, lex) or None
    if red_flags:
        return Reply(red_flags=red_flags, yes_no=True, effects=effects, understood=True, findings=findings)
    if yes_no is not False:
        effects = None  # a yes without a red flag is urgent anyway; an unclear reply is asked again
    return Reply(yes_no=yes_no, effects=effects, understood=yes_no is not None, findings=findings)


def _answer_q2(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> Reply:
    effects = _read_effects(tokens, reading, lex)
    return Reply(red_flags=reading.red_flags(), effects=effects, understood=effects is not None,
                 findings=reading.findings())


def _answer_q3(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> Reply:
    days, finding = _read_days(tokens, lex)
    findings = reading.findings() + ((finding,) if finding else ())
    return Reply(red_flags=reading.red_flags(), number=days, understood=days is not None, findings=findings)


def _answer_q3a(tokens: Sequence[Token], reading: Reading, lex: Lexicon) -> Reply:
    """ "about 10, and I took pills on 4": headache days and medication days at once."""
    both = _days_and_medication(tokens, lex)
    if both is None:
        return _answer_q3(tokens, reading, lex)
    (days, said_days), (medication, said_medication) = both
    findings = reading.findings() + tuple(f for f in (said_days, said_medication) if f)
    return Reply(red_flags=reading.red_flags(), number=days, medication_days=medication, understood=True, findings=findings)


def _days_and_medication(tokens: Sequence[Token], lex: Lexicon) -> tuple[tuple[int, Finding | None], tuple[int, Finding | None]] | None:
    pieces = list(_pieces(tokens, lex))
    about_medication = [p for p in pieces if any(t.text in lex.medication for t in p)]
    about_headache = [p for p in pieces if not any(t.text in lex.medication for t in p)]
    medication = [read for p in about_medication if (read := _read_days(p, lex))[0] is not None]
    headache = [read for p in about_headache if (read := _read_days(p, lex))[0] is not None]
    if not medication or not headache:
        return None
    return max(headache, key=lambda read: read[0] or 0), max(medication, key=lambda read: read[0] or 0)


def _pieces(tokens: Sequence[Token], lex: Lexicon) -> Iterator[list[Token]]:
    piece: list[Token] = []
    for token in tokens:
        if token.kind in ("stop", "comma", "question") or token.text in lex.breaks or token.text in ("and", "y"):
            if piece:
                yield piece
            piece = []
        else:
            piece.append(token)
    if piece:
        yield piece


_ANSWER_READERS: dict[Question, Callable[[Sequence[Token], Reading, Lexicon], Reply]] = {
    "q1_red_flags": _answer_q1,
    "q2_common_effects": _answer_q2,
    "q3a_headache_days": _answer_q3a,
    "q3b_medication_days": _answer_q3,
}
