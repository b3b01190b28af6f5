"""Hostile and sloppy Kafka records: bounded work, a reason, a dead letter, never a crash.

Every record that cannot be processed fails in the codec with a short reason (which the
runtime dead-letters); anything else about it (an exception type nobody expects, a
RecursionError, a reason that quotes a megabyte) would stop the agent or flood the logs.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codec import DecodeError, dead_letter, dead_letter_key, decode, decode_record, encode
from shared.events import PatientEnrolled
from shared.survey_events import InboundSms
from shared.limits import MAX_DLQ_ORIGINAL_BYTES, MAX_ERROR_CHARS, MAX_KEY_BYTES, MAX_RECORD_BYTES

PATIENT: dict[str, Any] = {
    "type": "patient.enrolled", "patient_id": "p-1", "clinic_id": "rocklin", "first_name": "Ana",
    "phone": "+19165550123", "timezone": "America/Los_Angeles", "sms_consent": True,
}
KAFKA_MAX_MESSAGE_BYTES = 1_000_000  # Kafka's default message.max.bytes (1 MB less a little)


def patient(**changes: object) -> bytes:
    return json.dumps(PATIENT | changes).encode()


POISON: dict[str, tuple[bytes, str]] = {
    "a 1 MB value that is not JSON": (b"\x00garbage" * 125_000, "exceeds the limit"),
    "a 900 KB field": (patient(first_name="x" * 900_000), "exceeds the limit"),
    "a 200 KB event_id": (patient(event_id="e" * 200_000), "event_id"),
    "a 1 MB type": (json.dumps({"type": "t" * 1_000_000}).encode(), "exceeds the limit"),
    "a 60 KB type": (json.dumps({"type": "t" * 60_000}).encode(), "type"),
    "a document nested 50,000 deep": (b'{"type": "patient.enrolled", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                       "nested deeper"),
    "a document nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    "a document nested 40 deep": (patient(x=json.loads("[" * 40 + "]" * 40)), "nested deeper"),
    "a 5,000-digit integer": (b'{"type": "patient.enrolled", "version": ' + b"9" * 5000 + b"}", "digits"),
    "a 300-character timezone": (patient(timezone="A" * 300), "timezone"),
    "a 308-character timezone of path segments": (patient(timezone="Europe/" * 44), "timezone"),
    "a 1,000-character patient_id": (patient(patient_id="p" * 1000), "patient_id"),
    "a 100-character phone": (patient(phone="+1" + "9" * 98), "phone"),
    "NaN": (b'{"type": "patient.enrolled", "baseline_headache_days": NaN}', "NaN"),
    "UTF-16": ('{"type": "patient.enrolled"}'.encode("utf-16"), "UTF-8"),
    "bytes that are not UTF-8": (b'{"type": "\xff\xfe"}', "UTF-8"),
    "a 300,000-character MessageSid": (
        json.dumps({"type": "sms.received", "message_sid": "S" * 200_000, "from_phone": "+19165550123",
                    "to_phone": "+19165550100", "body": "hi", "received_at": "2026-03-02T10:00:00+00:00"}).encode(),
        "message_sid"),
}


@pytest.mark.parametrize("case", POISON)
def test_every_poison_record_fails_in_the_codec_with_a_short_reason(case):
    raw, reason = POISON[case]
    with pytest.raises(DecodeError, match=reason) as failure:
        decode(raw)
    assert len(str(failure.value)) <= MAX_ERROR_CHARS + 50


def test_an_unknown_type_is_named_but_not_quoted_whole():
    with pytest.raises(DecodeError) as failure:
        decode(json.dumps({"type": "x" * 60}).encode())
    assert len(str(failure.value)) <= MAX_ERROR_CHARS + 50


@pytest.mark.parametrize("key", [b"\xff\xfe\xfd", b"p" * (MAX_KEY_BYTES + 1)], ids=["not UTF-8", "too long"])
def test_a_key_that_is_not_short_utf8_text_fails_before_the_handler(key):
    with pytest.raises(DecodeError, match="key"):
        decode_record(key, patient())


def test_a_valid_record_gives_its_key_and_event():
    key, event = decode_record(b"p-1", patient())
    assert key == "p-1" and isinstance(event, PatientEnrolled)
    assert decode_record(None, patient())[0] == ""


def test_the_limits_still_admit_every_legitimate_event():
    sms = InboundSms(message_sid="SM" + "a" * 32, from_phone="+19165550123", to_phone="+19165550100",
                     body="x" * 5000, received_at="2026-03-02T10:00:00+00:00")
    assert decode(encode(sms)) == sms
    assert len(encode(sms)) < MAX_RECORD_BYTES


def test_a_dead_letter_of_a_huge_record_still_fits_in_a_kafka_record_and_says_what_was_cut():
    raw = b"x" * 1_000_000
    letter = json.loads(dead_letter(raw, topic="t", partition=0, offset=7, error="e" * 100_000, service="s"))
    assert len(json.dumps(letter)) < KAFKA_MAX_MESSAGE_BYTES
    assert letter["original_truncated"] is True and letter["original_size"] == 1_000_000
    assert base64.b64decode(letter["original_base64"]) == raw[:MAX_DLQ_ORIGINAL_BYTES]
    assert len(letter["error"]) <= MAX_ERROR_CHARS + 50


def test_a_dead_letter_keeps_a_small_record_whole():
    letter = json.loads(dead_letter(b"{nope", topic="t", partition=0, offset=7, error="not JSON", service="s"))
    assert base64.b64decode(letter["original_base64"]) == b"{nope" and "original_truncated" not in letter
    assert dead_letter_key(b"\xff" * 10_000) == b"\xff" * MAX_KEY_BYTES


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.one_of(st.none(), st.binary(max_size=300)), value=st.one_of(st.none(), st.binary(max_size=2000)))
def test_any_bytes_either_decode_or_fail_with_a_decode_error(key, value):
    try:
        decode_record(key, value)
    except DecodeError as exc:
        assert str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(sorted(PATIENT) + ["event_id", "version", "occurred_at", "email",
                                                                  "baseline_headache_days", "language"]),
                               json_values, max_size=4))
def test_any_patient_document_either_decodes_or_fails_with_a_decode_error(changes):
    try:
        decode(json.dumps(PATIENT | changes).encode())
    except DecodeError as exc:
        assert str(exc)



def test_nesting_up_to_the_depth_limit_is_read_and_one_level_more_is_refused() -> None:
    from shared.codec import loads_bounded
    from shared.limits import MAX_JSON_DEPTH

    def nested(containers: int) -> bytes:  # the top-level object and arrays inside it
        return b'{"x": ' + b"[" * (containers - 1) + b"]" * (containers - 1) + b"}"

    assert loads_bounded(nested(MAX_JSON_DEPTH), what="record", limit=MAX_RECORD_BYTES)["x"]
    with pytest.raises(DecodeError, match="nested deeper"):
        loads_bounded(nested(MAX_JSON_DEPTH + 1), what="record", limit=MAX_RECORD_BYTES)
    assert loads_bounded(b'{"x": "' + b"[" * 100 + b'"}', what="record", limit=MAX_RECORD_BYTES)  # brackets in text
