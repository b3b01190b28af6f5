"""The FHIR R4 edge of the scheduler (POST /fhir/R4/...): the token, the content type, the
size and the JSON are checked in that order, every answer is a valid R4B resource with a
4xx for bad input (never a 5xx), and what maps to an event is published before the answer.

The routes run on a stand-in runtime that records what would be published; the real broker
is tests/integration/test_fhir_ingest.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scheduler.adapters.fhir_api import add_fhir_routes
from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.config import Settings
from shared.events import Event
from shared.limits import MAX_FHIR_BODY_BYTES
from shared.topics import Topics
from tests.support.http import serving
from tests.unit.test_fhir_in import entry, patient, procedure, transaction

TOKEN = {"Authorization": "Bearer test-api-token"}
FHIR = {"Content-Type": "application/fhir+json"}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@dataclass
class RecordingRuntime:
    """The part of :class:`shared.streaming.Runtime` the FHIR edge uses; ``publish`` returns
    the acknowledgement to await, as the real one does."""

    settings: Settings = field(default_factory=lambda: Settings(api_token="test-api-token"))
    topics: Topics = field(default_factory=lambda: Topics("t"))
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    published: list[tuple[str, str, Event]] = field(default_factory=list)

    async def publish(self, topic: str, key: str, event: Event, *, wait: bool = False) -> asyncio.Future:
        self.published.append((topic, key, event))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[tuple[TestClient, RecordingRuntime]]:
    rt = RecordingRuntime()
    add_fhir_routes(rt, load_clinics(None), ManualClock(datetime(2026, 3, 12, tzinfo=timezone.utc)))  # type: ignore[arg-type]
    async with serving(rt.routes) as client:
        yield client, rt


@pytest.fixture
def edge(served) -> tuple[TestClient, RecordingRuntime]:
    client, rt = served
    rt.published.clear()
    return client, rt


async def outcome_of(response) -> OperationOutcome:  # noqa: ANN001
    assert response.content_type == "application/fhir+json"
    return OperationOutcome.model_validate_json(await response.text())


async def test_a_posted_patient_is_published_as_an_enrolment_and_answered_202(edge):
    client, rt = edge
    response = await client.post("/fhir/R4/Patient", data=json.dumps(patient()), headers=TOKEN | FHIR)
    assert response.status == 202
    answer = await outcome_of(response)
    [(topic, key, event)] = rt.published
    assert (topic, key, event.type) == ("t.patients", "p-ana", "patient.enrolled")
    assert event.event_id in answer.issue[0].diagnostics and response.headers["ETag"] == f'W/"{event.event_id}"'


async def test_plain_application_json_is_accepted_too(edge):
    client, rt = edge
    response = await client.post("/fhir/R4/Procedure", json=procedure(), headers=TOKEN)
    assert response.status == 202 and rt.published[0][0] == "t.treatments"


@pytest.mark.parametrize("headers, body, status, words", [
    ({}, patient(), 401, "bearer token"),
    ({"Authorization": "Bearer wrong"} | FHIR, patient(), 401, "bearer token"),
    (TOKEN | {"Content-Type": "text/plain"}, patient(), 415, "application/fhir+json"),
    (TOKEN | FHIR, "{nope", 400, "not JSON"),
    (TOKEN | FHIR, procedure(), 400, "takes Patient resources, not Procedure"),
    (TOKEN | FHIR, {"resourceType": "Observation", "status": "final"}, 400, "not Observation"),
    (TOKEN | FHIR, patient(telecom=[{"system": "phone", "value": "12", "use": "mobile"}]), 422, "phone"),
])
async def test_bad_requests_get_the_right_4xx_as_an_operation_outcome_and_publish_nothing(edge, headers, body, status, words):
    client, rt = edge
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post("/fhir/R4/Patient", data=data, headers=headers)
    assert response.status == status
    answer = await outcome_of(response)
    assert answer.issue[0].severity == "error" and words in answer.issue[0].diagnostics
    assert rt.published == []


async def test_an_unknown_code_is_accepted_ignored_and_explained(edge):
    client, rt = edge
    other = procedure(code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]})
    response = await client.post("/fhir/R4/Procedure", data=json.dumps(other), headers=TOKEN | FHIR)
    assert response.status == 200
    answer = await outcome_of(response)
    assert answer.issue[0].severity == "information" and "99213" in answer.issue[0].diagnostics
    assert rt.published == []


async def test_a_body_over_the_limit_gets_413_without_being_read_whole(edge):
    client, rt = edge

    async def endless():
        for _ in range(MAX_FHIR_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = await client.post("/fhir/R4", data=endless(), headers=TOKEN | FHIR)
    assert response.status == 413 and rt.published == []


async def test_a_bundle_publishes_its_good_entries_and_answers_which_failed(edge, caplog):
    client, rt = edge
    caplog.set_level(logging.INFO)
    bundle = transaction(entry(patient()), entry(patient(id="p-bad", telecom=[])), entry(procedure(meta=None)))
    response = await client.post("/fhir/R4", data=json.dumps(bundle), headers=TOKEN | FHIR)
    assert response.status == 200
    answer = Bundle.model_validate_json(await response.text())
    assert answer.type == "transaction-response"
    assert [e.response.status for e in answer.entry] == ["202 Accepted", "422 Unprocessable Entity", "202 Accepted"]
    assert [(t, e.type) for t, _, e in rt.published] == [("t.patients", "patient.enrolled"), ("t.treatments", "treatment.recorded")]
    assert "FHIR transaction of 3 entries: 202 x2, 422 x1" in caplog.text


async def test_a_single_resource_posted_to_the_base_is_a_400(edge):
    client, _ = edge
    response = await client.post("/fhir/R4", data=json.dumps(patient()), headers=TOKEN | FHIR)
    assert response.status == 400 and "Bundle" in (await outcome_of(response)).issue[0].diagnostics


async def test_no_phone_number_or_name_reaches_the_log(edge, caplog):
    client, _ = edge
    caplog.set_level(logging.DEBUG)
    await client.post("/fhir/R4/Patient", data=json.dumps(patient()), headers=TOKEN | FHIR)
    await client.post("/fhir/R4/Patient", data=json.dumps(patient(telecom=[{"system": "phone", "value": "+1916555"}])),
                      headers=TOKEN | FHIR)
    assert "+1916555" not in caplog.text and "Ana" not in caplog.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=20,
)
PATIENT_KEYS = ["id", "telecom", "name", "extension", "communication", "managingOrganization", "identifier", "meta",
                "resourceType"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(PATIENT_KEYS), json_values, max_size=3))
async def test_fuzzed_patients_and_bundles_get_a_valid_answer_never_a_5xx(served, changes):
    client, _ = served
    body = patient() | changes
    response = await client.post("/fhir/R4/Patient", data=json.dumps(body), headers=TOKEN | FHIR)
    assert response.status in (202, 400, 422), await response.text()
    await outcome_of(response)
    response = await client.post("/fhir/R4", data=json.dumps(transaction(entry(procedure()) | {"resource": body})),
                                 headers=TOKEN | FHIR)
    assert response.status in (200, 400, 422), await response.text()


@FUZZ
@given(body=st.binary(max_size=2000))
async def test_fuzzed_bytes_get_a_4xx_never_a_5xx(served, body):
    client, _ = served
    for path in ("/fhir/R4", "/fhir/R4/Patient", "/fhir/R4/MedicationAdministration"):
        response = await client.post(path, data=body, headers=TOKEN | FHIR)
        assert 400 <= response.status < 500


@pytest.mark.parametrize("body", [
    {"resourceType": "R" * 100_000},
    {"resourceType": "Patient", "id": "p-1", "name": [{"given": ["Ana"]}], "telecom": [{"system": "phone", "value": "+19165550111"}],
     "managingOrganization": {"identifier": {"system": "urn:cyclecare:clinic", "value": "c" * 100_000}}},
])
async def test_an_answer_quotes_a_huge_value_cut_short(edge, body):
    client, _ = edge
    response = await client.post("/fhir/R4/Patient", data=json.dumps(body), headers=TOKEN | FHIR)
    assert response.status in (400, 422) and len(await response.text()) < 5000
