"""Routine and review alerts (unanswered check-ins among them) wait for the clinic's daily
digest email; the scheduler's checkin.expired alone is not news (the check-in may have been answered)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.events import AlertAcknowledged, AlertResolved, CheckinExpired, ClinicianAlert, PatientEnrolled
from tests.support.kafka import eventually

# Rocklin's digest hour is 08:00 in Los Angeles (15:00 UTC on 2026-03-12); the simulated
# clock starts a minute before it and runs four times faster: the digest is due ~15 s in.
CLOCK = {"CYCLECARE_CLOCK_START": "2026-03-12T14:59:00+00:00", "CYCLECARE_CLOCK_SPEED": "4"}
RAISED = datetime(2026, 3, 12, 14, 0, tzinfo=timezone.utc)


def alert(alert_id: str, severity: str, summary: str, reason: str = "unparsed_reply") -> ClinicianAlert:
    return ClinicianAlert(alert_id=alert_id, patient_id="p-ana", clinic_id="rocklin", severity=severity,
                          reasons=[reason], summary=summary, raised_at=RAISED)


async def notifier_knowing_ana(start_worker, publisher, topics) -> None:  # noqa: ANN001
    await start_worker("notifier", **CLOCK)
    await publisher.send(topics.patients, "p-ana", PatientEnrolled(
        patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
        timezone="America/Los_Angeles", sms_consent=True))


async def test_routine_review_and_unanswered_checkins_reach_each_clinician_in_one_digest_at_the_digest_hour(
    start_worker, publisher, topics, smtp
):
    await notifier_knowing_ana(start_worker, publisher, topics)
    await publisher.send(topics.alerts, "p-ana", alert("a-1", "routine", "Reply could not be read twice"))
    await publisher.send(topics.alerts, "p-ana", alert("a-1", "routine", "Reply could not be read twice"))  # redelivered
    await publisher.send(topics.alerts, "p-ana", alert("a-2", "review", "Headache days down 12% after 2 cycles"))
    await publisher.send(topics.due, "p-ana", CheckinExpired(  # answered: not in the digest
        patient_id="p-ana", clinic_id="rocklin", treatment_id="t-1", cycle=1, day=2, checkin_id="c-2",
        due_at=RAISED))
    await publisher.send(topics.alerts, "p-ana", alert("a-3", "routine", "Check-in got no answer before it expired.", "no_reply"))
    assert smtp.messages == []  # nothing goes out before the digest hour

    [lee] = await eventually(lambda: smtp.to("lee@example.org"), timeout=40, what="the digest to Dr. Lee")
    await eventually(lambda: smtp.to("patel@example.org"), what="the digest to Dr. Patel")
    text = lee.get_payload(0).get_payload(decode=True).decode()
    assert "Rocklin Headache Clinic" in lee["Subject"] and "3 alerts" in lee["Subject"]
    assert text.count("Reply could not be read twice") == 1
    assert "Headache days down 12%" in text and "no answer before it expired" in text
    assert "day 2" not in text
    assert len(smtp.to("lee@example.org")) == 1 and smtp.to("ruiz@example.org") == []


async def test_the_digest_says_who_took_each_urgent_alert_after_how_long_and_which_are_still_open(
    start_worker, publisher, topics, smtp
):
    await notifier_knowing_ana(start_worker, publisher, topics)
    await publisher.send(topics.alerts, "p-ana", alert("u-1", "urgent", "Patient reports a red-flag symptom", "dysphagia"))
    await publisher.send(topics.alerts, "p-ana", alert("u-2", "urgent", "Patient reports another red-flag symptom", "vision"))
    await publisher.send(topics.alert_actions, "p-ana", AlertAcknowledged(
        alert_id="u-1", patient_id="p-ana", clinic_id="rocklin", by="lee", via="sms", acknowledged_at=RAISED + timedelta(minutes=23)))
    await publisher.send(topics.alert_actions, "p-ana", AlertResolved(
        alert_id="u-1", patient_id="p-ana", clinic_id="rocklin", by="patel", via="web", outcome="advised_emergency_care",
        resolved_at=RAISED + timedelta(minutes=50)))

    [lee] = await eventually(lambda: [m for m in smtp.to("lee@example.org") if "alerts on" in m["Subject"]], timeout=40,
                             what="the digest to Dr. Lee")
    text = lee.get_payload(0).get_payload(decode=True).decode()
    assert "Urgent (2)" in text
    assert "Patient reports a red-flag symptom - taken by Dr. Lee after 23 min; resolved by Dr. Patel (advised emergency care)" in text
    assert "Patient reports another red-flag symptom - OPEN: nobody has taken it" in text
