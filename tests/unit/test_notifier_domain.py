"""Who gets which message on which channel: consent, unknown patients, alert routing."""

from __future__ import annotations

from datetime import datetime, timezone

from services.notifier.delivery import backoff
from services.notifier.domain import Contact, Outgoing, Refused, Suppressed, on_alert, on_due
from shared.clinics import load_clinics
from shared.events import ClinicianAlert, ReminderDue

CLINIC = load_clinics(None).get("rocklin")
ANA = Contact(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
              email="ana@example.org", sms_consent=True, email_consent=True)
DUE = ReminderDue(event_id="due-1", patient_id="p-ana", clinic_id="rocklin", treatment_id="t-1", cycle=1,
                  due_at=datetime(2026, 5, 19, 17, tzinfo=timezone.utc), day=70)


def alert(severity: str) -> ClinicianAlert:
    return ClinicianAlert(alert_id=f"a-{severity}", patient_id="p-ana", clinic_id="rocklin", severity=severity,
                          reasons=["dysphagia"], summary="Reported new trouble swallowing",
                          raised_at=datetime(2026, 5, 19, 17, tzinfo=timezone.utc))


def test_a_reminder_for_an_unknown_patient_is_refused_naming_the_patient():
    [decision] = on_due(DUE, None, CLINIC)
    assert isinstance(decision, Refused) and decision.patient_id == "p-ana" and "unknown patient" in decision.error


def test_sms_consent_sends_by_sms_and_email_is_the_fallback_when_sms_is_opted_out():
    [by_sms] = on_due(DUE, ANA, CLINIC)
    [by_email] = on_due(DUE, ANA.model_copy(update={"sms_opted_out": True}), CLINIC)
    assert (by_sms.channel, by_email.channel) == ("sms", "email")
    assert by_sms.message_key == by_email.message_key == "due-1:booking_reminder"


def test_no_consent_on_any_channel_is_suppressed_with_the_reason():
    [decision] = on_due(DUE, ANA.model_copy(update={"sms_consent": False, "email_consent": False}), CLINIC)
    assert isinstance(decision, Suppressed) and decision.reason == "no consent for any channel"


def test_an_urgent_alert_goes_by_sms_and_email_to_the_on_call_clinician_as_urgent():
    decisions = on_alert(alert("urgent"), ANA, CLINIC)
    assert {(d.channel, d.to) for d in decisions} == {("sms", "+19165550101"), ("email", "lee@example.org")}
    assert all(isinstance(d, Outgoing) and d.urgent and d.audience == "clinician" for d in decisions)


def test_a_high_alert_goes_by_email_only_and_routine_ones_wait_for_the_digest():
    assert [d.channel for d in on_alert(alert("high"), ANA, CLINIC)] == ["email"]
    assert on_alert(alert("routine"), ANA, CLINIC) == [] and on_alert(alert("review"), ANA, CLINIC) == []


def test_backoff_grows_exponentially_is_capped_and_is_the_same_for_the_same_message():
    waits = [backoff(n, "a3f0:key").total_seconds() for n in range(12)]
    assert waits == sorted(waits) and waits[-1] <= 300 and waits[1] > waits[0]
    assert backoff(3, "a3f0:key") == backoff(3, "a3f0:key")
