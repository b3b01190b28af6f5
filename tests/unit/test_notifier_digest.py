"""The daily digest: which alerts go in it, when it is due, and who gets it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from services.notifier.digest import carried_over, digest_messages, due_day, line_for_alert, line_for_lifecycle
from services.notifier.paging import known_from, with_action
from services.notifier.domain import Contact
from services.notifier.rendering import render
from shared.clinics import load_clinics
from shared.events import AlertAcknowledged, AlertResolved, ClinicianAlert

CLINIC = next(iter(load_clinics(None)))
ANA = Contact(patient_id="p-ana", clinic_id=CLINIC.id, first_name="Ana", phone="+19165550123", sms_consent=True)


def alert(severity: str, **extra: object) -> ClinicianAlert:
    fields = dict(alert_id=f"a-{severity}", patient_id="p-ana", clinic_id=CLINIC.id, severity=severity,
                  reasons=["unparsed_reply"], summary="Reply could not be read",
                  raised_at=datetime(2026, 3, 12, 18, 0, tzinfo=timezone.utc)) | extra
    return ClinicianAlert(**fields)


def test_routine_and_review_alerts_go_to_the_digest_and_urgent_ones_go_with_their_lifecycle():
    assert line_for_alert(alert("routine"), ANA, CLINIC).item["first_name"] == "Ana"
    assert line_for_alert(alert("review"), ANA, CLINIC) is not None
    assert line_for_alert(alert("urgent"), ANA, CLINIC) is None and line_for_alert(alert("high"), ANA, CLINIC) is None
    known = known_from(alert("urgent"), ANA, CLINIC)
    assert line_for_lifecycle(known, alert("urgent"), CLINIC).item["status"] == "open"
    assert line_for_lifecycle(known_from(alert("routine"), ANA, CLINIC), alert("routine"), CLINIC) is None


def test_the_digest_says_who_took_each_urgent_alert_how_long_it_took_and_how_it_was_resolved():
    raised = alert("urgent")
    taken = AlertAcknowledged(alert_id=raised.alert_id, patient_id="p-ana", clinic_id=CLINIC.id, by="lee", via="sms",
                              acknowledged_at=raised.raised_at + timedelta(minutes=23))
    closed = AlertResolved(alert_id=raised.alert_id, patient_id="p-ana", clinic_id=CLINIC.id, by="patel", via="web",
                           outcome="advised_emergency_care", resolved_at=raised.raised_at + timedelta(hours=1))
    known = with_action(known_from(raised, ANA, CLINIC), taken)
    line = line_for_lifecycle(known, taken, CLINIC)
    assert (line.item["status"], line.item["acknowledged_by"], line.item["ack_minutes"]) == ("acknowledged", "Dr. Lee", 23)
    assert carried_over(line.item)
    done = line_for_lifecycle(with_action(known, closed), closed, CLINIC)
    assert not carried_over(done.item) and done.item_key == line.item_key and done.event_id != line.event_id
    open_line = line_for_lifecycle(known_from(alert("urgent", alert_id="a-2"), ANA, CLINIC), raised, CLINIC)
    [first, *_] = digest_messages(CLINIC, date(2026, 3, 12), {"a": done.item, "b": open_line.item})
    text = render("digest", "email", "en", first.context).text
    assert "taken by Dr. Lee after 23 min; resolved by Dr. Patel (advised emergency care)" in text
    assert "OPEN: nobody has taken it" in text


def test_an_unanswered_checkin_reaches_the_digest_through_the_surveys_no_reply_alert():
    # only the survey knows whether a check-in was answered: the scheduler's checkin.expired
    # fires for every check-in and is not, by itself, news for the clinic
    no_reply = alert("routine", reasons=["no_reply"], evidence={"checkin_id": "c-7"})
    assert line_for_alert(no_reply, ANA, CLINIC) is not None


def test_the_digest_is_due_from_the_clinics_digest_hour_in_its_own_timezone():
    tz = ZoneInfo(CLINIC.timezone)
    hour = CLINIC.rules.digest_hour
    assert due_day(CLINIC, datetime(2026, 3, 12, hour, 0, tzinfo=tz)) == date(2026, 3, 12)
    assert due_day(CLINIC, datetime(2026, 3, 12, hour, 0, tzinfo=tz) - timedelta(minutes=1)) in (None, date(2026, 3, 11))
    assert due_day(CLINIC, datetime(2026, 3, 12, 23, 59, tzinfo=tz)) == date(2026, 3, 12)


def test_every_clinician_with_an_email_gets_the_digest_once_a_day_and_an_empty_one_is_not_sent():
    line = line_for_alert(alert("routine"), ANA, CLINIC)
    messages = digest_messages(CLINIC, date(2026, 3, 12), {line.item_key: line.item})
    assert {m.to for m in messages} == {c.email for c in CLINIC.clinicians if c.email}
    assert digest_messages(CLINIC, date(2026, 3, 12), {line.item_key: line.item})[0].message_key == messages[0].message_key
    assert digest_messages(CLINIC, date(2026, 3, 12), {}) == []


def test_the_digest_email_renders_with_the_lines_and_no_drug_name():
    line = line_for_alert(alert("review"), ANA, CLINIC)
    [first, *_] = digest_messages(CLINIC, date(2026, 3, 12), {line.item_key: line.item})
    rendered = render("digest", "email", "en", first.context)
    assert "Ana (p-ana)" in rendered.text and "botox" not in rendered.text.lower()
