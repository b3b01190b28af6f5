"""The clinical floor on the labelled corpus (tests/data/replies): every urgent report is
caught, the severity is right for at least 95% of side-effect replies, headache numbers for
at least 98%, and no governed negation is escalated. The frozen test part was written with
the development part, before the lexicon was tuned, and evaluated once at the end; the blind
part was written by a second author who had not read the reader (its first figures are in
tests/data/replies/BLIND_FIRST_RUN.md), then the reader was generalised by kind."""

from __future__ import annotations

import pytest

from bench.replies.scoring import load, score


@pytest.fixture(scope="module", params=["dev", "test", "holdout", "blind"])
def scored(request: pytest.FixtureRequest):
    return request.param, score(load(request.param))


def test_the_corpus_has_at_least_800_replies_in_english_and_spanish() -> None:
    rows = load("dev") + load("test")
    assert len(rows) >= 800
    assert {row["lang"] for row in rows} == {"en", "es"}
    shared = {row["text"] for row in load("dev")} & {row["text"] for row in load("test")}
    assert all(len(text) <= 3 for text in shared), shared  # the parts share no phrasing, only a bare "10"


def test_the_blind_part_has_400_replies_a_third_in_spanish_half_of_them_urgent() -> None:
    rows = load("blind")
    assert len(rows) >= 400
    assert sum(row["lang"] == "es" for row in rows) / len(rows) >= 0.33
    urgent = sum(row["severity"] == "urgent" for row in rows)
    assert 0.4 <= urgent / len(rows) <= 0.6


def test_every_urgent_report_is_caught(scored) -> None:
    part, result = scored
    assert result.urgent_recall == 1.0, [m for m in result.misses if m.expected.startswith("urgent")]


def test_the_severity_is_right_for_at_least_95_percent(scored) -> None:
    part, result = scored
    assert result.severity_accuracy >= 0.95


def test_headache_numbers_are_right_for_at_least_98_percent(scored) -> None:
    part, result = scored
    assert result.number_accuracy >= 0.98


def test_nothing_is_escalated_that_should_not_be_negated_lists_included(scored) -> None:
    part, result = scored
    assert result.false_urgent == 0, [m for m in result.misses if m.got.startswith("urgent")]
    negated = [row["id"] for row in load(part) if row["source"] == "negated-list"]
    assert not [m for m in result.misses if m.id in negated]
