"""Scores the reply reader on the labelled corpus (tests/data/replies/*.jsonl).

Pure: rows in, figures out. The benchmark prints them; a unit test asserts the clinical
floor on the frozen test part (urgent recall 1.0, severity accuracy >= 0.95, headache
numbers >= 0.98).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from services.survey.domain import effects_severity
from services.survey.parsing import RED_FLAG_CODES, Reply, parse_reply

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "replies"
OUTCOMES = ("urgent", "high", "routine", "none", "reprompt")


def load(part: str) -> list[dict]:
    with (CORPUS / f"{part}.jsonl").open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows if line.strip()]


def outcome(reply: Reply, question: str | None) -> str:
    """What the survey does with a side-effect reply, as the corpus labels it."""
    if reply.red_flags or (question == "q1_red_flags" and reply.yes_no):
        return "urgent"
    if question is None:
        return "none"
    if not reply.understood:
        return "reprompt"
    return effects_severity(reply) or "none"


@dataclass
class Miss:
    id: str
    text: str
    question: str | None
    expected: str
    got: str


@dataclass
class Score:
    replies: int = 0
    urgent_expected: int = 0
    urgent_caught: int = 0
    false_urgent: int = 0
    severity_right: int = 0
    side_effect_replies: int = 0
    numbers_right: int = 0
    number_replies: int = 0
    confusion: Counter = field(default_factory=Counter)  # (expected, got) -> count
    codes: dict[str, Counter] = field(default_factory=dict)  # code -> tp/fp/fn
    misses: list[Miss] = field(default_factory=list)

    @property
    def urgent_recall(self) -> float:
        return self.urgent_caught / self.urgent_expected if self.urgent_expected else 1.0

    @property
    def severity_accuracy(self) -> float:
        return self.severity_right / self.side_effect_replies if self.side_effect_replies else 1.0

    @property
    def number_accuracy(self) -> float:
        return self.numbers_right / self.number_replies if self.number_replies else 1.0

    def precision_recall(self, code: str) -> tuple[float, float]:
        c = self.codes.get(code, Counter())
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        return precision, recall


def score(rows: Iterable[dict]) -> Score:
    result = Score(codes={code: Counter() for code in RED_FLAG_CODES})
    for row in rows:
        result.replies += 1
        reply = parse_reply(row["text"], row["question"])
        if row["kind"] == "headache_frequency":
            _score_number(result, row, reply)
        else:
            _score_side_effects(result, row, reply)
    return result


def _score_number(result: Score, row: dict, reply: Reply) -> None:
    result.number_replies += 1
    result.false_urgent += bool(reply.red_flags)  # a red flag read into a headache answer
    got = reply.number if reply.understood else None
    if got == row["number"] and not reply.red_flags:
        result.numbers_right += 1
    else:
        result.misses.append(Miss(row["id"], row["text"], row["question"], str(row["number"]), str(got)))


def _score_side_effects(result: Score, row: dict, reply: Reply) -> None:
    result.side_effect_replies += 1
    expected, got = row["severity"], outcome(reply, row["question"])
    result.confusion[(expected, got)] += 1
    result.urgent_expected += expected == "urgent"
    result.urgent_caught += expected == "urgent" and got == "urgent"
    result.false_urgent += expected != "urgent" and got == "urgent"
    right = expected == got and set(row["red_flags"]) == set(reply.red_flags) and _effects_right(row, reply)
    result.severity_right += expected == got
    for code in RED_FLAG_CODES:
        said, found = code in row["red_flags"], code in reply.red_flags
        result.codes[code]["tp" if said and found else "fp" if found else "fn" if said else "tn"] += 1
    if not right:
        result.misses.append(Miss(row["id"], row["text"], row["question"],
                                  f"{expected} {row['red_flags'] or ''}{_effects_label(row['effects'])}",
                                  f"{got} {list(reply.red_flags) or ''}{_reply_effects(reply)}"))


def _effects_right(row: dict, reply: Reply) -> bool:
    if row["effects"] is None:
        return True
    expected = {(e["code"], e["severity"]) for e in row["effects"]}
    return expected == {(e.code, e.severity) for e in reply.effects or ()}


def _effects_label(effects: list | None) -> str:
    return "" if effects is None else " " + ",".join(f"{e['code']}{(e['severity'] or '')[:1]}" for e in effects)


def _reply_effects(reply: Reply) -> str:
    return "" if reply.effects is None else " " + ",".join(f"{e.code}{(e.severity or '')[:1]}" for e in reply.effects)
