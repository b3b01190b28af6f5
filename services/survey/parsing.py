"""Reading a patient's SMS reply: opt-out keywords, red-flag symptoms, and the answer to
the open check-in question (DESIGN.md, "Clinical rules").

Pure functions over text, no I/O beyond reading the packaged vocabulary once. Every word
the parser knows lives in ``vocabulary.yaml``; this module holds only the rules that use
them. When in doubt the rules lean towards escalation: a red flag read wrongly costs a
clinician a phone call, a red flag missed costs far more.
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

Question = Literal["q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"]
Keyword = Literal["stop", "start", "help"]
RedFlagCode = Literal["dysphagia", "dyspnea", "dysarthria", "vision", "generalized_weakness"]
EffectReason = Literal["neck_pain", "ptosis", "injection_site_pain", "headache_worse", "muscle_weakness"]
Severity = Literal["mild", "severe"]

VOCABULARY_PATH = Path(__file__).with_name("vocabulary.yaml")
MAX_DAYS = 28
RED_FLAG_CODES: tuple[RedFlagCode, ...] = get_args(RedFlagCode)


# --- what the parser returns ------------------------------------------------------------


class Effect(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: int = Field(ge=1, le=5)
    reason: str
    severity: Severity | None = None


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    keyword: Keyword | None = None
    red_flags: tuple[str, ...] = ()
    yes_no: bool | None = None
    effects: tuple[Effect, ...] | None = None
    number: int | None = Field(None, ge=0, le=MAX_DAYS)
    understood: bool = False


# --- the vocabulary file ------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Words = Annotated[tuple[str, ...], Field(min_length=1)]


class MatchingRules(_Strict):
    before_window: int = Field(ge=1, le=10)
    after_window: int = Field(ge=1, le=10)
    max_gap: int = Field(ge=0, le=5)
    fuzzy_min_length: int = Field(ge=3)


class KeywordWords(_Strict):
    stop: Words
    start: Words
    help: Words


class AnswerWords(_Strict):
    yes: Words
    no: Words


class SymptomPhrases(_Strict):
    phrases: Words
    not_symptom: tuple[str, ...] = ()


class NegationWords(_Strict):
    cues: Words
    ability: Words
    inability: Words
    reassurance: Words
    trouble: Words


class ClauseWords(_Strict):
    breaks: Words
    joiners: Words


class NumberWords(_Strict):
    values: dict[str, int]
    compound_links: tuple[str, ...] = ()
    nothing: Words
    unsure: tuple[str, ...] = ()
    every_day: tuple[str, ...] = ()
    denominators: tuple[str, ...] = ()
    period_units: Words
    day_units: Words


class SeverityWords(_Strict):
    reach: int = Field(ge=1, le=5)
    mild: Words
    severe: Words


class Vocabulary(_Strict):
    matching: MatchingRules
    keywords: KeywordWords
    answers: AnswerWords
    red_flags: dict[RedFlagCode, SymptomPhrases]
    negation: NegationWords
    clauses: ClauseWords
    numbers: NumberWords
    severity: SeverityWords
    effects: dict[int, EffectReason]

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

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
_TOKEN = re.compile(
    r"(?P<number>\d+)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*|[&/+])"
    r"|(?P<emoji>[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff])"
    r"|(?P<stop>[.;!\n]+)"
    r"|(?P<comma>[,:?])"
)
_REPEATS = re.compile(r"(.)\1+")

TokenKind = Literal["number", "word", "emoji", "stop", "comma"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str


def normalise(text: str) -> str:
    """Case-, width- and accent-insensitive text: "SÍ" and "si" read the same."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    decomposed = unicodedata.normalize("NFD", _SKIN_TONES.sub("", folded))
    return "".join(char for char in decomposed if not unicodedata.category(char).startswith("M"))


def tokenise(text: str) -> list[Token]:
    return [Token(match.lastgroup, match.group()) for match in _TOKEN.finditer(normalise(text))]  # type: ignore[arg-type]


def _words(tokens: Sequence[Token]) -> list[str]:
    return [token.text for token in tokens if token.kind in ("word", "number")]


def _squeezed(word: str) -> str:
    """ "yesss" -> "yes", "nooo" -> "no": patients stretch their short answers."""
    return _REPEATS.sub(r"\1", word)


