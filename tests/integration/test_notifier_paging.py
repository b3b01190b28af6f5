"""Escalation pages on the real broker, the fake Twilio server and aiosmtpd: every clinician
named in an ``alert.escalated`` gets one SMS and one email, at 3 a.m. as at noon, once even
when the record is delivered twice, and the clinic's escalation phone joins from level 3."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.ack_codes import ack_code
from shared.events import AlertEscalated, ClinicianAlert, MessageSent, PatientEnrolled
from tests.support.kafka import eventually

CLINICS = str(Path(__file__).parents[1] / "data" / "clinics_paging.yaml")
NIGHT = datetime(2026, 11, 26, 11, 0, tzinfo=timezone.utc)  # 03:00 in Rocklin: outside any send window
LEE, PATEL, ESCALATION = "+19165550101", "+19165550102", "+19165550199"
PATIENT_PHONE = "+19165550123"
EVERYONE = ["lee", "patel", "okafor"]


def step(level: int, repeat: int = 0) -> AlertEscalated:
    return AlertEscalated(event_id=f"esc-{level}-{repeat}", alert_id="a-night", patient_id="p-ana", clinic_id="rocklin",
                          level=level, repeat=repeat, notified=EVERYONE, escalated_at=NIGHT + timedelta(minutes=15 + 30 * (level - 2)))


def body(message) -> str:  # noqa: ANN001
    return message.get_payload(0).get_payload(decode=True).decode()


async def test_an_escalation_pages_every_named_clinician_once_by_sms_and_email_at_night_even_when_delivered_twice(
    start_worker, publisher, topics, watch, fake_twilio, smtp
):
    notifier = await start_worker("notifier", CYCLECARE_CLINICS=CLINICS, CYCLECARE_CLOCK_START=NIGHT.isoformat())
    deliveries = await watch(topics.deliveries)
    await publisher.send(topics.patients, "p-ana", PatientEnrolled(
        patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone=PATIENT_PHONE,
        timezone="America/Los_Angeles", sms_consent=True))
    contacts = await watch(f"{topics.namespace}-notifier-contacts-changelog")
    await eventually(lambda: contacts.records, what="the notifier to know the patient")
    await publisher.send(topics.alerts, "p-ana", ClinicianAlert(
        alert_id="a-night", patient_id="p-ana", clinic_id="rocklin", severity="urgent", reasons=["dysphagia"],
        summary="Patient reports a red-flag symptom after treatment: Trouble swallowing.", raised_at=NIGHT))
    [alert_sms] = await eventually(lambda: fake_twilio.to(LEE), what="the alert SMS to the on-call clinician")
    code = ack_code("a-night")
    assert alert_sms.body.endswith(f"Reply ACK {code} to take this.")

    await publisher.send(topics.alert_actions, "p-ana", step(2))
    await publisher.send(topics.alert_actions, "p-ana", step(2))  # the broker redelivers it
    await publisher.send(topics.alert_actions, "p-ana", step(3))  # after both copies, on the same partition
    await eventually(lambda: fake_twilio.to(ESCALATION), what="the level-3 page to the escalation phone")
    await eventually(lambda: len(fake_twilio.to(PATEL)) >= 2 and len(smtp.to("okafor@example.org")) >= 2,
                     what="every level-2 and level-3 page")
    await eventually(lambda: len({e.message_key for e in deliveries.events(topics.deliveries)
                                  if isinstance(e, MessageSent) and e.kind == "page"}) >= 11, what="every page recorded sent")  # 5 at level 2, 6 at level 3

    assert [len(fake_twilio.to(p)) for p in (LEE, PATEL, ESCALATION)] == [3, 2, 1]  # Lee also had the alert itself
    assert [len(smtp.to(a)) for a in ("lee@example.org", "patel@example.org", "okafor@example.org")] == [3, 2, 2]
    assert fake_twilio.requests == 6
    level_two = fake_twilio.to(PATEL)[0].body
    assert "NOT TAKEN URGENT Rocklin Headache Clinic: Ana (p-ana)" in level_two and "Trouble swallowing" in level_two
    assert "Raised 15 min ago. Level 2. Paged: Dr. Lee." in level_two and level_two.endswith(f"Reply ACK {code} to take this.")
    assert "Level 3. Paged: Dr. Lee, Dr. Patel, Dr. Okafor." in fake_twilio.to(ESCALATION)[0].body
    page_mail = smtp.to("okafor@example.org")[0]
    assert "[NOT TAKEN, level 2]" in page_mail["Subject"] and f"text ACK {code}" in body(page_mail)
    assert "botox" not in (level_two + body(page_mail)).lower()
    log = notifier.output()
    assert not any(phone in log for phone in (LEE, PATEL, ESCALATION, PATIENT_PHONE)) and "@example.org" not in log
