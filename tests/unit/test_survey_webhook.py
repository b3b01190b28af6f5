"""``POST /twilio/sms`` against a stand-in runtime that records what would be published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from yarl import URL
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from services.survey.adapters.webhook import add_sms_webhook, normalise_phone
from shared.config import Settings
from shared.events import Event
from shared.survey_events import InboundSms
from shared.topics import Topics

PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
TOKEN = "test-auth-token"


@dataclass
class RecordingRuntime:
    """The part of :class:`shared.streaming.Runtime` the webhook uses."""

    settings: Settings = field(default_factory=lambda: Settings(twilio_auth_token=TOKEN, public_url=PUBLIC_URL))
    topics: Topics = field(default_factory=lambda: Topics("t"))
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    published: list[tuple[str, str, Event, bool]] = field(default_factory=list)

    async def publish(self, topic: str, key: str, event: Event, *, wait: bool = False) -> None:
        self.published.append((topic, key, event, wait))

    async def emit(self, key: str, event: Event, *, wait: bool = False) -> None:
        await self.publish(self.topics.of(event), key, event, wait=wait)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[TestClient, RecordingRuntime]]:
    rt = RecordingRuntime()
    add_sms_webhook(rt)  # type: ignore[arg-type]
    app = web.Application()
    app.add_routes(rt.routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, rt
    await client.close()


def twilio_form(body: str = "2s", sid: str = "SM0001", phone: str = "+19165550123") -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": "ACtest", "From": phone, "To": "+19165550100", "Body": body, "NumMedia": "0"}


def signed(form: dict[str, str], path: str = "/twilio/sms") -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, form)}


async def test_a_signed_message_is_published_keyed_by_phone_and_answered_with_empty_twiml(webhook):
    client, rt = webhook
    form = twilio_form("Can't swallow")
    response = await client.post("/twilio/sms", data=form, headers=signed(form))  # its speed: bench/survey
    assert response.status == 200 and response.content_type == "text/xml"
    assert (await response.text()).endswith("<Response></Response>")
    [(topic, key, event, wait)] = rt.published
    assert topic == "t.inbound" and key == "+19165550123" and wait is True
    assert isinstance(event, InboundSms) and event.body == "Can't swallow" and event.message_sid == "SM0001"


async def test_the_signature_covers_the_query_string_twilio_called(webhook):
    client, rt = webhook
    form = twilio_form()
    response = await client.post("/twilio/sms?clinic=rocklin", data=form, headers=signed(form, "/twilio/sms?clinic=rocklin"))
    assert response.status == 200
    response = await client.post("/twilio/sms?clinic=other", data=form, headers=signed(form, "/twilio/sms?clinic=rocklin"))
    assert response.status == 403 and len(rt.published) == 1


async def test_an_encoded_query_string_is_checked_exactly_as_twilio_signed_it(webhook):
    client, rt = webhook
    form = twilio_form()
    path = "/twilio/sms?next=https%3A%2F%2Fclinic.test%2Fa%20b"
    # sent exactly as written (a client normally re-quotes the query), as Twilio sends it
    response = await client.post(URL(path, encoded=True), data=form, headers=signed(form, path))
    assert response.status == 200 and len(rt.published) == 1


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "Zm9yZ2Vk"}], ids=["missing", "forged"])
async def test_a_missing_or_forged_signature_gets_403_and_nothing_is_published(webhook, headers):
    client, rt = webhook
    response = await client.post("/twilio/sms", data=twilio_form(), headers=headers)
    assert response.status == 403 and rt.published == []


async def test_a_body_altered_after_signing_gets_403(webhook):
    client, rt = webhook
    form = twilio_form("no")
    response = await client.post("/twilio/sms", data=form | {"Body": "yes"}, headers=signed(form))
    assert response.status == 403 and rt.published == []


@pytest.mark.parametrize("drop", ["MessageSid", "From", "Body"])
async def test_a_signed_request_that_is_not_an_sms_gets_400_with_the_reason_and_nothing_is_published(webhook, drop):
    client, rt = webhook
    form = {k: v for k, v in twilio_form().items() if k != drop}
    response = await client.post("/twilio/sms", data=form, headers=signed(form))
    assert response.status == 400 and drop in await response.text()
    assert rt.published == []


async def test_a_sender_that_is_not_a_phone_number_gets_400(webhook):
    client, rt = webhook
    form = twilio_form(phone="not-a-number")
    response = await client.post("/twilio/sms", data=form, headers=signed(form))
    assert response.status == 400 and rt.published == []


def test_phone_numbers_are_normalised_to_e164():
    assert normalise_phone("+1 (916) 555-0123") == "+19165550123"
    assert normalise_phone("+34 612 34 56 78") == "+34612345678"
    assert normalise_phone("12345") is None