# --- red-flag phrases, compiled once ------------------------------------------------------

GAP = "..."


@dataclass(frozen=True)
class Alternative:
    text: str
    is_stem: bool


Slot = tuple[Alternative, ...] | None  # None is a gap of up to max_gap words


@dataclass(frozen=True)
class Phrase:
    code: RedFlagCode
    slots: tuple[Slot, ...]


def _compile_phrase(code: RedFlagCode, phrase: str) -> Phrase:
    return Phrase(code, tuple(_compile_slot(part) for part in normalise(phrase).split()))


def _compile_slot(part: str) -> Slot:
    if part == GAP:
        return None
    return tuple(Alternative(alt.rstrip("*"), alt.endswith("*")) for alt in part.split("|"))


@dataclass(frozen=True)
class Lexicon:
    """The vocabulary normalised the way replies are, ready for look-ups."""

    rules: MatchingRules
    keywords: dict[str, Keyword]
    yes: frozenset[str]
    no: frozenset[str]
    phrases: tuple[Phrase, ...]
    not_symptom: tuple[Phrase, ...]
    cues: frozenset[str]
    ability: frozenset[str]
    inability: frozenset[str]
    reassurance: frozenset[str]
    trouble: frozenset[str]
    breaks: frozenset[str]
    joiners: frozenset[str]
    number_values: dict[str, int]
    compound_links: frozenset[str]
    nothing: frozenset[str]
    unsure: frozenset[str]
    every_day: tuple[str, ...]
    denominators: frozenset[str]
    period_units: frozenset[str]
    day_units: frozenset[str]
    mild: frozenset[str]
    severe: frozenset[str]
    severity_reach: int
    effect_reasons: dict[int, EffectReason]


def _normalised(words: Sequence[str]) -> frozenset[str]:
    return frozenset(normalise(word) for word in words)


def _squeezed_set(words: Sequence[str]) -> frozenset[str]:
    return frozenset(_squeezed(word) for word in _normalised(words))


@functools.cache
def lexicon() -> Lexicon:
    vocab = load_vocabulary()
    return Lexicon(
        rules=vocab.matching,
        keywords=_keyword_index(vocab.keywords),
        yes=_squeezed_set(vocab.answers.yes),
        no=_squeezed_set(vocab.answers.no),
        phrases=_compile_all(vocab, lambda symptom: symptom.phrases),
        not_symptom=_compile_all(vocab, lambda symptom: symptom.not_symptom),
        cues=_normalised(vocab.negation.cues),
        ability=_normalised(vocab.negation.ability),
        inability=_normalised(vocab.negation.inability),
        reassurance=_normalised(vocab.negation.reassurance),
        trouble=_normalised(vocab.negation.trouble),
        breaks=_normalised(vocab.clauses.breaks),
        joiners=_normalised(vocab.clauses.joiners),
        number_values={normalise(word): value for word, value in vocab.numbers.values.items()},
        compound_links=_normalised(vocab.numbers.compound_links),
        nothing=_normalised(vocab.numbers.nothing),
        unsure=_normalised(vocab.numbers.unsure),
        every_day=tuple(" ".join(_words(tokenise(phrase))) for phrase in vocab.numbers.every_day),
        denominators=_normalised(vocab.numbers.denominators),
        period_units=_normalised(vocab.numbers.period_units),
        day_units=_normalised(vocab.numbers.day_units),
        mild=_normalised(vocab.severity.mild),
        severe=_normalised(vocab.severity.severe),
        severity_reach=vocab.severity.reach,
        effect_reasons=dict(vocab.effects),
    )


def _keyword_index(keywords: KeywordWords) -> dict[str, Keyword]:
    kinds: tuple[Keyword, ...] = get_args(Keyword)
    return {
        " ".join(_words(tokenise(word))): kind for kind in kinds for word in getattr(keywords, kind)
    }


def _compile_all(vocab: Vocabulary, pick: Callable[[SymptomPhrases], Sequence[str]]) -> tuple[Phrase, ...]:
    return tuple(
        _compile_phrase(code, phrase)
        for code in RED_FLAG_CODES
        for phrase in pick(vocab.red_flags[code])
    )


