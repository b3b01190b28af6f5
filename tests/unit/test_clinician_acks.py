"""Clinicians taking alerts by SMS: reading "ACK 48", and answering it without ever guessing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.survey.acks import AckCommand, answer, note_action, note_alert, overtaken, parse_ack, seen_in
from shared.ack_codes import ack_code, distinguishing
from shared.clinics import load_clinics
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved
from shared.survey_events import AlertNoted

CLINICS = load_clinics(Path(__file__).parents[1] / "data" / "clinics_paging.yaml")
ROCKLIN, SEVILLA = CLINICS.get("rocklin"), CLINICS.get("sevilla")
LEE, PATEL = ROCKLIN.clinician("lee"), ROCKLIN.clinician("patel")
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(minutes=17)
_sids = itertools.count()


@pytest.mark.parametrize(("text", "code"), [
    ("ACK 48", "48"), ("ack48", "48"), ("Ack  48", "48"), ("OK 48", "48"), ("ok 48", "48"), ("okay 48", "48"),
    (" ack 48 ", "48"), ("ACK #48", "48"), ("ACK: 48", "48"), ("Ack 48, calling her now", "48"), ("ACK 481", "481"),
    ("ACK", None), ("ok", None), ("Ok!", None), ("ACK.", None), ("  ack  ", None),
])
def test_an_ack_reply_is_read_in_any_case_and_spacing(text: str, code: str | None) -> None:
    assert parse_ack(text) == AckCommand(code=code)


@pytest.mark.parametrize("text", [
    "yes", "no", "48", "STOP", "acknowledged", "okay thanks", "ACK48x", "back 48", "ok 48x", "", "ACK 1234567890123",
])
def test_anything_else_is_not_an_ack(text: str) -> None:
    assert parse_ack(text) is None


def noted(alert_id: str, *, clinic=ROCKLIN, initial: str = "A.", minutes_ago: int = 17, alerted=("lee",)) -> AlertNoted:
    return AlertNoted(alert_id=alert_id, patient_id=f"p-{alert_id}", clinic_id=clinic.id, severity="urgent",
                      raised_at=NOW - timedelta(minutes=minutes_ago), initial=initial, alerted=list(alerted))


def view_of(*alerts: AlertNoted) -> dict:
    view: dict = {}
    for alert in alerts:
        view = note_alert(view, alert, NOW)
    return view


def reply(view: dict, text: str, people=((ROCKLIN, LEE),)):
    return answer(view, parse_ack(text), list(people), NOW, sid=f"SM{next(_sids)}")


def ack(alert_id: str, by: str, minutes_ago: int) -> AlertAcknowledged:
    return AlertAcknowledged(alert_id=alert_id, patient_id=f"p-{alert_id}", clinic_id="rocklin", by=by, via="web",
                             acknowledged_at=NOW - timedelta(minutes=minutes_ago))


def test_ack_with_the_alerts_code_takes_it_and_names_the_initial_and_age():
    decided = reply(view_of(noted("a1")), f"ACK {ack_code('a1')}")
    assert decided.acknowledged is not None
    assert (decided.acknowledged.alert_id, decided.acknowledged.by, decided.acknowledged.via) == ("a1", "lee", "sms")
    assert decided.acknowledged.acknowledged_at == NOW and decided.acknowledged.patient_id == "p-a1"
    assert decided.reply["outcome"] == "taken"
    assert decided.reply["choices"] == [{"initial": "A.", "age_minutes": 17, "code": ack_code("a1")}]


def test_a_second_ack_of_the_same_alert_says_who_took_it_and_changes_nothing():
    first = reply(view_of(noted("a1")), f"ack{ack_code('a1')}")
    second = reply(first.view, f"OK {ack_code('a1')}", people=[(ROCKLIN, PATEL)])
    assert second.acknowledged is None and second.view == first.view
    assert (second.reply["outcome"], second.reply["by"]) == ("already_taken", "Dr. Lee")


def test_an_alert_taken_on_the_web_is_reported_as_taken_by_that_clinician():
    view = note_action(view_of(noted("a1")), ack("a1", "patel", 5), NOW)
    decided = reply(view, f"ACK {ack_code('a1')}")
    assert decided.acknowledged is None
    assert (decided.reply["outcome"], decided.reply["by"], decided.reply["since_minutes"]) == ("already_taken", "Dr. Patel", 5)


def test_a_resolved_alert_is_reported_as_closed():
    resolved = AlertResolved(alert_id="a1", patient_id="p-a1", clinic_id="rocklin", by="patel", via="web",
                             outcome="contacted_patient", resolved_at=NOW)
    decided = reply(note_action(view_of(noted("a1")), resolved, NOW), f"ACK {ack_code('a1')}")
    assert decided.acknowledged is None and decided.reply["outcome"] == "already_resolved"


def test_an_unknown_code_gets_the_how_to_reply_and_acknowledges_nothing():
    other = next(c for c in (str(n) for n in range(10, 100)) if c != ack_code("a1"))
    decided = reply(view_of(noted("a1")), f"ACK {other}")
    assert decided.acknowledged is None and (decided.reply["outcome"], decided.reply["code"]) == ("how_to", other)


def test_another_clinics_alert_is_never_acknowledged_even_with_its_exact_code():
    view = view_of(noted("a1", clinic=SEVILLA))
    decided = reply(view, f"ACK {ack_code('a1')}")  # Dr. Lee is Rocklin's
    assert decided.acknowledged is None and decided.reply["outcome"] == "how_to"
    assert reply(view, "ACK").reply["outcome"] == "none_open"


def two_ids_sharing_a_code() -> tuple[str, str]:
    first: dict[str, str] = {}
    for n in itertools.count():
        if (code := ack_code(f"a{n}")) in first:
            return first[code], f"a{n}"
        first[code] = f"a{n}"
    raise AssertionError


def test_a_code_two_open_alerts_share_asks_which_with_longer_codes_and_the_longer_code_takes_the_right_one():
    a, b = two_ids_sharing_a_code()
    view = view_of(noted(a, initial="A.", minutes_ago=30), noted(b, initial="B.", minutes_ago=5))
    asked = reply(view, f"ACK {ack_code(a)}")
    assert asked.acknowledged is None and asked.reply["outcome"] == "which" and asked.view == view
    longer = distinguishing([b, a])
    assert asked.reply["choices"] == [{"initial": "B.", "age_minutes": 5, "code": longer[b]},
                                      {"initial": "A.", "age_minutes": 30, "code": longer[a]}]
    taken = reply(view, f"ACK {longer[a]}")
    assert taken.acknowledged is not None and taken.acknowledged.alert_id == a


def test_ack_alone_takes_the_clinicians_single_open_alert():
    view = view_of(noted("a1"), noted("a2", alerted=("patel",)))  # a2 went to Dr. Patel only
    decided = reply(view, "ACK")
    assert decided.acknowledged is not None and decided.acknowledged.alert_id == "a1"


def test_ack_alone_counts_the_alerts_a_clinician_was_paged_for():
    escalated = AlertEscalated(alert_id="a2", patient_id="p-a2", clinic_id="rocklin", level=2, notified=["lee", "patel"],
                               escalated_at=NOW)
    view = note_action(view_of(noted("a2", alerted=("patel",))), escalated, NOW)
    decided = reply(view, "ok")
    assert decided.acknowledged is not None and decided.acknowledged.alert_id == "a2"


def test_ack_alone_with_several_open_alerts_lists_them_and_takes_none():
    decided = reply(view_of(noted("a1", minutes_ago=40), noted("a2", minutes_ago=3)), "ACK")
    assert decided.acknowledged is None and decided.reply["outcome"] == "which" and decided.reply["code"] is None
    assert [c["age_minutes"] for c in decided.reply["choices"]] == [3, 40]


def test_ack_alone_with_no_open_alert_says_so():
    taken = note_action(view_of(noted("a1")), ack("a1", "patel", 1), NOW)
    assert reply(taken, "ACK").reply["outcome"] == "none_open" and reply({}, "OK").reply["outcome"] == "none_open"


def test_a_reply_that_is_not_an_ack_gets_the_how_to_reply():
    decided = reply(view_of(noted("a1")), "yes")
    assert decided.acknowledged is None and (decided.reply["outcome"], decided.reply["code"]) == ("how_to", None)


def test_an_action_that_overtakes_its_alert_is_applied_when_the_alert_arrives():
    view = note_action({}, ack("a1", "patel", 2), NOW)
    view = note_alert(view, noted("a1"), NOW)
    assert seen_in(view)["a1"].state.acknowledged_by == "patel"


def test_taken_alerts_are_forgotten_an_hour_after_and_open_ones_are_kept():
    view = note_action(view_of(noted("a1"), noted("a2")), ack("a1", "lee", 0), NOW)
    later = note_alert(view, noted("a3"), NOW + timedelta(hours=1, minutes=1))
    assert set(seen_in(later)) == {"a2", "a3"}


def test_the_acknowledgement_is_the_same_event_when_the_same_sms_is_answered_twice():
    view = view_of(noted("a1"))
    one = answer(view, parse_ack("ACK"), [(ROCKLIN, LEE)], NOW, sid="SM1")
    two = answer(view, parse_ack("ACK"), [(ROCKLIN, LEE)], NOW + timedelta(seconds=5), sid="SM1")
    assert one.acknowledged.event_id == two.acknowledged.event_id


def test_a_clinician_told_taken_hears_when_a_colleagues_earlier_ack_crossed_theirs():
    mine = reply(view_of(noted("a1")), f"ACK {ack_code('a1')}", people=[(ROCKLIN, PATEL)])
    assert mine.reply["outcome"] == "taken"
    earlier = AlertAcknowledged(alert_id="a1", patient_id="p-a1", clinic_id="rocklin", by="lee", via="sms",
                                acknowledged_at=NOW - timedelta(seconds=30))
    after = note_action(mine.view, earlier, NOW)
    notice = overtaken(mine.view, after, "a1", [(ROCKLIN, PATEL)], NOW)
    assert notice is not None and (notice["outcome"], notice["by"]) == ("taken_first", "Dr. Lee")
    assert overtaken(after, note_action(after, mine.acknowledged, NOW), "a1", [(ROCKLIN, PATEL)], NOW) is None
    assert overtaken(mine.view, after, "a1", [(ROCKLIN, LEE)], NOW) is None  # Dr. Lee was never told otherwise
