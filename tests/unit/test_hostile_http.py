"""Hostile and sloppy requests at the HTTP edges: never a 5xx, the right 4xx with the reason,
nothing published that breaks a limit, and no phone number or message body in any log line.

The edges run on a stand-in runtime that records what would be published (the same
handlers the workers serve; tests/integration covers them on the real broker).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from services.notifier.adapters.status_webhook import add_status_webhook
from services.scheduler.adapters.ingest_api import add_ingest_routes
from services.survey.adapters.webhook import add_sms_webhook
from shared.clinics import load_clinics
from shared.config import Settings
from shared.events import Event
from shared.survey_events import InboundSms
from shared.limits import MAX_HTTP_BODY_BYTES, MAX_SMS_BODY
from shared.topics import Topics

PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
AUTH_TOKEN = "test-auth-token"
API_TOKEN = {"Authorization": "Bearer test-api-token"}
PHONE = "+19165550123"
PATIENT = {"patient_id": "p-api", "clinic_id": "rocklin", "first_name": "Ana", "phone": PHONE,
           "timezone": "America/Los_Angeles", "sms_consent": True}
FORM = "application/x-www-form-urlencoded"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@dataclass
class RecordingRuntime:
    """The part of :class:`shared.streaming.Runtime` the HTTP edges use."""

    settings: Settings = field(default_factory=lambda: Settings(
        twilio_auth_token=AUTH_TOKEN, public_url=PUBLIC_URL, api_token="test-api-token"))
    topics: Topics = field(default_factory=lambda: Topics("t"))
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    published: list[tuple[str, str, Event]] = field(default_factory=list)

    async def publish(self, topic: str, key: str, event: Event, *, wait: bool = False) -> None:
        self.published.append((topic, key, event))

    async def emit(self, key: str, event: Event, *, wait: bool = False) -> None:
        await self.publish(self.topics.of(event), key, event, wait=wait)


@pytest.fixture(scope="module")
async def edges() -> AsyncIterator[tuple[TestClient, RecordingRuntime]]:
    rt = RecordingRuntime()
    add_sms_webhook(rt)  # type: ignore[arg-type]
    add_status_webhook(rt)  # type: ignore[arg-type]
    add_ingest_routes(rt, load_clinics(None))  # type: ignore[arg-type]
    app = web.Application()
    app.add_routes(rt.routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, rt
    await client.close()


@pytest.fixture
def edge(edges) -> tuple[TestClient, RecordingRuntime]:
    client, rt = edges
    rt.published.clear()
    return client, rt


def sms_form(**changes: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "0" * 32, "AccountSid": "ACtest", "From": PHONE, "To": "+19165550100",
            "Body": "no", "NumMedia": "0"} | changes


def signature(form: dict[str, str], path: str) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)}


# --- the ingest API ---------------------------------------------------------------------

INGEST_CASES: dict[str, tuple[bytes, int, str]] = {
    "a 308-character timezone": (json.dumps(PATIENT | {"timezone": "A" * 308}).encode(), 422, "timezone"),
    "a 5,000-digit integer": (json.dumps(PATIENT).encode()[:-1] + b', "baseline_headache_days": '
                              + b"9" * 5000 + b"}", 422, "digits"),
    "JSON nested 100,000 deep": (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 413, "limit"),
    "JSON nested 1,000 deep": (b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}", 422, "nested deeper"),
    "a 1 MB patient_id": (json.dumps(PATIENT | {"patient_id": "p" * 1_000_000}).encode(), 413, "limit"),
    "a 60,000-character event_id": (json.dumps(PATIENT | {"event_id": "e" * 60_000}).encode(), 422, "event_id"),
    "a 50,000-character type": (json.dumps(PATIENT | {"type": "t" * 50_000}).encode(), 422, "type"),
    "bytes that are not UTF-8": (b'{"patient_id": "\xff"}', 422, "UTF-8"),
    "an infinite number of units": (b'{"treatment_id": "t", "patient_id": "p", "clinic_id": "rocklin", '
                                    b'"administered_on": "2026-03-02", "units": 1e999}', 422, "units"),
}


@pytest.mark.parametrize("case", INGEST_CASES)
async def test_the_ingest_api_refuses_hostile_bodies_with_a_4xx_and_the_reason(edge, case):
    client, rt = edge
    body, status, reason = INGEST_CASES[case]
    path = "/v1/treatments" if b"treatment_id" in body else "/v1/patients"
    response = await client.post(path, data=body, headers=API_TOKEN | {"Content-Type": "application/json"})
    assert response.status == status
    text = await response.text()
    assert reason in text and len(text) < 5000
    assert rt.published == []


async def test_the_ingest_api_refuses_an_endless_chunked_body_at_the_limit(edge):
    client, rt = edge

    async def endless():
        for _ in range(1000):
            yield b"x" * 1024

    response = await client.post("/v1/patients", data=endless(), headers=API_TOKEN)
    assert response.status == 413 and rt.published == []


async def test_the_ingest_api_still_accepts_a_valid_patient(edge):
    client, rt = edge
    response = await client.post("/v1/patients", json=PATIENT, headers=API_TOKEN)
    assert response.status == 202 and len(rt.published) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=20,
)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from([*PATIENT, "type", "event_id", "version", "occurred_at", "email",
                                                "baseline_headache_days", "language"]), json_values, max_size=4))
async def test_fuzzed_patients_get_202_or_422_never_a_5xx(edges, changes):
    client, rt = edges
    response = await client.post("/v1/patients", data=json.dumps(PATIENT | changes), headers=API_TOKEN)
    assert response.status in (202, 422), await response.text()


@FUZZ
@given(body=st.binary(max_size=3000))
async def test_fuzzed_bytes_get_a_4xx_never_a_5xx_at_the_ingest_api(edges, body):
    client, _ = edges
    for path in ("/v1/patients", "/v1/treatments"):
        response = await client.post(path, data=body, headers=API_TOKEN)
        assert 400 <= response.status < 500


# --- the Twilio webhooks ----------------------------------------------------------------

WEBHOOKS = ["/twilio/sms", "/twilio/status"]
UNSIGNED_BODIES: dict[str, tuple[bytes, str]] = {
    "a body that is not UTF-8": (b"Body=%FF%FE&From=\xff\xfe", "application/x-www-form-urlencoded"),
    "an unknown charset": (b"Body=hi", "application/x-www-form-urlencoded; charset=x-unknown-42"),
    "a nested multipart body": (b'--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--\r\n--a--\r\n',
                                "multipart/form-data; boundary=a"),
    "JSON": (b'{"Body": "hi"}', "application/json"),
}


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("case", UNSIGNED_BODIES)
async def test_an_unsigned_request_gets_403_whatever_its_body(edge, path, case):
    client, rt = edge
    body, content_type = UNSIGNED_BODIES[case]
    response = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert response.status == 403 and rt.published == []


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("case", UNSIGNED_BODIES)
async def test_a_signed_request_with_an_unparsable_body_gets_400(edge, path, case):
    client, rt = edge
    body, content_type = UNSIGNED_BODIES[case]
    response = await client.post(path, data=body, headers={"Content-Type": content_type,
                                                           "X-Twilio-Signature": "c2lnbmVk"})
    assert response.status == 400 and "not a form" in await response.text() and rt.published == []


@pytest.mark.parametrize("path", WEBHOOKS)
async def test_a_form_over_the_size_limit_gets_413(edge, path):
    client, rt = edge
    form = sms_form(MessageSid="SM" + "9" * 300_000)
    response = await client.post(path, data=form, headers=signature(form, path))
    assert response.status == 413 and rt.published == []


async def test_a_signed_sms_with_an_oversized_message_sid_gets_422_and_nothing_reaches_a_table(edge):
    client, rt = edge
    form = sms_form(MessageSid="SM" + "9" * 20_000)
    response = await client.post("/twilio/sms", data=form, headers=signature(form, "/twilio/sms"))
    assert response.status == 422 and "message_sid" in await response.text()
    assert rt.published == []


async def test_a_signed_receipt_is_published_for_every_reader_and_on_the_notifiers_own_topic_for_the_streak(edge):
    client, rt = edge
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "30005"}
    path = "/twilio/status?m=due-1-reminder&p=p-ana&c=rocklin&k=booking_reminder&a=p"
    response = await client.post(path, data=form, headers=signature(form, path))
    assert response.status == 204
    assert sorted(topic for topic, _, _ in rt.published) == sorted([rt.topics.deliveries, rt.topics.notifier_retry])
    assert {(key, event.type, event.message_key) for _, key, event in rt.published} == {
        ("p-ana", "message.failed", "due-1-reminder")}


async def test_a_signed_status_callback_with_an_oversized_sid_gets_422(edge):
    client, rt = edge
    form = {"MessageSid": "SM" + "9" * 20_000, "MessageStatus": "delivered"}
    response = await client.post("/twilio/status", data=form, headers=signature(form, "/twilio/status"))
    assert response.status == 422 and rt.published == []


async def test_an_sms_longer_than_twilio_allows_is_kept_whole_up_to_the_limit_and_refused_past_it(edge):
    client, rt = edge
    long_body = "é" * 5000
    form = sms_form(Body=long_body)
    response = await client.post("/twilio/sms", data=form, headers=signature(form, "/twilio/sms"))
    assert response.status == 200
    [(_, _, event)] = rt.published
    assert isinstance(event, InboundSms) and event.body == long_body
    form = sms_form(Body="x" * (MAX_SMS_BODY + 1))
    response = await client.post("/twilio/sms", data=form, headers=signature(form, "/twilio/sms"))
    assert response.status == 422 and "body" in await response.text() and len(rt.published) == 1


async def test_too_many_form_fields_get_400(edge):
    client, rt = edge
    form = sms_form() | {f"F{n}": "x" for n in range(200)}
    response = await client.post("/twilio/sms", data=form, headers=signature(form, "/twilio/sms"))
    assert response.status == 400 and rt.published == []


def forms(extra_keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    keys = st.sampled_from(["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "MessageStatus", "ErrorCode",
                            *extra_keys]) | st.text(max_size=10)
    return st.dictionaries(keys, st.text(max_size=300), max_size=8)


@FUZZ
@given(form=forms([]), signed=st.booleans(), base=st.booleans(), path=st.sampled_from(WEBHOOKS))
async def test_fuzzed_forms_signed_or_not_get_no_5xx_and_log_no_phone_or_body(edges, caplog, form, signed, base, path):
    client, rt = edges
    if base:
        form = sms_form(Body="my secret reply") | form
    headers = signature(form, path) if signed else {"X-Twilio-Signature": "Zm9yZ2Vk"}
    with caplog.at_level(logging.DEBUG):
        response = await client.post(path, data=urlencode(form), headers=headers | {"Content-Type": FORM})
    assert response.status in ((200, 204, 400, 422) if signed else (403,)), await response.text()
    logged = caplog.text
    caplog.clear()
    assert PHONE not in logged and "my secret reply" not in logged
    for value in form.values():
        assert len(value) < 8 or value not in logged


@FUZZ
@given(body=st.binary(max_size=3000), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1", "text/plain",
     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=\xff", ""]),
    signed=st.booleans(), path=st.sampled_from(WEBHOOKS))
async def test_fuzzed_bytes_get_a_4xx_never_a_5xx_at_the_webhooks(edges, body, content_type, signed, path):
    client, _ = edges
    headers = {"Content-Type": content_type} | ({"X-Twilio-Signature": "Zm9yZ2Vk"} if signed else {})
    response = await client.post(path, data=body, headers=headers)
    assert 400 <= response.status < 500


def test_the_body_limit_leaves_room_for_the_longest_twilio_sms():
    encoded_worst = len("%F0%9F%98%80") * 1600  # 1,600 four-byte characters, percent-encoded
    assert encoded_worst + 2000 < MAX_HTTP_BODY_BYTES
