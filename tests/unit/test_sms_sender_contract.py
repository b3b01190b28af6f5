"""One contract for every SmsSender: the in-process fake and the real Twilio adapter
(the real twilio client against the local fake Twilio server) answer alike."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier.adapters.fake import FakeSmsSender
from services.notifier.adapters.ports import (
    CredentialsRejected,
    RecipientOptedOut,
    RecipientUnreachable,
    RetryLater,
    Sent,
)
from services.notifier.adapters.sms import TwilioSmsSender, form_body

PHONE = "+19165550123"
# each provider-neutral situation, as the fake Twilio server provokes it and as the fake answers it
SITUATIONS = {
    "opted_out": ("21610", RecipientOptedOut("unsubscribed")),
    "unreachable": ("21211", RecipientUnreachable("not a valid number")),
    "overloaded": ("429", RetryLater("too many requests")),
    "down": ("500", RetryLater("internal error")),
    "bad_credentials": ("20003", CredentialsRejected("authentication")),
}


@pytest.fixture(params=["fake", "twilio"])
async def sender(request, fake_twilio):
    """(the sender, a function that makes its next answer the given situation, what it delivered)."""
    if request.param == "fake":
        fake = FakeSmsSender()
        yield fake, lambda s: fake.answer_next(SITUATIONS[s][1]), lambda: [m.to for m in fake.sent]
        return
    twilio = TwilioSmsSender(fake_twilio.account_sid, fake_twilio.auth_token, from_number="+19165550100",
                             messaging_service_sid=None, api_base=fake_twilio.url)
    yield twilio, lambda s: fake_twilio.fail_next(SITUATIONS[s][0]), lambda: [m.to for m in fake_twilio.messages]
    await twilio.close()


class TestSmsSenderContract:
    async def test_a_message_that_goes_out_is_sent_with_a_provider_id(self, sender):
        port, _, delivered = sender
        outcome = await port.send_sms(PHONE, "Hello", "key-1", tags={"m": "key-1"})
        assert isinstance(outcome, Sent) and outcome.provider_id
        assert delivered() == [PHONE]

    @pytest.mark.parametrize(("situation", "expected"), [
        ("opted_out", RecipientOptedOut), ("unreachable", RecipientUnreachable), ("overloaded", RetryLater),
        ("down", RetryLater), ("bad_credentials", CredentialsRejected),
    ])
    async def test_each_provider_refusal_comes_back_as_its_outcome_and_nothing_is_delivered(
        self, sender, situation, expected
    ):
        port, provoke, delivered = sender
        provoke(situation)
        outcome = await port.send_sms(PHONE, "Hello", "key-2")
        assert isinstance(outcome, expected)
        assert delivered() == []

    async def test_after_a_passing_fault_the_next_send_goes_out(self, sender):
        port, provoke, delivered = sender
        provoke("down")
        assert isinstance(await port.send_sms(PHONE, "Hello", "key-3"), RetryLater)
        assert isinstance(await port.send_sms(PHONE, "Hello", "key-3"), Sent)
        assert delivered() == [PHONE]


# The Twilio adapter's own request (adapters/sms.py encodes the form and the credentials itself)

async def test_the_twilio_adapter_posts_a_spanish_body_and_its_status_callback_exactly_as_given(fake_twilio):
    twilio = TwilioSmsSender(fake_twilio.account_sid, fake_twilio.auth_token, from_number="+19165550100",
                             messaging_service_sid=None, api_base=fake_twilio.url,
                             status_callback="https://cyclecare.clinic.test/twilio/status")
    body = "¿Cómo está, Ana? Responda 1 & 2 (100% confidencial) + gracias"
    try:
        outcome = await twilio.send_sms(PHONE, body, "key-4", tags={"m": "key 4/ñ", "a": "p"})
    finally:
        await twilio.close()
    assert isinstance(outcome, Sent)
    [sms] = fake_twilio.messages
    assert (sms.to, sms.body, sms.sender) == (PHONE, body, "+19165550100")
    assert sms.status_callback == "https://cyclecare.clinic.test/twilio/status?a=p&m=key+4%2F%C3%B1"


async def test_sending_through_twilio_raises_no_deprecation_warning_per_message(fake_twilio, recwarn):
    twilio = TwilioSmsSender(fake_twilio.account_sid, fake_twilio.auth_token, from_number="+19165550100",
                             messaging_service_sid=None, api_base=fake_twilio.url)
    try:
        for n in range(3):
            assert isinstance(await twilio.send_sms(PHONE, "Hello", f"key-{n}"), Sent)
    finally:
        await twilio.close()
    assert [str(w.message) for w in recwarn if issubclass(w.category, DeprecationWarning)] == []
    assert len(fake_twilio.messages) == 3


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(st.characters(blacklist_categories=["Cs"]), max_size=8),
                       st.one_of(st.text(st.characters(blacklist_categories=["Cs"])),
                                 st.lists(st.text(st.characters(blacklist_categories=["Cs"])), max_size=3)),
                       max_size=6))
def test_the_twilio_form_is_encoded_byte_for_byte_as_urllib_encodes_it(fields):
    assert form_body(fields) == urlencode(fields, doseq=True).encode()


async def test_a_twilio_answer_slower_than_the_timeout_comes_back_as_retry_later(fake_twilio):
    twilio = TwilioSmsSender(fake_twilio.account_sid, fake_twilio.auth_token, from_number="+19165550100",
                             messaging_service_sid=None, api_base=fake_twilio.url, timeout=0.2)
    fake_twilio.latency = 2.0
    try:
        outcome = await twilio.send_sms(PHONE, "Hello", "key-5")
    finally:
        await twilio.close()
    assert isinstance(outcome, RetryLater) and outcome.code == "network"
