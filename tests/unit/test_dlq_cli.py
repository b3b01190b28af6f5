"""`cyclecare dlq`: reading dead letters, choosing what to replay, never showing a body."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.dlq_cli import parse, select, since_moment, summary, unique_originals
from shared.codec import dead_letter
from shared.topics import Topics

BODY = b'{"type":"patient.enrolled","phone":"+19165550123","first_name":"Ana","clinic_id":"eastside"}'
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=timezone.utc)


def letter(topic: str = "cyclecare.patients", error: str = "UnknownClinic: clinic 'eastside' is not in the clinics file",
           offset: int = 4, body: bytes = BODY, key: bytes = b"p-1"):
    raw = dead_letter(body, topic=topic, partition=1, offset=offset, error=error, service="scheduler")
    parsed = parse(raw, key)
    assert parsed is not None
    return parsed


def test_a_dead_letter_keeps_the_original_bytes_and_key_for_replay() -> None:
    d = letter()
    assert d.original == BODY and d.key == b"p-1" and d.reason == "UnknownClinic"


def test_the_listed_line_names_place_and_reason_and_never_the_body_or_a_phone_number() -> None:
    line = letter(error="phone: +19165550123 is not a phone number").line()
    assert "cyclecare.patients[1]@4" in line and "invalid_event" in line
    assert "+19165550123" not in line and "Ana" not in line and "first_name" not in line


def test_records_that_are_not_dead_letters_are_skipped() -> None:
    assert parse(b"not json", None) is None
    assert parse(b'{"type": "something"}', None) is None


def test_replay_selects_by_topic_and_reason() -> None:
    letters = [letter(), letter(error="not JSON: Expecting value", offset=5, body=b"{oops"),
               letter(topic="cyclecare.treatments", offset=6)]
    assert [d.offset for d in select(letters, topic="cyclecare.patients")] == [4, 5]
    assert [d.offset for d in select(letters, topic="cyclecare.patients", reason="UnknownClinic")] == [4]


def test_the_same_original_dead_lettered_twice_is_replayed_once() -> None:
    first, again = letter(offset=4), letter(offset=4)
    other_patient = letter(offset=9, key=b"p-2", body=BODY.replace(b"Ana", b"Bea"))
    assert unique_originals([first, again, other_patient]) == [first, other_patient]


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", datetime(2026, 11, 25, 20, 30, tzinfo=timezone.utc)),
    ("2h", datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc)),
    ("2026-11-24T08:00:00+00:00", datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)),
])
def test_since_takes_a_duration_or_a_time(text: str, expected: datetime) -> None:
    assert since_moment(text, NOW) == expected


def test_the_summary_counts_by_reason() -> None:
    letters = [letter(), letter(offset=7), letter(error="not JSON: x", offset=8)]
    assert summary(letters) == "3 dead letter(s): UnknownClinic 2, invalid_event 1"
    assert Topics().dlq == "cyclecare.dlq"
