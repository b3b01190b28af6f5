"""Issue 13 end to end, across the scheduler, notifier and survey on the broker, on a
simulated clock: a patient's red-flag reply raises an urgent alert that goes to the on-call
clinician; nobody takes it, so 15 simulated minutes later every clinician of the clinic is
paged; one of them answers "ACK nn" by SMS, is told it is theirs, and nobody is paged again."""

from __future__ import annotations

import re
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from shared.clock import SimulatedClock
from shared.events import AlertAcknowledged, AlertEscalated, ClinicianAlert, PatientEnrolled, TreatmentRecorded
from tests.support.kafka import eventually

CLINICS = str(Path(__file__).parents[1] / "data" / "clinics_paging.yaml")
LEE, PATEL, ESCALATION = "+19165550101", "+19165550102", "+19165550199"
PATIENT = "+19165550123"
# Two days after the treatment, mid-afternoon in California; two simulated minutes a second.
START = datetime(2026, 3, 12, 22, 0, tzinfo=timezone.utc)
SPEED = 120.0


def signed(twilio, public_url: str, phone: str, body: str) -> tuple[dict[str, str], dict[str, str]]:
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": twilio.account_sid, "From": phone,
            "To": "+19165550100", "Body": body}
    signature = RequestValidator(twilio.auth_token).compute_signature(public_url + "/twilio/sms", form)
    return form, {"X-Twilio-Signature": signature}


def pages_to(twilio, phone: str) -> list[str]:
    return [m.body for m in twilio.to(phone) if m.body.startswith("NOT TAKEN")]


async def test_an_urgent_alert_nobody_takes_pages_every_clinician_until_one_answers_ack_by_sms(
    start_worker, publisher, topics, watch, fake_twilio, smtp, worker_env
):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    env = {"CYCLECARE_CLINICS": CLINICS, "CYCLECARE_CLOCK_START": START.isoformat(),
           "CYCLECARE_CLOCK_SPEED": str(SPEED), "CYCLECARE_CLOCK_ANCHOR": str(anchor)}
    scheduler = await start_worker("scheduler", **env)
    notifier = await start_worker("notifier", **env)
    survey = await start_worker("survey", **env)
    seen = await watch(topics.alerts, topics.alert_actions, f"{topics.namespace}-survey-phones-changelog")
    public_url = worker_env["CYCLECARE_PUBLIC_URL"]

    await publisher.send(topics.patients, "p-esc", PatientEnrolled(
        patient_id="p-esc", clinic_id="rocklin", first_name="Rosa", phone=PATIENT,
        timezone="America/Los_Angeles", language="en", sms_consent=True))
    await publisher.send(topics.treatments, "p-esc", TreatmentRecorded(
        treatment_id="t-esc", patient_id="p-esc", clinic_id="rocklin", administered_on=date(2026, 3, 10)))
    await eventually(lambda: fake_twilio.to(PATIENT), what="the check-in SMS")
    await eventually(lambda: seen.records, what="the survey indexing the patient's phone")

    async with aiohttp.ClientSession() as http:
        form, headers = signed(fake_twilio, public_url, PATIENT, "YES it is hard to swallow")
        async with http.post(f"{survey.url}/twilio/sms", data=form, headers=headers) as response:
            assert response.status == 200

        [alert] = await eventually(lambda: [a for a in seen.events(topics.alerts) if isinstance(a, ClinicianAlert)],
                                   what="the urgent alert")
        assert alert.severity == "urgent"
        [first] = await eventually(lambda: [m.body for m in fake_twilio.to(LEE) if "URGENT" in m.body],
                                   what="the alert SMS to the on-call clinician")
        code = re.search(r"Reply ACK (\d+) to take this\.", first).group(1)
        assert pages_to(fake_twilio, PATEL) == []  # only the on-call clinician, at first

        # nobody answers: at +15 simulated minutes, every clinician of Rocklin is paged
        await eventually(lambda: pages_to(fake_twilio, LEE) and pages_to(fake_twilio, PATEL), timeout=60,
                         what="the level-2 page to every clinician")
        # the page may reach the fake before the test's own consumer reads alert.escalated
        [page] = await eventually(lambda: [e for e in seen.events(topics.alert_actions) if isinstance(e, AlertEscalated)],
                                  what="alert.escalated")
        assert (page.level, page.repeat, sorted(page.notified)) == (2, 0, ["lee", "okafor", "patel"])
        assert page.escalated_at >= alert.raised_at + timedelta(minutes=15)
        assert f"Reply ACK {code} to take this." in pages_to(fake_twilio, PATEL)[0]
        assert "Level 2" in pages_to(fake_twilio, PATEL)[0]
        await eventually(lambda: smtp.to("okafor@example.org"), what="the page by email to the clinician without a phone")
        assert pages_to(fake_twilio, ESCALATION) == []  # the escalation phone joins at level 3

        # Dr. Patel takes it by SMS
        form, headers = signed(fake_twilio, public_url, PATEL, f"ack {code}")
        async with http.post(f"{survey.url}/twilio/sms", data=form, headers=headers) as response:
            assert response.status == 200
        [ack] = await eventually(lambda: [e for e in seen.events(topics.alert_actions) if isinstance(e, AlertAcknowledged)],
                                 what="alert.acknowledged")
        assert (ack.by, ack.via, ack.alert_id) == ("patel", "sms", alert.alert_id)
        confirmation = await eventually(lambda: [m.body for m in fake_twilio.to(PATEL) if m.body.startswith("Taken")],
                                        what="the confirmation to Dr. Patel")
        assert "R." in confirmation[0] and "Rosa" not in confirmation[0]

    # the level-3 moment (+45 min) passes, and more: nobody is paged again
    acked_at = clock.now()
    await eventually(lambda: clock.now() > max(acked_at, alert.raised_at + timedelta(minutes=45)) + timedelta(minutes=30),
                     timeout=60, what="the level-3 deadline to pass")
    assert [(e.level, e.repeat) for e in seen.events(topics.alert_actions) if isinstance(e, AlertEscalated)] == [(2, 0)]
    assert pages_to(fake_twilio, ESCALATION) == [] and len(pages_to(fake_twilio, LEE)) == 1
    for worker in (scheduler, notifier, survey):
        assert PATIENT not in worker.output() and PATEL not in worker.output()
