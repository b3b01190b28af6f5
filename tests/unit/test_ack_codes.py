"""The ACK code of an alert: short, derived from the alert id alone, and never a guess."""

from __future__ import annotations

import itertools

from shared.ack_codes import SHORT_LENGTH, ack_code, ack_digits, carries_code, distinguishing, matching


def two_ids_sharing_a_code() -> tuple[str, str]:
    first: dict[str, str] = {}
    for n in itertools.count():
        alert_id = f"alert-{n}"
        code = ack_code(alert_id)
        if code in first:
            return first[code], alert_id
        first[code] = alert_id
    raise AssertionError("unreachable")


def test_the_code_is_two_digits_without_a_leading_zero_and_the_same_every_time():
    codes = [ack_code(f"alert-{n}") for n in range(500)]
    assert all(len(c) == SHORT_LENGTH and c.isdigit() and c[0] != "0" for c in codes)
    assert ack_code("alert-7") == ack_code("alert-7") and len(set(codes)) > 80  # spread over 10..99


def test_only_urgent_and_high_alerts_carry_a_code():
    assert [s for s in ("urgent", "high", "routine", "review") if carries_code(s)] == ["urgent", "high"]


def test_a_code_means_the_alerts_whose_digits_start_with_it_and_one_digit_means_nothing():
    ids = [f"alert-{n}" for n in range(30)]
    assert matching(ack_code("alert-3"), ids) == [a for a in ids if ack_code(a) == ack_code("alert-3")]
    assert "alert-3" in matching(ack_digits("alert-3"), ids)
    assert matching(ack_code("alert-3")[0], ids) == [] and matching("4x", ids) == []


def test_alerts_sharing_a_short_code_get_longer_codes_that_each_mean_exactly_one_of_them():
    a, b = two_ids_sharing_a_code()
    assert matching(ack_code(a), [a, b]) == [a, b]
    codes = distinguishing([a, b])
    assert len(codes[a]) > SHORT_LENGTH and codes[a] != codes[b]
    assert matching(codes[a], [a, b]) == [a] and matching(codes[b], [a, b]) == [b]


def test_alerts_that_differ_in_their_short_codes_keep_them():
    ids = ["alert-1", "alert-2"]
    if ack_code("alert-1") != ack_code("alert-2"):
        assert distinguishing(ids) == {a: ack_code(a) for a in ids}
