"""The survey's conversation rules, driven the way the app drives them: parse, then decide."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

from services.survey import domain
from services.survey.parsing import parse_reply
from shared.events import CheckinCompleted, CheckinDue, CheckinExpired, ClinicianAlert, ConsentChanged, PatientEnrolled
from shared.notifier_events import OutboundRequested

NOW = datetime(2026, 3, 12, 22, 0, tzinfo=timezone.utc)
TREATED = datetime(2026, 3, 10, 17, 0, tzinfo=timezone.utc)
_sids = count(1)


def enrolled(baseline: int | None = None) -> domain.PatientFile:
    snapshot = PatientEnrolled(patient_id="p-1", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
                               timezone="America/Los_Angeles", sms_consent=True, baseline_headache_days=baseline)
    return domain.on_patient(domain.PatientFile(patient_id="p-1"), snapshot).file


def due(kind: str = "side_effects", *, cycle: int = 1, day: int = 2, checkin_id: str | None = None,
        at: datetime | None = None) -> CheckinDue:
    return CheckinDue(patient_id="p-1", clinic_id="rocklin", treatment_id=f"t-{cycle}", cycle=cycle, day=day,
                      due_at=at or TREATED + timedelta(days=day), kind=kind,
                      checkin_id=checkin_id or f"c-{cycle}-{day}")


def opened(file: domain.PatientFile, event: CheckinDue) -> domain.PatientFile:
    return domain.on_checkin_due(file, event).file


def reply(file: domain.PatientFile, text: str, sid: str | None = None) -> domain.Outcome:
    """As the app handles a reply: red flags at once (inbound path), then the conversation."""
    sid = sid or f"SM{next(_sids):032d}"
    question = file.open.question if file.open else None
    at_once = domain.red_flags_at_any_time(file, text, sid, NOW)
    outcome = domain.on_reply(file, text, sid, parse_reply(text, question), NOW)
    return domain.Outcome(file=outcome.file, emit=[*at_once, *outcome.emit])


def alerts(outcome: domain.Outcome) -> list[ClinicianAlert]:
    return [e for e in outcome.emit if isinstance(e, ClinicianAlert)]


def outbound(outcome: domain.Outcome) -> list[str]:
    return [e.kind for e in outcome.emit if isinstance(e, OutboundRequested)]


def of_type(outcome: domain.Outcome, cls: type) -> list:
    return [e for e in outcome.emit if isinstance(e, cls)]


def conversation(file: domain.PatientFile, *texts: str) -> tuple[domain.PatientFile, list[domain.Outcome]]:
    outcomes = []
    for text in texts:
        outcome = reply(file, text)
        outcomes.append(outcome)
        file = outcome.file
    return file, outcomes


def headache_checkin(file: domain.PatientFile, days: int, *, cycle: int, day: int,
                     at: datetime | None = None) -> tuple[domain.PatientFile, domain.Outcome]:
    file = opened(file, due("headache_frequency", cycle=cycle, day=day,
                           at=at or TREATED + timedelta(weeks=12 * (cycle - 1), days=day)))
    file, outcomes = conversation(file, str(days), "3")
    return file, outcomes[-1]


# --- red flags and safety ------------------------------------------------------------


def test_red_flag_words_outside_any_checkin_raise_an_urgent_alert_and_a_safety_reply_first():
    outcome = reply(enrolled(), "can't swallow right since Tuesday")
    [alert] = alerts(outcome)
    assert alert.severity == "urgent" and alert.reasons == ["dysphagia"]
    assert alert.evidence["reply"] == "can't swallow right since Tuesday"
    first = outcome.emit[0]
    assert isinstance(first, OutboundRequested) and first.kind == "safety_reply" and first.urgent


def test_a_yes_to_q1_completes_the_checkin_and_raises_an_urgent_alert():
    file = opened(enrolled(), due())
    outcome = reply(file, "YES")
    [alert] = alerts(outcome)
    assert alert.severity == "urgent" and alert.evidence["checkin_id"] == "c-1-2"
    [completed] = of_type(outcome, CheckinCompleted)
    assert completed.answers["red_flags"] is True and completed.raw_replies == ["YES"]
    assert outcome.file.open is None


def test_a_negated_symptom_outside_a_checkin_is_a_routine_message_not_an_emergency():
    [alert] = alerts(reply(enrolled(), "no trouble swallowing, thanks"))
    assert alert.severity == "routine" and alert.reasons == ["patient_message"]


def test_a_red_flag_inside_the_q2_answer_escalates_and_still_records_the_answer():
    file, _ = conversation(opened(enrolled(), due()), "no")
    outcome = reply(file, "2s and now trouble swallowing")
    severities = sorted(a.severity for a in alerts(outcome))
    assert severities == ["high", "urgent"]
    [completed] = of_type(outcome, CheckinCompleted)
    assert [e["reason"] for e in completed.answers["effects"]] == ["ptosis"]
    assert outbound(outcome)[0] == "safety_reply"


# --- the side-effect check-in ---------------------------------------------------------


def test_no_then_2s_asks_q2_then_raises_a_high_alert_and_completes_the_checkin():
    file, (after_no, after_2s) = conversation(opened(enrolled(), due()), "No", "2s")
    assert outbound(after_no) == ["checkin_q2"] and not alerts(after_no)
    [alert] = alerts(after_2s)
    assert alert.severity == "high" and alert.reasons == ["ptosis"]
    [completed] = of_type(after_2s, CheckinCompleted)
    assert completed.answers == {"red_flags": False, "effects": [{"code": 2, "reason": "ptosis", "severity": "severe"}]}
    assert completed.raw_replies == ["No", "2s"] and outbound(after_2s) == ["checkin_thanks"]
    assert file.open is None


def test_mild_effects_are_routine_and_none_raises_nothing():
    _, (_, mild) = conversation(opened(enrolled(), due()), "no", "1m")
    assert [a.severity for a in alerts(mild)] == ["routine"]
    _, (_, none) = conversation(opened(enrolled(), due()), "no", "0")
    assert alerts(none) == [] and of_type(none, CheckinCompleted)


def test_an_unreadable_reply_gets_one_reprompt_then_goes_to_the_clinic_as_unparsed_reply():
    file, (first, second) = conversation(opened(enrolled(), due()), "banana", "what??")
    assert outbound(first) == ["reprompt"] and not alerts(first)
    assert of_type(first, OutboundRequested)[0].context == {"question": "q1_red_flags"}
    [alert] = alerts(second)
    assert alert.severity == "routine" and alert.reasons == ["unparsed_reply"] and alert.evidence["reply"] == "what??"
    assert outbound(second) == []


def test_the_same_reply_redelivered_changes_nothing_and_the_same_cause_gives_the_same_alert_id():
    file = opened(enrolled(), due())
    first = reply(file, "YES", sid="SM1")
    assert reply(first.file, "YES", sid="SM1").emit == []
    again_from_old_state = reply(file, "YES", sid="SM1")
    assert alerts(again_from_old_state)[0].alert_id == alerts(first)[0].alert_id
    assert [e.event_id for e in again_from_old_state.emit] == [e.event_id for e in first.emit]


# --- headache check-ins ---------------------------------------------------------------


def test_headache_checkin_asks_q3b_and_completes_with_both_numbers_keyed_by_cycle_and_day():
    file = opened(enrolled(), due("headache_frequency", day=28))
    file, (q3a, q3b) = conversation(file, "about 12 days", "4")
    assert outbound(q3a) == ["checkin_q3b"]
    [completed] = of_type(q3b, CheckinCompleted)
    assert completed.answers == {"headache_days": 12, "medication_days": 4}
    assert file.readings["1:28"].days == 12


def test_non_response_after_two_cycles_raises_one_review_alert_with_the_figures():
    file = enrolled(baseline=20)
    file, cycle1 = headache_checkin(file, 18, cycle=1, day=77)
    assert not alerts(cycle1)
    file, cycle2 = headache_checkin(file, 16, cycle=2, day=28)
    [alert] = [a for a in alerts(cycle2) if "non_response" in a.reasons]
    assert alert.severity == "review"
    assert alert.evidence["baseline_headache_days"] == 20 and alert.evidence["latest_headache_days"] == 16
    assert alert.evidence["reduction"] == 0.2 and alert.evidence["cycles_reported"] == 2
    file, later_same_cycle = headache_checkin(file, 17, cycle=2, day=56)
    assert not [a for a in alerts(later_same_cycle) if "non_response" in a.reasons]


def test_a_reduction_of_thirty_percent_or_more_is_a_response():
    file, _ = headache_checkin(enrolled(baseline=20), 15, cycle=1, day=77)
    _, outcome = headache_checkin(file, 14, cycle=2, day=77)
    assert not [a for a in alerts(outcome) if "non_response" in a.reasons]


def test_a_poor_reduction_within_the_first_cycle_is_not_judged_yet():
    file, _ = headache_checkin(enrolled(baseline=20), 19, cycle=1, day=28)
    _, outcome = headache_checkin(file, 19, cycle=1, day=56)
    assert not alerts(outcome)


def test_three_consecutive_months_under_fifteen_days_are_reported_once():
    file = enrolled(baseline=22)
    file, first = headache_checkin(file, 12, cycle=1, day=28)
    file, second = headache_checkin(file, 10, cycle=1, day=56)
    assert not alerts(first) and not alerts(second)
    file, third = headache_checkin(file, 9, cycle=1, day=77)
    [alert] = alerts(third)
    assert alert.severity == "review" and alert.reasons == ["below_chronic_threshold"]
    assert alert.evidence["headache_days"] == [12, 10, 9]
    _, fourth = headache_checkin(file, 8, cycle=2, day=28)
    assert not [a for a in alerts(fourth) if "below_chronic_threshold" in a.reasons]


def test_a_month_of_fifteen_days_or_a_missing_month_starts_the_count_again():
    file = enrolled()
    file, _ = headache_checkin(file, 12, cycle=1, day=28)
    file, _ = headache_checkin(file, 16, cycle=1, day=56)
    file, _ = headache_checkin(file, 9, cycle=1, day=77)
    file, fourth = headache_checkin(file, 9, cycle=2, day=28)
    assert not alerts(fourth)
    gap = TREATED + timedelta(weeks=40)
    _, after_gap = headache_checkin(file, 9, cycle=3, day=28, at=gap)
    assert not alerts(after_gap)


# --- keywords and consent -------------------------------------------------------------


def test_stop_closes_the_checkin_revokes_consent_and_confirms_once():
    file = opened(enrolled(), due())
    outcome = reply(file, "  stop ")
    [consent] = of_type(outcome, ConsentChanged)
    assert consent.granted is False and consent.channel == "sms" and consent.source == "sms_keyword"
    assert outbound(outcome) == ["opt_out_confirmation"]
    assert outcome.file.opted_out and outcome.file.open is None


def test_a_second_stop_sends_nothing_at_all():
    stopped = reply(enrolled(), "STOP").file
    assert reply(stopped, "OPT OUT").emit == []
    assert reply(stopped, "unsubscribe").emit == []


def test_start_after_stop_restores_consent_and_start_when_subscribed_only_confirms():
    stopped = reply(enrolled(), "STOP").file
    restored = reply(stopped, "Start")
    assert [c.granted for c in of_type(restored, ConsentChanged)] == [True]
    assert not restored.file.opted_out and outbound(restored) == ["opt_in_confirmation"]
    again = reply(restored.file, "UNSTOP")
    assert of_type(again, ConsentChanged) == [] and outbound(again) == ["opt_in_confirmation"]


def test_help_answers_with_the_help_text_and_leaves_the_checkin_open():
    file = opened(enrolled(), due())
    outcome = reply(file, "HELP")
    assert outbound(outcome) == ["help"] and outcome.file.open == file.open


def test_a_checkin_due_for_a_patient_who_opted_out_opens_nothing():
    stopped = reply(enrolled(), "STOP").file
    assert domain.on_checkin_due(stopped, due()).file.open is None


def test_consent_revoked_elsewhere_closes_the_open_checkin():
    file = opened(enrolled(), due())
    revoked = ConsentChanged(patient_id="p-1", clinic_id="rocklin", channel="sms", granted=False, source="provider_21610")
    after = domain.on_consent(file, revoked).file
    assert after.opted_out and after.open is None


# --- opening, superseding, expiring ---------------------------------------------------


def test_a_new_checkin_supersedes_an_unanswered_one_and_the_clinic_sees_the_old_one_unanswered():
    file = opened(enrolled(), due(day=2))
    outcome = domain.on_checkin_due(file, due(day=7))
    assert outcome.file.open.checkin_id == "c-1-7"
    [alert] = alerts(outcome)
    assert alert.reasons == ["no_reply"] and alert.evidence == {
        "checkin_id": "c-1-2", "kind": "side_effects", "question": "q1_red_flags", "answers": {}, "superseded_by": "c-1-7"}
    expired = domain.on_checkin_expired(file, CheckinExpired(
        patient_id="p-1", clinic_id="rocklin", treatment_id="t-1", cycle=1, due_at=NOW, day=4, checkin_id="c-1-2"), NOW)
    assert alerts(expired)[0].alert_id == alert.alert_id


def test_an_expired_checkin_closes_with_a_routine_no_reply_and_a_stale_expiry_is_ignored():
    file = opened(enrolled(), due())
    expiry = CheckinExpired(patient_id="p-1", clinic_id="rocklin", treatment_id="t-1", cycle=1, due_at=NOW, day=4, checkin_id="c-1-2")
    outcome = domain.on_checkin_expired(file, expiry, NOW)
    assert [a.severity for a in alerts(outcome)] == ["routine"] and outcome.file.open is None
    assert domain.on_checkin_expired(outcome.file, expiry, NOW).emit == []


def test_a_checkin_due_opens_the_checkin_and_asks_its_first_question():
    side_effects = domain.on_checkin_due(enrolled(), due())
    headache = domain.on_checkin_due(enrolled(), due("headache_frequency", day=28))
    assert outbound(side_effects) == ["checkin_q1"] and side_effects.file.open.question == "q1_red_flags"
    assert outbound(headache) == ["checkin_q3a"] and headache.file.open.question == "q3a_headache_days"
    [ask] = of_type(side_effects, OutboundRequested)
    assert (ask.patient_id, ask.clinic_id, ask.urgent) == ("p-1", "rocklin", False)


def test_a_redelivered_checkin_due_asks_again_under_the_same_key_only_while_nothing_was_answered():
    first = domain.on_checkin_due(enrolled(), due())
    again = domain.on_checkin_due(first.file, due())
    keys = [[e.message_key for e in of_type(o, OutboundRequested)] for o in (first, again)]
    assert keys[0] == keys[1] and len(keys[0]) == 1
    in_q2, _ = conversation(first.file, "no")
    assert domain.on_checkin_due(in_q2, due()).emit == []


def test_a_patient_who_opted_out_gets_no_conversation_but_the_notifier_still_hears_of_the_question():
    stopped, _ = conversation(enrolled(), "STOP")
    outcome = domain.on_checkin_due(stopped, due())
    assert outcome.file.open is None and outbound(outcome) == ["checkin_q1"]


def test_a_checkin_due_before_the_patient_snapshot_still_names_the_clinic():
    outcome = domain.on_checkin_due(domain.PatientFile(patient_id="p-1"), due())
    assert [e.clinic_id for e in of_type(outcome, OutboundRequested)] == ["rocklin"]


def test_a_redelivered_checkin_due_neither_resets_nor_reopens_the_checkin():
    file = opened(enrolled(), due())
    in_q2, _ = conversation(file, "no")
    assert domain.on_checkin_due(in_q2, due()).file.open.question == "q2_common_effects"
    done, _ = conversation(in_q2, "0")
    assert domain.on_checkin_due(done, due()).file.open is None


def test_a_message_outside_a_checkin_goes_to_the_clinic_as_routine():
    [alert] = alerts(reply(enrolled(), "can I move my appointment to Friday?"))
    assert alert.severity == "routine" and alert.reasons == ["patient_message"]


def test_red_flag_words_are_escalated_at_once_and_the_conversation_only_closes_q1():
    file = opened(enrolled(), due())
    text = "trouble breathing since this morning"
    at_once = domain.red_flags_at_any_time(file, text, "SM9", NOW)
    outcome = domain.on_reply(file, text, "SM9", parse_reply(text, "q1_red_flags"), NOW)
    assert [getattr(e, "kind", None) or e.severity for e in at_once] == ["safety_reply", "urgent"]
    assert alerts(outcome) == [] and outbound(outcome) == []
    assert of_type(outcome, CheckinCompleted)[0].answers["red_flag_reasons"] == ["dyspnea"]


def test_a_yes_to_q1_without_red_flag_words_is_escalated_by_the_conversation():
    file = opened(enrolled(), due())
    assert domain.red_flags_at_any_time(file, "yes", "SM11", NOW) == []
    outcome = domain.on_reply(file, "yes", "SM11", parse_reply("yes", "q1_red_flags"), NOW)
    assert outbound(outcome) == ["safety_reply"] and [a.severity for a in alerts(outcome)] == ["urgent"]


def test_a_message_without_red_flag_words_escalates_nothing_at_once():
    assert domain.red_flags_at_any_time(enrolled(), "never had any choking or blurry eyes", "SM12", NOW) == []


def test_a_clinic_may_set_its_own_response_threshold():
    strict = domain.ClinicRules(non_response_reduction=0.5)
    file, _ = headache_checkin(enrolled(baseline=20), 15, cycle=1, day=77)
    file = opened(file, due("headache_frequency", cycle=2, day=77, at=TREATED + timedelta(weeks=12, days=77)))
    file, _ = conversation(file, "12")
    outcome = domain.on_reply(file, "2", "SM-strict", parse_reply("2", file.open.question), NOW, rules=strict)
    [alert] = [a for a in alerts(outcome) if "non_response" in a.reasons]
    assert alert.evidence["reduction"] == 0.4 and alert.evidence["threshold"] == 0.5


# --- the phone index ------------------------------------------------------------------


def snapshot(phone: str, patient_id: str = "p-1") -> PatientEnrolled:
    return PatientEnrolled(patient_id=patient_id, clinic_id="rocklin", first_name="Ana", phone=phone,
                           timezone="America/Los_Angeles", language="es", sms_consent=True)


def test_a_new_phone_number_points_to_the_patient_and_the_old_one_no_longer_does():
    moved = snapshot("+19165550999")
    assert domain.phones_to_reindex("+19165550123", moved) == ["+19165550999", "+19165550123"]
    assert domain.phones_to_reindex("+19165550999", moved) == ["+19165550999"]
    assert domain.index_phone({"sids": ["SM1"]}, "+19165550999", moved) == {
        "sids": ["SM1"], "patient_id": "p-1", "clinic_id": "rocklin", "language": "es"}
    old = {"patient_id": "p-1", "clinic_id": "rocklin", "language": "es", "sids": ["SM2"]}
    assert domain.index_phone(old, "+19165550123", moved) == {"sids": ["SM2"]}


def test_a_number_now_belonging_to_someone_else_is_not_released_by_the_previous_owner():
    taken = {"patient_id": "p-2", "clinic_id": "rocklin", "language": "en"}
    assert domain.index_phone(taken, "+19165550123", snapshot("+19165550999", "p-1")) == taken
