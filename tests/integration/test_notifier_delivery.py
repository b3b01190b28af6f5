"""The notifier worker on the real broker with the fake Twilio server and aiosmtpd:
once per cause, provider faults, the rate limit, urgent first, delivery receipts."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import aiohttp

from shared.events import (
    ClinicianAlert,
    ConsentChanged,
    MessageDelivered,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    PatientEnrolled,
    ReminderDue,
)
from shared.notifier_events import OutboundRequested, RetryScheduled
from tests.support.kafka import eventually

PHONE = "+19165550123"
ON_CALL_PHONE = "+19165550101"  # Dr. Lee in the example clinics file


def enrolment(patient_id: str = "p-ana", phone: str = PHONE) -> PatientEnrolled:
    return PatientEnrolled(patient_id=patient_id, clinic_id="rocklin", first_name="Ana", phone=phone,
                           timezone="America/Los_Angeles", language="en", sms_consent=True)


def reminder(n: int, patient_id: str = "p-ana") -> ReminderDue:
    return ReminderDue(event_id=f"due-{patient_id}-{n}", patient_id=patient_id, clinic_id="rocklin",
                       treatment_id="t-1", cycle=1, due_at=datetime(2026, 5, 19, 17, tzinfo=timezone.utc), day=70)


def sent(watcher, topic: str) -> list[MessageSent]:
    return [e for e in watcher.events(topic) if isinstance(e, MessageSent)]


async def enrolled(publisher, topics, fake_twilio, patient_id: str = "p-ana", phone: str = PHONE) -> None:
    """Enrol a patient and send them a first reminder (published together: the notifier
    waits briefly for the enrolment when the reminder overtakes it)."""
    await publisher.send(topics.patients, patient_id, enrolment(patient_id, phone))
    await publisher.send(topics.due, patient_id, reminder(0, patient_id))
    await eventually(lambda: fake_twilio.to(phone), what="the first reminder")


async def test_a_redelivered_due_event_sends_nothing_twice_even_across_a_restart(start_worker, publisher, topics, fake_twilio):
    notifier = await start_worker("notifier")
    await enrolled(publisher, topics, fake_twilio)
    await publisher.send(topics.due, "p-ana", reminder(0))
    await publisher.send(topics.due, "p-ana", reminder(1))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 2, what="the second reminder")

    notifier.stop()  # the restarted worker recovers the ledger and the committed offsets (~20 s to rejoin)
    await start_worker("notifier")
    await publisher.send(topics.due, "p-ana", reminder(0))
    await publisher.send(topics.due, "p-ana", reminder(1))
    await publisher.send(topics.due, "p-ana", reminder(2))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 3, what="the third reminder")
    assert len(fake_twilio.to(PHONE)) == 3
    assert fake_twilio.requests == 3


async def test_a_429_then_a_500_then_success_sends_exactly_once(start_worker, publisher, topics, watch, fake_twilio):
    await start_worker("notifier")
    deliveries = await watch(topics.deliveries)
    await enrolled(publisher, topics, fake_twilio)
    fake_twilio.fail_next("429", "500")
    await publisher.send(topics.due, "p-ana", reminder(1))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 2, timeout=20, what="the retried reminder")
    await eventually(lambda: len(sent(deliveries, topics.deliveries)) >= 2, what="message.sent")
    assert fake_twilio.requests == 4  # first reminder, 429, 500, success
    assert len(fake_twilio.to(PHONE)) == 2
    assert [e.message_key for e in sent(deliveries, topics.deliveries)].count("due-p-ana-1:booking_reminder") == 1


async def test_a_twilio_outage_longer_than_the_old_retry_window_loses_no_message(start_worker, publisher, topics, watch, fake_twilio):
    """Six 500s in a row (the old limit gave up after six attempts, ~16-31 s): the reminder
    is still retried and sent once the provider recovers."""
    await start_worker("notifier")
    deliveries = await watch(topics.deliveries)
    await enrolled(publisher, topics, fake_twilio)
    fake_twilio.fail_next(*["500"] * 6)
    await publisher.send(topics.due, "p-ana", reminder(1))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 2, timeout=90, what="the reminder after the outage")
    await eventually(lambda: len(sent(deliveries, topics.deliveries)) >= 2, what="message.sent")
    assert fake_twilio.requests == 1 + 6 + 1  # first reminder, six 500s, success
    assert not [e for e in deliveries.events(topics.deliveries) if isinstance(e, MessageFailed)]


async def test_an_unsubscribed_21610_records_the_opt_out_and_stops_further_sms(start_worker, publisher, topics, watch, fake_twilio):
    notifier = await start_worker("notifier")
    watcher = await watch(topics.consent, topics.deliveries)
    await enrolled(publisher, topics, fake_twilio)
    fake_twilio.fail_next("21610")
    await publisher.send(topics.due, "p-ana", reminder(1))
    [opt_out] = await eventually(lambda: [e for e in watcher.events(topics.consent) if isinstance(e, ConsentChanged)],
                                 what="the opt-out on the consent topic")
    assert (opt_out.patient_id, opt_out.channel, opt_out.granted, opt_out.source) == ("p-ana", "sms", False, "provider_21610")

    await eventually(lambda: [e for e in watcher.events(topics.deliveries)
                              if isinstance(e, MessageFailed) and e.message_key == "due-p-ana-1:booking_reminder"],
                     what="the refused reminder recorded as failed")  # the barrier: its request is behind us
    assert fake_twilio.requests == 2  # the first reminder and the refused one

    await publisher.send(topics.due, "p-ana", reminder(2))
    [suppressed] = await eventually(lambda: [
        e for e in watcher.events(topics.deliveries)
        if isinstance(e, MessageSuppressed) and e.message_key == "due-p-ana-2:booking_reminder"], what="suppression")
    assert suppressed.reason == "no consent for any channel"
    assert fake_twilio.requests == 2 and len(fake_twilio.to(PHONE)) == 1  # the suppression is recorded after its decision
    assert PHONE not in notifier.output()


async def test_the_rate_limit_holds_for_a_burst_of_sixty_reminders(start_worker, publisher, topics, fake_twilio):
    await start_worker("notifier", CYCLECARE_SMS_RATE="20", CYCLECARE_SMS_BURST="2")
    await enrolled(publisher, topics, fake_twilio)
    for n in range(1, 61):
        await publisher.send(topics.due, "p-ana", reminder(n))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 61, timeout=30, what="sixty reminders")
    burst = fake_twilio.messages[1:]
    assert fake_twilio.spread(burst, window=1.0) <= 20 + 2 + 1  # rate + burst (+1: both ends of the window count)
    assert burst[-1].received_at - burst[0].received_at >= (60 - 2 - 1) / 20 * 0.95


async def test_an_urgent_alert_overtakes_a_backlog_of_two_hundred_reminders(start_worker, publisher, topics, fake_twilio, smtp):
    await start_worker("notifier", CYCLECARE_SMS_RATE="20", CYCLECARE_SMS_BURST="1")
    await enrolled(publisher, topics, fake_twilio)
    for n in range(1, 201):
        await publisher.send(topics.due, "p-ana", reminder(n))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 6, what="the backlog to start draining")
    await publisher.send(topics.alerts, "p-ana", ClinicianAlert(
        alert_id="a-urgent-1", patient_id="p-ana", clinic_id="rocklin", severity="urgent", reasons=["dysphagia"],
        summary="Reported new trouble swallowing", raised_at=datetime.now(timezone.utc)))
    await eventually(lambda: fake_twilio.to(ON_CALL_PHONE), timeout=20, what="the urgent alert SMS")
    position = [m.to for m in fake_twilio.messages].index(ON_CALL_PHONE)
    assert position < 40, f"the urgent SMS came after {position} reminders"
    await eventually(lambda: smtp.to("lee@example.org"), what="the urgent alert email")


async def test_status_callbacks_become_delivered_and_three_undelivered_make_the_patient_unreachable(
    start_worker, publisher, topics, watch, fake_twilio
):
    notifier = await start_worker("notifier")
    watcher = await watch(topics.deliveries, topics.alerts)
    await enrolled(publisher, topics, fake_twilio)
    [first] = fake_twilio.to(PHONE)
    assert await fake_twilio.send_status(first, "delivered", notifier.url) == 204
    [delivered] = await eventually(
        lambda: [e for e in watcher.events(topics.deliveries) if isinstance(e, MessageDelivered)], what="message.delivered")
    assert delivered.message_key == "due-p-ana-0:booking_reminder" and (delivered.patient_id, delivered.provider_id) == ("p-ana", first.sid)

    async with aiohttp.ClientSession() as http:  # a forged receipt is refused
        async with http.post(f"{notifier.url}/twilio/status", data={"MessageSid": "SMx", "MessageStatus": "failed"},
                             headers={"X-Twilio-Signature": "Zm9yZ2Vk"}) as response:
            assert response.status == 403

    for n in range(1, 4):
        await publisher.send(topics.due, "p-ana", reminder(n))
    await eventually(lambda: len(fake_twilio.to(PHONE)) >= 4, what="three more reminders")
    for sms in fake_twilio.to(PHONE)[1:]:
        assert await fake_twilio.send_status(sms, "undelivered", notifier.url, error_code="30005") == 204
    [alert] = await eventually(
        lambda: [e for e in watcher.events(topics.alerts) if isinstance(e, ClinicianAlert)], what="the unreachable alert")
    assert alert.severity == "routine" and alert.reasons == ["unreachable"] and alert.patient_id == "p-ana"


async def test_bad_input_fails_clearly_and_refused_credentials_halt_sms_loudly(start_worker, publisher, topics, watch, fake_twilio):
    notifier = await start_worker("notifier")
    watcher = await watch(topics.deliveries, topics.dlq)
    retries = await watch(topics.notifier_retry)
    await enrolled(publisher, topics, fake_twilio)
    await publisher.send(topics.due, "p-nobody", reminder(1, patient_id="p-nobody"))
    await publisher.send(topics.due, "p-ana", reminder(2).model_copy(update={"clinic_id": "atlantis"}))
    await publisher.send(topics.outbound, "p-ana", OutboundRequested(
        message_key="q-1", patient_id="p-ana", clinic_id="rocklin", kind="no_such_template"))
    deliveries = lambda: {e.message_key: e for e in watcher.events(topics.deliveries)}  # noqa: E731
    await eventually(lambda: {"due-p-nobody-1:booking_reminder", "q-1"} <= deliveries().keys(), timeout=15,
                     what="two clear outcomes")
    unknown = deliveries()["due-p-nobody-1:booking_reminder"]
    assert unknown.type == "message.failed" and "unknown patient" in unknown.error and unknown.patient_id == "p-nobody"
    assert deliveries()["q-1"].type == "message.failed" and "template" in deliveries()["q-1"].error
    [dead] = await eventually(lambda: watcher.raw(topics.dlq), what="the unknown clinic dead-lettered")
    assert "atlantis" in dead["error"] and "clinics file" in dead["error"]

    fake_twilio.fail_next("20003")
    await publisher.send(topics.due, "p-ana", reminder(3))

    async def halted() -> str:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{notifier.url}/metrics") as response:
                return await response.text()

    metrics_text = ""
    for _ in range(100):
        metrics_text = await halted()
        if 'cyclecare_provider_halted{provider="twilio"} 1.0' in metrics_text:
            break
        await asyncio.sleep(0.1)
    assert 'cyclecare_provider_halted{provider="twilio"} 1.0' in metrics_text
    await eventually(lambda: "refused our credentials" in notifier.output(), what="the loud log line")
    await publisher.send(topics.due, "p-ana", reminder(4))  # arrives while SMS is halted
    # the barrier: both reminders handled, each re-queued for after the halt
    requeued = lambda: {e.outgoing["message_key"] for e in retries.events(topics.notifier_retry)  # noqa: E731
                        if isinstance(e, RetryScheduled)}
    await eventually(lambda: {"due-p-ana-3:booking_reminder", "due-p-ana-4:booking_reminder"} <= requeued(),
                     what="both reminders re-queued for after the halt")
    assert fake_twilio.requests == 2  # the first reminder and the refused one: nothing more while halted
    assert not any(e.type == "message.failed" and e.message_key.startswith("due-p-ana-") for e in watcher.events(topics.deliveries))
