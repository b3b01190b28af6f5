"""From a treatment date to a clinician's inbox, across all three services on the broker."""

from __future__ import annotations

from datetime import date

import aiohttp
from twilio.request_validator import RequestValidator

from shared.events import ClinicianAlert, PatientEnrolled, TreatmentRecorded
from tests.support.kafka import eventually

PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
# The simulated clock starts two days after the treatment, mid-afternoon in California.
CLOCK = {"CYCLECARE_CLOCK_START": "2026-03-12T22:00:00+00:00"}
TREATED_ON = date(2026, 3, 10)


def enrolment(patient_id: str, phone: str) -> PatientEnrolled:
    return PatientEnrolled(
        patient_id=patient_id, clinic_id="rocklin", first_name="Ana", phone=phone,
        timezone="America/Los_Angeles", language="en", sms_consent=True,
    )


def signed_form(token: str, body: str, sid: str, phone: str) -> tuple[dict[str, str], str]:
    form = {"MessageSid": sid, "AccountSid": "ACtest00000000000000000000000000", "From": phone,
            "To": "+19165550100", "Body": body}
    return form, RequestValidator(token).compute_signature(PUBLIC_URL + "/twilio/sms", form)


async def test_treatment_two_days_ago_leads_to_checkin_sms_and_a_yes_to_an_urgent_alert_email(
    start_worker, publisher, topics, watch, fake_twilio, smtp
):
    scheduler = await start_worker("scheduler", **CLOCK)
    notifier = await start_worker("notifier", **CLOCK)
    survey = await start_worker("survey", **CLOCK)
    alerts = await watch(topics.alerts)
    phone_index = await watch(f"{topics.namespace}-survey-phones-changelog")
    phone = "+19165550123"

    await publisher.send(topics.patients, "p-ana", enrolment("p-ana", phone))
    await publisher.send(topics.treatments, "p-ana", TreatmentRecorded(
        treatment_id="t-1", patient_id="p-ana", clinic_id="rocklin", administered_on=TREATED_ON))

    [question] = await eventually(lambda: fake_twilio.to(phone), what="the check-in SMS")
    assert "swallow" in question.body.lower() and "Rocklin Headache Clinic" in question.body
    assert "botox" not in question.body.lower() and "migraine" not in question.body.lower()

    # the survey learns the patient's number from the enrolment; a reply can only be
    # matched once that has happened (a real patient replies minutes later)
    await eventually(lambda: phone_index.records, what="the survey indexing the patient's phone")
    form, signature = signed_form(fake_twilio.auth_token, "YES", "SM00000000000000000000000000000001", phone)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{survey.url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as response:
            assert response.status == 200
            assert "<Response" in await response.text()

    alert = await eventually(lambda: [a for a in alerts.events(topics.alerts) if isinstance(a, ClinicianAlert)],
                             what="the urgent alert")
    assert alert[0].severity == "urgent" and alert[0].patient_id == "p-ana"
    [mail] = await eventually(lambda: smtp.to("lee@example.org"), what="the alert email")
    assert "urgent" in mail["Subject"].lower()
    await eventually(lambda: len(fake_twilio.to(phone)) >= 2, what="the safety reply")
    assert "911" in fake_twilio.to(phone)[-1].body
    for worker in (scheduler, notifier, survey):
        assert phone not in worker.output() and "+1916555" not in worker.output()


async def test_forged_signature_gets_403_and_publishes_nothing(start_worker, topics, watch, fake_twilio):
    survey = await start_worker("survey")
    inbound = await watch(topics.inbound, topics.alerts)
    form, _ = signed_form("not-the-token", "YES", "SM00000000000000000000000000000002", "+19165550124")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{survey.url}/twilio/sms", data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}) as response:
            assert response.status == 403
        async with http.post(f"{survey.url}/twilio/sms", data=form) as response:
            assert response.status == 403
        # a correctly signed message afterwards is published: the topic was being watched
        good, signature = signed_form(fake_twilio.auth_token, "hi", "SM00000000000000000000000000000003", "+19165550124")
        async with http.post(f"{survey.url}/twilio/sms", data=good, headers={"X-Twilio-Signature": signature}) as response:
            assert response.status == 200
    published = await eventually(lambda: inbound.events(topics.inbound), what="the genuine message")
    assert [e.message_sid for e in published] == ["SM00000000000000000000000000000003"]


async def test_malformed_event_goes_to_dlq_and_the_next_one_is_processed(start_worker, publisher, topics, watch):
    await start_worker("scheduler", **CLOCK)
    watcher = await watch(topics.dlq, topics.due)
    await publisher.send(topics.patients, "p-bad", b"{not json")
    await publisher.send(topics.treatments, "p-bad", b'{"type": "treatment.recorded", "patient_id": "p-bad"}')
    await publisher.send(topics.patients, "p-ok", enrolment("p-ok", "+19165550125"))
    await publisher.send(topics.treatments, "p-ok", TreatmentRecorded(
        treatment_id="t-ok", patient_id="p-ok", clinic_id="rocklin", administered_on=TREATED_ON))

    dead = await eventually(lambda: len(watcher.raw(topics.dlq)) >= 2 and watcher.raw(topics.dlq), what="two DLQ records")
    errors = {d["topic"]: d["error"] for d in dead}
    assert "not JSON" in errors[topics.patients]
    assert "administered_on" in errors[topics.treatments] and "clinic_id" in errors[topics.treatments]
    due = await eventually(lambda: [e for e in watcher.events(topics.due) if e.type == "checkin.due"], what="the check-in due")
    assert due[0].patient_id == "p-ok" and due[0].day == 2
