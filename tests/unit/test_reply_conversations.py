"""The survey acts on the whole reply (issue #9): a NO with effects answers Q1 and Q2, a
hedged yes escalates, a governed negation does not, a non-answer is asked again and never
recorded as 0, and the alert says why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

from services.survey import domain
from services.survey.parsing import parse_reply
from shared.events import CheckinCompleted, CheckinDue, ClinicianAlert, PatientEnrolled
from shared.notifier_events import OutboundRequested

NOW = datetime(2026, 11, 25, 22, 0, tzinfo=timezone.utc)
_sids = count(1)


def checkin_open(kind: str = "side_effects", language: str = "en") -> domain.PatientFile:
    snapshot = PatientEnrolled(patient_id="p-1", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
                               timezone="America/Los_Angeles", sms_consent=True, language=language)
    file = domain.on_patient(domain.PatientFile(patient_id="p-1"), snapshot).file
    day = 2 if kind == "side_effects" else 28
    due = CheckinDue(patient_id="p-1", clinic_id="rocklin", treatment_id="t-1", cycle=1, day=day,
                     due_at=NOW - timedelta(hours=1), kind=kind, checkin_id=f"c-1-{day}")
    return domain.on_checkin_due(file, due).file


def reply(file: domain.PatientFile, text: str) -> domain.Outcome:
    """As the app handles a reply: red flags at once (inbound path), then the conversation."""
    sid = f"SM{next(_sids):032d}"
    question = file.open.question if file.open else None
    at_once = domain.red_flags_at_any_time(file, text, sid, NOW)
    outcome = domain.on_reply(file, text, sid, parse_reply(text, question), NOW)
    return domain.Outcome(file=outcome.file, emit=[*at_once, *outcome.emit])


def alerts(outcome: domain.Outcome) -> list[ClinicianAlert]:
    return [e for e in outcome.emit if isinstance(e, ClinicianAlert)]


def completed(outcome: domain.Outcome) -> list[CheckinCompleted]:
    return [e for e in outcome.emit if isinstance(e, CheckinCompleted)]


def outbound(outcome: domain.Outcome) -> list[str]:
    return [e.kind for e in outcome.emit if isinstance(e, OutboundRequested)]


def test_a_no_with_a_stiff_neck_answers_q1_and_q2_and_raises_a_routine_alert() -> None:
    outcome = reply(checkin_open(), "no, though my neck is stiff")
    [done] = completed(outcome)
    assert done.answers == {"red_flags": False, "effects": [{"code": 1, "reason": "neck_pain", "severity": None}]}
    [alert] = alerts(outcome)
    assert alert.severity == "routine" and alert.reasons == ["neck_pain"]
    assert outbound(outcome) == ["checkin_thanks"] and outcome.file.open is None


def test_a_drooping_eyelid_in_words_is_a_high_alert_not_lost() -> None:
    [alert] = alerts(reply(checkin_open(), "no but my eyelid droops"))
    assert alert.severity == "high" and alert.reasons == ["ptosis"]


def test_q2_answered_in_words_completes_the_checkin() -> None:
    file = reply(checkin_open(), "no").file
    outcome = reply(file, "the injection spots are a little sore")
    [done] = completed(outcome)
    assert done.answers == {"red_flags": False, "effects": [{"code": 3, "reason": "injection_site_pain", "severity": "mild"}]}


def test_a_hedged_yes_to_q1_escalates_at_once() -> None:
    outcome = reply(checkin_open(language="es"), "puede ser")
    [alert] = alerts(outcome)
    assert alert.severity == "urgent" and outbound(outcome)[0] == "safety_reply"
    assert completed(outcome)[0].answers["red_flags"] is True


def test_weakness_in_arms_and_legs_in_spanish_is_urgent_not_a_no() -> None:
    outcome = reply(checkin_open(language="es"), "No tengo fuerza en brazos y piernas")
    [alert] = alerts(outcome)
    assert alert.severity == "urgent" and alert.reasons == ["generalized_weakness"]


def test_a_negated_list_is_a_no_and_asks_q2_without_any_alert() -> None:
    outcome = reply(checkin_open(), "never had any choking, shortness of breath or blurry eyes")
    assert alerts(outcome) == [] and outbound(outcome) == ["checkin_q2"]
    assert outcome.file.open.answers == {"red_flags": False}


def test_the_urgent_alert_says_which_words_were_read_as_which_symptom() -> None:
    [alert] = alerts(reply(checkin_open(language="es"), "se me traba al tragar"))
    assert alert.reasons == ["dysphagia"]
    assert any("tragar" in line and "-> dysphagia" in line for line in alert.evidence["findings"])


def test_the_inbound_escalation_explains_itself_the_same_way() -> None:
    file = checkin_open()
    [safety, alert] = domain.red_flag_escalation(file, "pills won't go down", "SM1", ("dysphagia",), NOW)
    assert any("-> dysphagia" in line for line in alert.evidence["findings"])


def test_a_headache_answer_that_gives_no_number_is_asked_again_and_never_recorded_as_zero() -> None:
    file = checkin_open("headache_frequency")
    first = reply(file, "can't recall")
    assert outbound(first) == ["reprompt"] and completed(first) == []
    assert "headache_days" not in first.file.open.answers
    second = reply(first.file, "no me acuerdo")
    [alert] = alerts(second)
    assert alert.reasons == ["unparsed_reply"] and "headache_days" not in second.file.open.answers


def test_headache_days_in_words_are_recorded() -> None:
    file = reply(checkin_open("headache_frequency"), "close to a dozen").file
    done = completed(reply(file, "twice a week"))[0]
    assert done.answers == {"headache_days": 12, "medication_days": 8}


def test_headache_and_medication_days_in_one_message_complete_the_checkin() -> None:
    outcome = reply(checkin_open("headache_frequency"), "about 10, and I took pills on 4")
    [done] = completed(outcome)
    assert done.answers == {"headache_days": 10, "medication_days": 4}
    assert outbound(outcome) == ["checkin_thanks"]
