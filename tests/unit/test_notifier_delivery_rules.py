"""The notifier's delivery rules after a provider's answer (pure), and the wait for a
contact another agent writes."""

from __future__ import annotations

import asyncio

from services.notifier import delivery
from services.notifier.adapters.ports import (
    CredentialsRejected,
    RecipientOptedOut,
    RecipientUnreachable,
    Rejected,
    RetryLater,
    Sent,
)
from services.notifier.contacts import Contacts
from services.notifier.domain import Contact

DOWN = RetryLater("twilio 500", "500")


def after(outcome, attempt=0, urgent=False, to_patient=True):
    return delivery.after(outcome, attempt=attempt, key="a3f0:key", urgent=urgent, to_patient=to_patient)


def test_a_sent_message_is_recorded_with_its_provider_id():
    assert after(Sent("SM1")) == delivery.Record("SM1")


def test_a_provider_outage_longer_than_the_old_six_attempts_is_still_retried():
    actions = [after(DOWN, attempt=n) for n in range(20)]
    assert all(isinstance(a, delivery.Retry) for a in actions)
    assert [a.attempt for a in actions] == list(range(1, 21))


def test_retry_waits_are_capped_at_five_minutes_and_honour_a_providers_hint():
    assert after(DOWN, attempt=40).wait <= delivery.MAX_WAIT
    assert after(RetryLater("429", "429", after=30.0), attempt=0).wait == 30.0


def test_a_routine_message_keeps_trying_through_a_day_long_outage_then_fails():
    waits = [after(DOWN, attempt=n).wait for n in range(delivery.ROUTINE_ATTEMPTS - 1)]
    assert sum(waits) >= 24 * 3600
    last = after(DOWN, attempt=delivery.ROUTINE_ATTEMPTS - 1)
    assert isinstance(last, delivery.Fail) and "gave up" in last.error and last.code == "500"


def test_an_urgent_message_never_gives_up_while_the_outage_lasts():
    assert isinstance(after(DOWN, attempt=100_000, urgent=True), delivery.Retry)


def test_refused_credentials_halt_the_channel_and_keep_the_message():
    assert after(CredentialsRejected("auth", "20003")) == delivery.Halt(delivery.HALT_SECONDS)


def test_an_unsubscribed_patient_is_opted_out_and_an_unreachable_one_reported():
    assert after(RecipientOptedOut("stop", "21610")) == delivery.Fail("stop", "21610", opt_out=True)
    assert after(RecipientUnreachable("invalid", "21211")) == delivery.Fail("invalid", "21211", unreachable=True)


def test_a_clinicians_refusal_opts_out_no_patient():
    assert after(RecipientOptedOut("stop", "21610"), to_patient=False) == delivery.Fail("stop", "21610")


def test_a_rejected_message_fails_with_its_reason():
    assert after(Rejected("bad body", "21617")) == delivery.Fail("bad body", "21617")


def ana() -> Contact:
    return Contact(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123", sms_consent=True)


async def test_a_wait_for_a_contact_ends_when_another_agent_writes_it():
    contacts = Contacts({}, wait_seconds=60)
    waiting = asyncio.create_task(contacts.soon("p-ana"))
    await asyncio.sleep(0)
    assert not waiting.done()
    contacts.save(ana())
    assert await asyncio.wait_for(waiting, 5) == ana()


async def test_a_wait_for_a_contact_nobody_writes_ends_at_its_deadline_with_nothing():
    contacts = Contacts({}, wait_seconds=0.01)
    assert await contacts.soon("p-nobody") is None
    assert contacts.get("p-nobody") is None
