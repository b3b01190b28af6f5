"""The Deliverer performs the delivery rules with the in-process fake senders: no broker,
no network. What it publishes is recorded by type, as the topics table would route it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from services.notifier import app, domain
from services.notifier.alert_book import AlertBook
from services.notifier.adapters.fake import FakeEmailSender, FakeSmsSender
from services.notifier.adapters.ports import CredentialsRejected, RecipientOptedOut, RecipientUnreachable, RetryLater
from services.notifier.contacts import Contacts
from services.notifier.deliverer import Deliverer
from services.notifier.delivery import HALT_SECONDS
from services.notifier.receipts import UNDELIVERED_LIMIT
from services.notifier.throttle import PriorityGate
from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.events import ClinicianAlert, ConsentChanged, Event, MessageDelivered, MessageFailed, MessageSent, ReminderDue
from shared.notifier_events import RetryScheduled
from tests.support.kafka import eventually

T0 = datetime(2026, 5, 19, 17, tzinfo=timezone.utc)
ANA = domain.Contact(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123", sms_consent=True)
CONTEXT = {"first_name": "Ana", "clinic_name": "Rocklin Headache Clinic", "clinic_phone": "+19165550100",
           "first_message": False, "emergency_number": "911", "days_since": 70}


@dataclass
class RecordingRuntime:
    """The part of :class:`shared.streaming.Runtime` the Deliverer uses."""

    emitted: list[tuple[str, Event]] = field(default_factory=list)

    async def emit(self, key: str, event: Event, *, wait: bool = False) -> None:
        self.emitted.append((key, event))

    def of(self, cls: type) -> list:
        return [e for _, e in self.emitted if isinstance(e, cls)]


@dataclass
class Setup:
    rt: RecordingRuntime
    sms: FakeSmsSender
    contacts: Contacts
    wall: ManualClock
    deliverer: Deliverer


@pytest.fixture
def setup() -> Setup:
    rt, sms, wall = RecordingRuntime(), FakeSmsSender(), ManualClock(T0)
    contacts = Contacts({})
    contacts.save(ANA)
    gate = PriorityGate(1000.0, 1000.0)
    deliverer = Deliverer(rt, {}, contacts, gate, sms, FakeEmailSender(), ManualClock(T0), wall)  # type: ignore[arg-type]
    return Setup(rt, sms, contacts, wall, deliverer)


def reminder(n: int = 1) -> domain.Outgoing:
    return domain.Outgoing(message_key=f"due-{n}:booking_reminder", channel="sms", to=ANA.phone or "",
                           kind="booking_reminder", patient_id="p-ana", clinic_id="rocklin", context=CONTEXT)


async def test_a_provider_asking_to_retry_later_keeps_the_message_and_it_goes_out_on_the_retry(setup: Setup):
    setup.sms.answer_next(RetryLater("503 from provider", "503"))
    await setup.deliverer.deliver(reminder())
    [retry] = setup.rt.of(RetryScheduled)
    assert retry.attempt == 1 and retry.not_before > T0 and retry.outgoing == reminder().model_dump(mode="json")
    assert setup.rt.of(MessageFailed) == [] and setup.sms.sent == []
    await setup.deliverer.deliver(domain.Outgoing.model_validate(retry.outgoing), retry.attempt)
    assert [s.key for s in setup.sms.sent] == [reminder().message_key]
    assert [m.message_key for m in setup.rt.of(MessageSent)] == [reminder().message_key]


async def test_refused_credentials_halt_sms_and_every_message_waits_for_the_end_of_the_halt(setup: Setup):
    setup.sms.answer_next(CredentialsRejected("bad credentials", "auth"))
    await setup.deliverer.deliver(reminder(1))
    await setup.deliverer.deliver(reminder(2))  # during the halt: not even tried
    retries = setup.rt.of(RetryScheduled)
    assert [r.outgoing["message_key"] for r in retries] == [reminder(1).message_key, reminder(2).message_key]
    assert all(r.not_before >= T0 + timedelta(seconds=HALT_SECONDS) for r in retries)
    assert setup.sms.sent == [] and setup.rt.of(MessageFailed) == []
    setup.wall.advance(timedelta(seconds=HALT_SECONDS + 1))
    for retry in retries:
        await setup.deliverer.deliver(domain.Outgoing.model_validate(retry.outgoing), retry.attempt)
    assert len(setup.sms.sent) == 2


async def test_a_recipient_who_opted_out_at_the_provider_is_opted_out_of_sms_at_once(setup: Setup):
    setup.sms.answer_next(RecipientOptedOut("unsubscribed recipient", "opted-out"))
    await setup.deliverer.deliver(reminder())
    [consent] = setup.rt.of(ConsentChanged)
    assert (consent.patient_id, consent.channel, consent.granted) == ("p-ana", "sms", False)
    assert setup.contacts.get("p-ana").sms_opted_out
    assert [f.message_key for f in setup.rt.of(MessageFailed)] == [reminder().message_key]


async def test_an_unreachable_phone_fails_the_message_and_alerts_the_clinic_once(setup: Setup):
    setup.sms.answer_next(RecipientUnreachable("not a mobile number", "landline"))
    await setup.deliverer.deliver(reminder())
    await setup.deliverer.deliver(reminder())  # a redelivery: the ledger knows it failed
    [alert] = setup.rt.of(ClinicianAlert)
    assert (alert.patient_id, alert.severity, alert.reasons) == ("p-ana", "routine", ["unreachable"])
    assert len(setup.rt.of(MessageFailed)) == 1


def undelivered(n: int) -> MessageFailed:
    return MessageFailed(message_key=f"due-{n}:booking_reminder", patient_id="p-ana", clinic_id="rocklin", channel="sms",
                         kind="booking_reminder", provider_id=f"SM{n}", error="undelivered", error_code="carrier")


async def test_undelivered_receipts_in_a_row_alert_the_clinic_once_when_the_streak_reaches_the_limit(setup: Setup):
    for n in range(UNDELIVERED_LIMIT - 1):
        await setup.deliverer.receipt(undelivered(n))
    assert setup.rt.of(ClinicianAlert) == []
    for n in range(UNDELIVERED_LIMIT - 1, UNDELIVERED_LIMIT + 2):
        await setup.deliverer.receipt(undelivered(n))
    [alert] = setup.rt.of(ClinicianAlert)
    assert alert.reasons == ["unreachable"] and alert.evidence["undelivered"] == UNDELIVERED_LIMIT


async def test_a_delivered_receipt_ends_the_streak(setup: Setup):
    for n in range(UNDELIVERED_LIMIT - 1):
        await setup.deliverer.receipt(undelivered(n))
    await setup.deliverer.receipt(MessageDelivered(message_key="ok", patient_id="p-ana", clinic_id="rocklin", channel="sms",
                                                   kind="booking_reminder", provider_id="SM-ok"))
    await setup.deliverer.receipt(undelivered(99))
    assert setup.rt.of(ClinicianAlert) == []


def due(n: int) -> ReminderDue:
    return ReminderDue(event_id=f"due-{n}", patient_id="p-ana", clinic_id="rocklin", treatment_id="t-1", cycle=1,
                       due_at=T0, day=70)


async def test_only_a_patients_first_message_carries_the_opt_out_line_and_it_marks_them_welcomed(setup: Setup):
    clinic = load_clinics(None).require("rocklin")
    for n in (1, 2):
        await setup.deliverer.execute(domain.on_due(due(n), setup.contacts.get("p-ana"), clinic))
    first, second = (s.body for s in setup.sms.sent)
    assert "Reply STOP to opt out" in first and "STOP" not in second
    assert setup.contacts.get("p-ana").welcomed


async def test_a_first_message_keeps_a_consent_change_that_came_while_it_was_being_sent(setup: Setup):
    clinic = load_clinics(None).require("rocklin")
    [first] = domain.on_due(due(1), setup.contacts.get("p-ana"), clinic)
    setup.contacts.save(ANA.model_copy(update={"email": "ana@example.org", "email_opted_out": True}))
    await setup.deliverer.execute([first])
    assert setup.contacts.get("p-ana").welcomed and setup.contacts.get("p-ana").email_opted_out


async def test_receipts_on_the_notifiers_internal_topic_count_toward_the_patients_streak_but_a_clinicians_do_not(
    setup: Setup,
):
    deps = app.Deps(setup.rt, load_clinics(None), setup.contacts, setup.deliverer, {}, ManualClock(T0), setup.wall,  # type: ignore[arg-type]
                    AlertBook({}))
    for n in range(UNDELIVERED_LIMIT):
        await app.on_internal(deps, "p-ana", undelivered(n).model_copy(update={"kind": "alert"}))
    assert setup.rt.of(ClinicianAlert) == []
    for n in range(UNDELIVERED_LIMIT):
        await app.on_internal(deps, "p-ana", undelivered(100 + n))
    [alert] = setup.rt.of(ClinicianAlert)
    assert alert.reasons == ["unreachable"]


async def test_a_sent_message_is_done_only_once_the_broker_acknowledged_its_message_sent(setup: Setup):
    """The record that caused a message is acknowledged when its handler returns: not before
    ``message.sent`` is on the broker."""
    acknowledged = asyncio.Event()

    async def emit(key: str, event: Event, *, wait: bool = False) -> None:
        setup.rt.emitted.append((key, event))
        if wait:  # the broker's acknowledgement, held back until the test gives it
            await acknowledged.wait()

    setup.rt.emit = emit  # type: ignore[method-assign]
    delivering = asyncio.create_task(setup.deliverer.deliver(reminder()))
    await eventually(lambda: setup.rt.of(MessageSent), timeout=5, what="message.sent published")
    assert not delivering.done()
    acknowledged.set()
    await asyncio.wait_for(delivering, 5)
    assert [m.message_key for m in setup.rt.of(MessageSent)] == [reminder().message_key]
