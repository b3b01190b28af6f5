"""The survey on the real broker: signed Twilio webhooks in, alerts, consent, check-ins and
patient SMS out (through the notifier and the fake Twilio).

One survey and one notifier serve every test of this module (starting workers is the slow
part); each test talks to its own patients and phone numbers, so tests stay independent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from shared.broker import EmbeddedBroker, ensure_topics
from shared.events import (
    CheckinCompleted,
    CheckinDue,
    ClinicianAlert,
    ConsentChanged,
    MessageSuppressed,
    PatientEnrolled,
    PatientUpdated,
)
from shared.notifier_events import OutboundRequested
from shared.topics import Topics
from tests.support.fake_twilio import FakeTwilio
from tests.support.kafka import Publisher, TopicWatcher, eventually
from tests.support.workers import WorkerProcess

PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
CLOCK_START = datetime(2026, 3, 12, 22, 0, tzinfo=timezone.utc)  # mid-afternoon in California
PARTITIONS = 4
_sids = itertools.count(1)
_phones = itertools.count(200)


@dataclass
class Stack:
    topics: Topics
    twilio: FakeTwilio
    survey: WorkerProcess
    notifier: WorkerProcess
    publisher: Publisher
    seen: TopicWatcher
    http: aiohttp.ClientSession

    def events(self, short: str, cls: type, patient_id: str | None = None) -> list:
        found = [e for e in self.seen.events(self.topics.name(short)) if isinstance(e, cls)]
        return [e for e in found if patient_id is None or getattr(e, "patient_id", None) == patient_id]

    def alerts(self, patient_id: str) -> list[ClinicianAlert]:
        return self.events("alerts", ClinicianAlert, patient_id)

    async def post(self, phone: str, body: str, sid: str | None = None, *, token: str | None = None) -> aiohttp.ClientResponse:
        form = {"MessageSid": sid or new_sid(), "AccountSid": self.twilio.account_sid, "From": phone,
                "To": "+19165550100", "Body": body}
        signature = RequestValidator(token or self.twilio.auth_token).compute_signature(PUBLIC_URL + "/twilio/sms", form)
        async with self.http.post(f"{self.survey.url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as response:
            await response.read()
            assert response.status == 200, await response.text()
            assert "<Response>" in await response.text()
            return response

    async def enrol(self, patient_id: str, phone: str) -> None:
        await self.publisher.send(self.topics.patients, patient_id, PatientEnrolled(
            patient_id=patient_id, clinic_id="rocklin", first_name="Ana", phone=phone,
            timezone="America/Los_Angeles", language="en", sms_consent=True, baseline_headache_days=20,
        ))
        # both workers know the patient once their tables' changelogs carry the entries
        # (the survey's phone index, keyed by phone; the notifier's contacts, by patient)
        phones, contacts = (f"{self.topics.namespace}-{table}-changelog" for table in ("survey-phones", "notifier-contacts"))
        await eventually(lambda: self.changelog_has(phones, phone) and self.changelog_has(contacts, patient_id),
                         what="the survey and the notifier to know the patient")

    def changelog_has(self, topic: str, key: str) -> bool:
        return any(t == topic and k is not None and json.loads(k) == key and v and b"patient_id" in v
                   for t, k, v in self.seen.records)

    async def open_checkin(self, patient_id: str, phone: str, checkin_id: str = "c-1-2", *, day: int = 2) -> None:
        await self.publisher.send(self.topics.due, patient_id, CheckinDue(
            patient_id=patient_id, clinic_id="rocklin", treatment_id="t-1", cycle=1, day=day,
            due_at=CLOCK_START - timedelta(minutes=5), kind="side_effects", checkin_id=checkin_id,
        ))

    async def patient_with_checkin(self) -> tuple[str, str]:
        patient_id, phone = f"p-{uuid.uuid4().hex[:8]}", new_phone()
        await self.enrol(patient_id, phone)
        await self.open_checkin(patient_id, phone)
        [question] = await eventually(lambda: self.twilio.to(phone), what="the Q1 SMS")
        assert "swallow" in question.body
        return patient_id, phone

    async def sms(self, phone: str, count: int, what: str) -> list:
        return await eventually(lambda: len(self.twilio.to(phone)) >= count and self.twilio.to(phone), what=what)


def new_sid() -> str:
    return f"SM{uuid.uuid4().hex}"


def new_phone() -> str:
    return f"+1916555{next(_phones):04d}"


@pytest.fixture(scope="module")
async def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    await ensure_topics(broker.bootstrap_servers, topics.all(), PARTITIONS)
    twilio = await FakeTwilio().start()
    tmp = tmp_path_factory.mktemp("survey-stack")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
        "CYCLECARE_PARTITIONS": str(PARTITIONS), "CYCLECARE_REBALANCE_TIMEOUT": "1", "CYCLECARE_DATA_DIR": str(tmp / "data"),
        "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token, "TWILIO_FROM": "+19165550100",
        "TWILIO_API_BASE": twilio.url, "CYCLECARE_PUBLIC_URL": PUBLIC_URL, "CYCLECARE_LOG_FORMAT": "json",
        "CYCLECARE_CLOCK_START": CLOCK_START.isoformat(),
    }
    survey = WorkerProcess("survey", env, Path(tmp)).start()
    notifier = WorkerProcess("notifier", env, Path(tmp)).start()
    changelogs = [f"{topics.namespace}-survey-phones-changelog", f"{topics.namespace}-notifier-contacts-changelog"]
    publisher = await Publisher(broker.bootstrap_servers).start()
    http = aiohttp.ClientSession()
    seen: TopicWatcher | None = None
    try:
        await asyncio.gather(survey.wait_ready(), notifier.wait_ready())
        # after the workers are ready: their changelog topics exist, made as Faust makes them
        seen = await TopicWatcher(broker.bootstrap_servers, *topics.all(), *changelogs).start()
        yield Stack(topics, twilio, survey, notifier, publisher, seen, http)
    finally:
        await http.close()
        await publisher.stop()
        if seen:
            await seen.stop()
        survey.stop()
        notifier.stop()
        await twilio.stop()


async def test_a_signed_red_flag_reply_raises_an_urgent_alert_and_a_safety_sms(stack: Stack):
    """How fast: bench/survey measures it (timing is never asserted in a test)."""
    patient_id, phone = await stack.patient_with_checkin()
    await stack.post(phone, "I can't swallow right since Tuesday")
    [alert] = await eventually(lambda: stack.alerts(patient_id), timeout=5, what="the urgent alert")
    assert alert.severity == "urgent" and alert.reasons == ["dysphagia"]
    assert alert.evidence["reply"] == "I can't swallow right since Tuesday"
    [completed] = await eventually(lambda: stack.events("checkins", CheckinCompleted, patient_id), what="Q1 closed")
    assert completed.checkin_id == "c-1-2" and completed.answers["red_flag_reasons"] == ["dysphagia"]
    messages = await stack.sms(phone, 2, "the safety reply")
    assert "911" in messages[1].body
    assert "botox" not in messages[1].body.lower()


async def test_the_same_message_sid_delivered_twice_gives_one_alert(stack: Stack):
    patient_id, phone = await stack.patient_with_checkin()
    sid = new_sid()
    await stack.post(phone, "yes", sid)
    await stack.post(phone, "yes", sid)
    # a later message after the check-in closed is a routine alert on the same partition:
    # once it is seen, anything the copy caused would have been seen before it
    await stack.post(phone, "thank you")
    alerts = await eventually(lambda: [a for a in stack.alerts(patient_id) if a.severity == "routine"] and stack.alerts(patient_id),
                              what="the routine alert after the copy")
    assert [a.severity for a in alerts] == ["urgent", "routine"]
    await stack.sms(phone, 2, "the safety reply")
    requests = await eventually(lambda: stack.events("outbound", OutboundRequested, patient_id), what="the safety reply request")
    assert [r.kind for r in requests] == ["checkin_q1", "safety_reply"]  # the survey asked Q1, then replied once


async def test_stop_revokes_consent_once_and_no_later_checkin_or_question_reaches_the_patient(stack: Stack):
    patient_id, phone = await stack.patient_with_checkin()
    await stack.post(phone, " Stop ")
    [consent] = await eventually(lambda: stack.events("consent", ConsentChanged, patient_id), what="consent.changed")
    assert consent.granted is False and consent.source == "sms_keyword"
    [_, confirmation] = await stack.sms(phone, 2, "the opt-out confirmation")
    assert "START" in confirmation.body

    await stack.open_checkin(patient_id, phone, "c-1-7", day=7)
    await stack.publisher.send(stack.topics.outbound, patient_id, OutboundRequested(
        message_key=f"late-q2-{patient_id}", patient_id=patient_id, clinic_id="rocklin", kind="checkin_q2"))
    await stack.post(phone, "STOP")  # a second STOP: no second confirmation
    suppressed = await eventually(
        lambda: len(stack.events("deliveries", MessageSuppressed, patient_id)) >= 2 and stack.events("deliveries", MessageSuppressed, patient_id),
        what="the later check-in and question suppressed")
    assert {s.kind for s in suppressed} == {"checkin_q1", "checkin_q2"}
    await stack.post(phone, "help")  # the barrier: help is answered even after STOP
    messages = await stack.sms(phone, 3, "the help text")
    assert len(messages) == 3 and "call" in messages[2].body.lower()
    assert len(stack.events("consent", ConsentChanged, patient_id)) == 1


async def test_an_unreadable_reply_twice_gets_one_reprompt_then_an_unparsed_reply_alert(stack: Stack):
    patient_id, phone = await stack.patient_with_checkin()
    await stack.post(phone, "banana bread")
    [_, reprompt] = await stack.sms(phone, 2, "the re-prompt")
    assert "couldn't read" in reprompt.body and "YES or NO" in reprompt.body
    await stack.post(phone, "purple")
    [alert] = await eventually(lambda: stack.alerts(patient_id), what="the unparsed_reply alert")
    assert alert.severity == "routine" and alert.reasons == ["unparsed_reply"] and alert.evidence["reply"] == "purple"
    assert len(stack.twilio.to(phone)) == 2


async def test_no_then_2s_asks_q2_then_raises_a_high_alert_and_completes_the_checkin(stack: Stack):
    patient_id, phone = await stack.patient_with_checkin()
    await stack.post(phone, "No")
    [_, q2] = await stack.sms(phone, 2, "Q2")
    assert "2 Drooping eyelid" in q2.body
    await stack.post(phone, "2s")
    [alert] = await eventually(lambda: stack.alerts(patient_id), what="the high alert")
    assert alert.severity == "high" and alert.reasons == ["ptosis"]
    [completed] = await eventually(lambda: stack.events("checkins", CheckinCompleted, patient_id), what="checkin.completed")
    assert completed.answers["red_flags"] is False and completed.answers["effects"][0]["severity"] == "severe"
    assert completed.raw_replies == ["No", "2s"]
    await stack.sms(phone, 3, "the thanks")


async def test_an_unknown_number_gets_one_neutral_reply_and_its_text_is_not_logged(stack: Stack):
    stranger = new_phone()
    await stack.post(stranger, "hello is this Dr Lee? my secret words")
    await stack.post(stranger, "hello again")
    await eventually(lambda: len([e for e in stack.events("outbound", OutboundRequested) if e.to_phone == stranger]) == 2,
                     what="both messages read")
    # a request for another message on the same partition: once it is sent, the second was handled
    await stack.publisher.send(stack.topics.outbound, stranger, OutboundRequested(
        message_key=f"marker-{stranger}", patient_id=None, clinic_id="", to_phone=stranger, kind="unknown_sender"))
    [neutral, _marker] = await stack.sms(stranger, 2, "the neutral reply and the marker")
    assert len(stack.twilio.to(stranger)) == 2
    assert "Ana" not in neutral.body and "Rocklin" not in neutral.body
    assert not stack.events("survey-replies", object) or all(
        getattr(e, "body", "") != "hello again" for e in stack.events("survey-replies", object))
    log = stack.survey.output()
    assert "secret words" not in log and stranger not in log


async def test_after_a_phone_number_change_the_old_number_is_a_stranger_and_the_new_one_the_patient(stack: Stack):
    patient_id, old, new = f"p-{uuid.uuid4().hex[:8]}", new_phone(), new_phone()
    await stack.enrol(patient_id, old)
    await stack.publisher.send(stack.topics.patients, patient_id, PatientUpdated(
        patient_id=patient_id, clinic_id="rocklin", first_name="Ana", phone=new,
        timezone="America/Los_Angeles", language="en", sms_consent=True,
    ))
    phones = f"{stack.topics.namespace}-survey-phones-changelog"
    await eventually(lambda: stack.changelog_has(phones, new) and any(
        t == phones and k and json.loads(k) == old and v and b"patient_id" not in v for t, k, v in stack.seen.records),
        what="the index to move the patient to the new number")
    await stack.post(old, "trouble breathing")
    [neutral] = await stack.sms(old, 1, "the neutral reply to the old number")
    assert "Ana" not in neutral.body
    await stack.post(new, "trouble breathing")
    [alert] = await eventually(lambda: stack.alerts(patient_id), what="the urgent alert from the new number")
    assert alert.severity == "urgent" and alert.evidence["reply"] == "trouble breathing"
