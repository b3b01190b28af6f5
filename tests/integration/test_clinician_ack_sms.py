"""Clinicians taking an alert by SMS, on the real broker with signed Twilio webhooks, the
survey and the notifier: "ACK nn" from the clinician's phone publishes ``alert.acknowledged``
and confirms; the same from anyone else does nothing to the alert; and a clinician's phone
is never read as a patient's, even when a patient record carries that number.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from shared.events import AlertAcknowledged, CheckinCompleted, ClinicianAlert, ConsentChanged, PatientEnrolled
from shared.notifier_events import OutboundRequested
from shared.topics import Topics
from tests.support.fake_twilio import FakeTwilio
from tests.support.kafka import Publisher, TopicWatcher, eventually
from tests.support.workers import WorkerProcess

CLINICS = str(Path(__file__).parents[1] / "data" / "clinics_paging.yaml")
LEE, PATEL, RUIZ, STRANGER = "+19165550101", "+19165550102", "+34955000101", "+19165550777"


@dataclass
class Stack:
    topics: Topics
    twilio: FakeTwilio
    survey: WorkerProcess
    publisher: Publisher
    seen: TopicWatcher
    http: aiohttp.ClientSession
    public_url: str

    def events(self, short: str, cls: type) -> list:
        return [e for e in self.seen.events(self.topics.name(short)) if isinstance(e, cls)]

    def acks(self, alert_id: str) -> list[AlertAcknowledged]:
        return [e for e in self.events("alert-actions", AlertAcknowledged) if e.alert_id == alert_id]

    async def post(self, phone: str, body: str) -> None:
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": self.twilio.account_sid, "From": phone,
                "To": "+19165550100", "Body": body}
        signature = RequestValidator(self.twilio.auth_token).compute_signature(self.public_url + "/twilio/sms", form)
        async with self.http.post(f"{self.survey.url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as response:
            assert response.status == 200, await response.text()

    async def reply_to(self, phone: str, count: int, what: str) -> str:
        messages = await eventually(lambda: len(self.twilio.to(phone)) >= count and self.twilio.to(phone), what=what)
        return messages[count - 1].body

    def view_of(self, phone: str) -> dict:
        """The latest value of a phone's view in the survey's changelog."""
        topic = f"{self.topics.namespace}-survey-clinician_alerts-changelog"
        values = [v for t, k, v in self.seen.records if t == topic and k and json.loads(k) == phone and v]
        return json.loads(values[-1]) if values else {}

    async def alert(self, alert_id: str, patient_id: str, first_name: str, minutes_ago: int) -> str:
        """An urgent alert for a new patient; returns its ACK code as Dr. Lee's SMS shows it."""
        await self.publisher.send(self.topics.patients, patient_id, PatientEnrolled(
            patient_id=patient_id, clinic_id="rocklin", first_name=first_name, phone=f"+1916555{uuid.uuid4().int % 10000:04d}",
            timezone="America/Los_Angeles", sms_consent=True))
        files = f"{self.topics.namespace}-survey-files-changelog"
        await eventually(lambda: any(t == files and k and json.loads(k) == patient_id for t, k, _ in self.seen.records),
                         what="the survey to know the patient")
        await self.publisher.send(self.topics.alerts, patient_id, ClinicianAlert(
            alert_id=alert_id, patient_id=patient_id, clinic_id="rocklin", severity="urgent", reasons=["dysphagia"],
            summary="Patient reports a red-flag symptom after treatment: Trouble swallowing.",
            raised_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)))
        sms = await eventually(lambda: [m for m in self.twilio.to(LEE) if "ACK" in m.body and first_name in m.body],
                               what="the alert SMS to Dr. Lee")
        await eventually(lambda: all(alert_id in self.view_of(p) for p in (LEE, PATEL)), what="both phones' views")
        return re.search(r"Reply ACK (\d+) to take this\.$", sms[0].body).group(1)