# --- keywords -----------------------------------------------------------------------------


def match_keyword(text: str) -> Keyword | None:
    """The keyword the whole message is ("STOP", " opt-out! ", "Ayuda"), if it is one."""
    return lexicon().keywords.get(" ".join(_words(tokenise(text))))


# --- red flags ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    code: RedFlagCode
    start: int
    end: int

    def covers(self, other: Mention) -> bool:
        return self.start <= other.start and other.end <= self.end and self != other


def detect_red_flags(text: str) -> tuple[str, ...]:
    """The red-flag codes a patient reports anywhere in ``text``, negations respected."""
    lex = lexicon()
    reported = {code for clause in _clauses(tokenise(text), lex) for code in _reported_in(clause, lex)}
    return tuple(code for code in RED_FLAG_CODES if code in reported)


def _reported_in(clause: Sequence[str], lex: Lexicon) -> set[RedFlagCode]:
    mentions = _mentions(clause, lex)
    covered = _covered(mentions)
    return {mention.code for mention in mentions if _is_reported(clause, mention, covered, lex)}


def _clauses(tokens: Sequence[Token], lex: Lexicon) -> Iterator[list[str]]:
    for segments in _sentences(tokens, lex):
        yield from _join_list_segments(segments, lex)


def _sentences(tokens: Sequence[Token], lex: Lexicon) -> Iterator[list[list[str]]]:
    """Pieces no negation reaches across, each split further at its commas (and at the
    "?" and ":" of "Swallowing? No." and "Breathing: fine")."""
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token.kind == "stop" or token.text in lex.breaks:
            yield segments
            segments = [[]]
        elif token.kind == "comma":
            segments.append([])
        elif token.kind in ("word", "number"):
            segments[-1].append(token.text)
    yield segments


def _join_list_segments(segments: list[list[str]], lex: Lexicon) -> Iterator[list[str]]:
    """ "no trouble swallowing, breathing or speaking": a comma-separated list of symptoms
    stays in the clause of its negation, and "Swallowing? No" reads as "swallowing no";
    any other comma starts a new clause."""
    clause: list[str] = []
    previous: list[str] = []
    for segment in filter(None, segments):
        if clause and _continues(previous, segment, lex):
            clause = clause + segment
        else:
            if clause:
                yield clause
            clause = segment
        previous = segment
    if clause:
        yield clause


def _continues(previous: Sequence[str], segment: Sequence[str], lex: Lexicon) -> bool:
    if _is_symptom_list(segment, lex):
        return _ends_with_symptom(previous, lex)
    return _is_symptom_list(previous, lex) and _is_verdict(segment, lex)


def _is_verdict(segment: Sequence[str], lex: Lexicon) -> bool:
    """ "No", "all fine", "no problems": an answer about the symptoms just named."""
    verdicts = lex.cues | lex.reassurance | lex.trouble | lex.no
    return any(word in verdicts for word in segment[: lex.rules.after_window])


def _ends_with_symptom(words: Sequence[str], lex: Lexicon) -> bool:
    return len(words) - 1 in _covered(_mentions(words, lex))


def _is_symptom_list(words: Sequence[str], lex: Lexicon) -> bool:
    covered = _covered(_mentions(words, lex))
    return bool(covered) and all(i in covered or word in lex.joiners for i, word in enumerate(words))


def _covered(mentions: Sequence[Mention]) -> set[int]:
    return {i for mention in mentions for i in range(mention.start, mention.end)}


def _mentions(words: Sequence[str], lex: Lexicon) -> list[Mention]:
    found = [
        Mention(phrase.code, start, end)
        for phrase in lex.phrases
        for start in range(len(words))
        if (end := _match_at(phrase.slots, words, start, lex.rules)) is not None
        and not _is_not_symptom(phrase.code, words, start, lex)
    ]
    return [mention for mention in found if not any(other.covers(mention) for other in found)]


def _is_not_symptom(code: RedFlagCode, words: Sequence[str], start: int, lex: Lexicon) -> bool:
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
    if start < len(words) and any(_fits(words[start], alt, rules) for alt in head):
        return _match_at(rest, words, start + 1, rules)
    return None