@pytest.fixture
async def stack(start_worker, watch, publisher, topics, fake_twilio, worker_env) -> AsyncIterator[Stack]:
    survey, _ = await asyncio.gather(start_worker("survey", CYCLECARE_CLINICS=CLINICS),
                                     start_worker("notifier", CYCLECARE_CLINICS=CLINICS))
    changelogs = [f"{topics.namespace}-survey-{table}-changelog" for table in ("clinician_alerts", "files", "phones")]
    seen = await watch(*topics.all(), *changelogs)  # after the workers are ready: their changelogs exist
    async with aiohttp.ClientSession() as http:
        yield Stack(topics, fake_twilio, survey, publisher, seen, http, worker_env["CYCLECARE_PUBLIC_URL"])


async def test_ack_from_the_clinicians_phone_takes_the_alert_and_confirms_with_the_initial_and_age(stack: Stack):
    code = await stack.alert("a-ack-1", "p-ack-1", "Ana", minutes_ago=17)

    await stack.post(RUIZ, f"ACK {code}")  # a clinician, but of another clinic
    assert "No alert of yours has code" in await stack.reply_to(RUIZ, 1, "the how-to reply to Dr. Ruiz")
    await stack.post(STRANGER, f"ACK {code}")  # nobody the clinics know
    await eventually(lambda: [e for e in stack.events("outbound", OutboundRequested)
                              if e.kind == "unknown_sender" and e.to_phone == STRANGER], what="the neutral reply")

    await stack.post(LEE, f"ack{code}")
    [ack] = await eventually(lambda: stack.acks("a-ack-1"), what="alert.acknowledged")
    assert (ack.by, ack.via, ack.patient_id, ack.clinic_id) == ("lee", "sms", "p-ack-1", "rocklin")
    confirmation = await stack.reply_to(LEE, 2, "the confirmation to Dr. Lee")
    assert re.fullmatch(r"Taken: alert for A\., raised 1[78] min ago\. Thank you\.", confirmation), confirmation
    assert "Ana" not in confirmation

    await eventually(lambda: stack.view_of(PATEL)["a-ack-1"]["seen"]["state"]["acknowledged_by"] == "lee",
                     what="Dr. Patel's view to hear of Dr. Lee's acknowledgement")
    await stack.post(PATEL, f"OK {code}")
    answer = await stack.reply_to(PATEL, 1, "the answer to Dr. Patel")
    assert answer.startswith("Already taken by Dr. Lee") and "Nothing changed." in answer
    assert [a.by for a in stack.acks("a-ack-1")] == ["lee"]  # Dr. Ruiz's, the stranger's and Dr. Patel's changed nothing
    assert LEE not in stack.survey.output() and "ack" + code not in stack.survey.output()


async def test_a_clinicians_phone_is_never_read_as_a_patients_even_when_a_patient_record_has_it(stack: Stack):
    await stack.publisher.send(stack.topics.patients, "p-same-phone", PatientEnrolled(
        patient_id="p-same-phone", clinic_id="rocklin", first_name="Pat", phone=PATEL,
        timezone="America/Los_Angeles", sms_consent=True))
    phones = f"{stack.topics.namespace}-survey-phones-changelog"
    await eventually(lambda: any(t == phones and k and json.loads(k) == PATEL and v and b"p-same-phone" in v
                                 for t, k, v in stack.seen.records), what="the survey's phone index to point at the patient")
    before = len(stack.twilio.to(PATEL))
    for text in ("YES", "I can't swallow since this morning", "STOP"):
        await stack.post(PATEL, text)
    replies = [await stack.reply_to(PATEL, before + n, f"how-to reply {n}") for n in (1, 2, 3)]
    assert all("To take an alert, reply ACK" in r for r in replies)
    assert not [e for e in stack.events("alerts", ClinicianAlert) if e.patient_id == "p-same-phone"]
    assert not [e for e in stack.events("consent", ConsentChanged) if e.patient_id == "p-same-phone"]
    assert not [e for e in stack.events("checkins", CheckinCompleted) if e.patient_id == "p-same-phone"]
    assert not [e for e in stack.events("outbound", OutboundRequested)
                if e.patient_id == "p-same-phone" and e.kind in ("safety_reply", "opt_out_confirmation")]