def _match_after_gap(slots: Sequence[Slot], words: Sequence[str], start: int, rules: MatchingRules) -> int | None:
    for skipped in range(rules.max_gap + 1):
        if (end := _match_at(slots, words, start + skipped, rules)) is not None:
            return end
    return None


def _fits(word: str, alt: Alternative, rules: MatchingRules) -> bool:
    if word == alt.text or (alt.is_stem and word.startswith(alt.text)):
        return True
    if len(alt.text) < rules.fuzzy_min_length or word[:2] != alt.text[:2]:
        return False
    if alt.is_stem:
        lengths = range(len(alt.text) - 1, min(len(alt.text) + 1, len(word)) + 1)
        return any(_edit_distance(word[:n], alt.text) <= 1 for n in lengths)
    return _edit_distance(word, alt.text) <= 1


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def _is_reported(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> bool:
    """Whether the patient says they have the symptom, rather than that they do not.

    "can't swallow", "no puedo tragar", "not able to breathe" report it; "no trouble
    swallowing", "swallowing is fine" do not; "no respiro bien" does (the negation
    governs the "well", not the symptom).
    """
    before = set(_words_before(words, mention, covered, lex))
    signals = before | set(words[mention.start : mention.end])
    if signals & lex.inability or (signals & lex.cues and signals & lex.ability):
        return True
    reassured = _reassured_after(words, mention, covered, lex)
    return reassured if before & lex.cues else not reassured


def _words_before(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> list[str]:
    """The last few words before a symptom, passing over the other symptoms of a list."""
    picked: list[str] = []
    for i in range(mention.start - 1, -1, -1):
        word = words[i]
        if i in covered:
            continue
        if word in lex.joiners and word not in lex.cues:
            if i + 1 in covered:
                continue
            break
        picked.append(word)
        if len(picked) == lex.rules.before_window:
            break
    return picked


def _reassured_after(words: Sequence[str], mention: Mention, covered: set[int], lex: Lexicon) -> bool:
    """ "swallowing is fine", "breathing no problem"; not "vision is not good" nor
    "breathing is not easy"."""
    after = [w for i, w in enumerate(words) if i >= mention.end and i not in covered and w not in lex.joiners]
    negated = False
    for word in after[: lex.rules.after_window]:
        if word in lex.cues:
            negated = True
        elif word in lex.reassurance:
            return not negated
        elif word in lex.trouble:
            return negated
    return _is_a_bare_no(after, lex)


def _is_a_bare_no(after: Sequence[str], lex: Lexicon) -> bool:
    """ "Swallowing: no" answers no; "breathing is not" leaves the symptom standing."""
    return 0 < len(after) <= lex.rules.after_window and after[-1] in lex.no


# --- answers to the open question ---------------------------------------------------------


def _read_yes_no(tokens: Sequence[Token], lex: Lexicon) -> bool | None:
    """The first two words decide; emoji only when there are no words ("No 👍" is a no)."""
    opening = [token for token in tokens if token.kind in ("word", "emoji", "number")][:2]
    words = [_squeezed(token.text) for token in opening if token.kind != "emoji"]
    said = _polarity(words, lex)
    return said if said is not None else _polarity([t.text for t in opening if t.kind == "emoji"], lex)


def _polarity(words: Sequence[str], lex: Lexicon) -> bool | None:
    said_yes = any(word in lex.yes for word in words)
    said_no = any(word in lex.no for word in words)
    return None if said_yes == said_no else said_yes


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
    return int(word) if word.isdigit() else lex.number_values.get(word)


def _with_units(words: Sequence[str], tens: NumberMention, lex: Lexicon) -> NumberMention:
    """ "twenty eight", "veinte y ocho" are one number."""
    if tens.value < 20 or tens.value % 10 or words[tens.position].isdigit():
        return tens
    following = tens.position + 1
    if following < len(words) and words[following] in lex.compound_links:
        following += 1
    unit = _number_value(words[following], lex) if following < len(words) else None
    if unit is None or not 1 <= unit <= 9 or words[following].isdigit():
        return tens
    return NumberMention(following, tens.value + unit)


def _is_denominator(words: Sequence[str], position: int, lex: Lexicon) -> bool:
    return position > 0 and words[position - 1] in lex.denominators


def _followed_by(words: Sequence[str], position: int, units: frozenset[str]) -> bool:
    return position + 1 < len(words) and words[position + 1] in units


def _says_nothing(words: Sequence[str], lex: Lexicon) -> bool:
    spoken = set(words)
    return bool(spoken & lex.nothing) and not spoken & lex.unsure


def _read_effects(tokens: Sequence[Token], lex: Lexicon) -> tuple[Effect, ...] | None:
    words = _words(tokens)
    mentions = _numbers_in(words, lex, lex.period_units | lex.day_units)
    if not mentions:
        return () if _says_nothing(words, lex) else None
    codes = {mention.value for mention in mentions}
    if codes == {0}:
        return ()
    if not codes <= set(lex.effect_reasons):
        return None
    return _merged(_effect(words, mentions, i, lex) for i in range(len(mentions)))


def _effect(words: Sequence[str], mentions: Sequence[NumberMention], index: int, lex: Lexicon) -> Effect:
    mention = mentions[index]
    until = mentions[index + 1].position if index + 1 < len(mentions) else len(words)
    following = words[mention.position + 1 : min(until, mention.position + 1 + lex.severity_reach)]
    return Effect(
        code=mention.value,
        reason=lex.effect_reasons[mention.value],
        severity=_severity_in(following, lex),
    )


def _severity_in(words: Sequence[str], lex: Lexicon) -> Severity | None:
    for word in words:
        if word in lex.severe:
            return "severe"
        if word in lex.mild:
            return "mild"
    return None


_SEVERITY_RANK: dict[Severity | None, int] = {None: 0, "mild": 1, "severe": 2}


def _merged(effects: Iterator[Effect]) -> tuple[Effect, ...]:
    """One effect per code; said twice, the more severe reading wins."""
    by_code: dict[int, Effect] = {}
    for effect in effects:
        known = by_code.get(effect.code)
        if known is None or _SEVERITY_RANK[effect.severity] > _SEVERITY_RANK[known.severity]:
            by_code[effect.code] = effect
    return tuple(by_code.values())


def _read_days(tokens: Sequence[Token], lex: Lexicon) -> int | None:
    """Days out of the last 28; "maybe 4 or 5" reads as the higher, 5."""
    words = _words(tokens)
    if _says_every_day(words, lex):
        return MAX_DAYS
    mentions = _numbers_in(words, lex, lex.period_units)
    if not mentions:
        return 0 if _says_nothing(words, lex) else None
    highest = max(mention.value for mention in mentions)
    return highest if highest <= MAX_DAYS else None


def _says_every_day(words: Sequence[str], lex: Lexicon) -> bool:
    spoken = f" {' '.join(words)} "
    return any(f" {phrase} " in spoken for phrase in lex.every_day)


# --- the whole reply ----------------------------------------------------------------------


def parse_reply(text: str, question: Question | None) -> Reply:
    keyword = match_keyword(text)
    if keyword is not None:
        return Reply(keyword=keyword, understood=True)
    red_flags = detect_red_flags(text)
    if question is None:
        return Reply(red_flags=red_flags)
    return _ANSWER_READERS[question](tokenise(text), red_flags, lexicon())


def _answer_q1(tokens: Sequence[Token], red_flags: tuple[str, ...], lex: Lexicon) -> Reply:
    yes_no = True if red_flags else _read_yes_no(tokens, lex)
    return Reply(red_flags=red_flags, yes_no=yes_no, understood=yes_no is not None)


def _answer_q2(tokens: Sequence[Token], red_flags: tuple[str, ...], lex: Lexicon) -> Reply:
    effects = _read_effects(tokens, lex)
    return Reply(red_flags=red_flags, effects=effects, understood=effects is not None)


def _answer_q3(tokens: Sequence[Token], red_flags: tuple[str, ...], lex: Lexicon) -> Reply:
    days = _read_days(tokens, lex)
    return Reply(red_flags=red_flags, number=days, understood=days is not None)


_ANSWER_READERS: dict[Question, Callable[[Sequence[Token], tuple[str, ...], Lexicon], Reply]] = {
    "q1_red_flags": _answer_q1,
    "q2_common_effects": _answer_q2,
    "q3a_headache_days": _answer_q3,
    "q3b_medication_days": _answer_q3,
}
