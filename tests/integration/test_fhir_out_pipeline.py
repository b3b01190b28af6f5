"""A patient's cycle on the real broker, read back as FHIR: enrolment and treatment
published as an EHR integration does, the check-ins opened as the scheduler opens them,
the patient's replies through the signed Twilio webhook to the real survey (and its
questions through the real notifier), and the real portal worker projecting it all:
its FHIR read API answers with the QuestionnaireResponses, Observations, AdverseEvent
and Flag, and its push sink gives the EHR (a local FHIR server) each of them once, after
a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from fhir.resources.R4B import get_fhir_model_class
from twilio.request_validator import RequestValidator
from yarl import URL

from shared.events import CheckinDue, PatientEnrolled, TreatmentRecorded
from tests.support.fake_fhir import FakeFhirServer
from tests.support.kafka import eventually, eventually_async

pytestmark = pytest.mark.integration
PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
CLOCK_START = datetime(2026, 3, 12, 22, 0, tzinfo=timezone.utc)  # mid-afternoon in California, two days after treatment
PATIENT, PHONE = "p-fhir-1", "+19165550177"
API = {"Authorization": "Bearer test-api-token"}  # CYCLECARE_API_TOKEN of tests/conftest.py's worker_env


@pytest.fixture
async def ehr() -> AsyncIterator[FakeFhirServer]:
    server = await FakeFhirServer(fail_first=1).start()
    yield server
    await server.stop()


def due(kind: str, day: int, checkin_id: str) -> CheckinDue:
    return CheckinDue(patient_id=PATIENT, clinic_id="rocklin", treatment_id="t-fhir-1", cycle=1, day=day, kind=kind,
                      checkin_id=checkin_id, due_at=CLOCK_START - timedelta(minutes=5))


async def reply(http: aiohttp.ClientSession, survey_url: str, token: str, text: str, n: int) -> None:
    form = {"MessageSid": f"SM{n:032d}", "AccountSid": "ACtest00000000000000000000000000", "From": PHONE,
            "To": "+19165550100", "Body": text}
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + "/twilio/sms", form)
    async with http.post(f"{survey_url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as response:
        assert response.status == 200, await response.text()


async def fhir(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url, headers=API) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/fhir+json"
        body = await response.text()
    bundle = json.loads(body)
    get_fhir_model_class(bundle["resourceType"]).model_validate_json(body)  # a valid R4B resource
    return bundle


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


async def test_a_patients_cycle_ends_in_fhir_resources_readable_by_search_and_pushed_to_the_ehr(
        start_worker, publisher, topics, watch, fake_twilio, ehr) -> None:
    clock = {"CYCLECARE_CLOCK_START": CLOCK_START.isoformat()}
    survey = await start_worker("survey", **clock)
    await start_worker("notifier", **clock)
    portal = await start_worker("portal", CYCLECARE_FHIR_SINK_URL=ehr.url, CYCLECARE_FHIR_SINK_TOKEN=ehr.token, **clock)
    phones = await watch(f"{topics.namespace}-survey-phones-changelog")
    checkins = await watch(topics.checkins)

    def completed(checkin_id: str) -> bool:
        return any(getattr(e, "checkin_id", None) == checkin_id for e in checkins.events(topics.checkins))

    await publisher.send(topics.patients, PATIENT, PatientEnrolled(
        patient_id=PATIENT, clinic_id="rocklin", first_name="Ana", phone=PHONE, timezone="America/Los_Angeles",
        sms_consent=True, baseline_headache_days=20))
    await publisher.send(topics.treatments, PATIENT, TreatmentRecorded(
        treatment_id="t-fhir-1", patient_id=PATIENT, clinic_id="rocklin", administered_on=date(2026, 3, 10)))
    await eventually(lambda: phones.records, what="the survey indexing the patient's phone")

    async with aiohttp.ClientSession() as http:
        # day 2: the side-effect check-in, answered with a red flag
        await publisher.send(topics.due, PATIENT, due("side_effects", 2, "c-fhir-se"))
        await eventually(lambda: any("swallow" in m.body for m in fake_twilio.to(PHONE)), what="the Q1 SMS")
        await reply(http, survey.url, fake_twilio.auth_token, "yes, it is hard to swallow", 1)
        await eventually(lambda: completed("c-fhir-se"), what="the side-effect check-in completed")  # before the next opens
        # day 28: the headache check-in, Q3a then Q3b
        await publisher.send(topics.due, PATIENT, due("headache_frequency", 28, "c-fhir-hf"))
        await eventually(lambda: any("have a headache" in m.body for m in fake_twilio.to(PHONE)), what="the Q3a SMS")
        await reply(http, survey.url, fake_twilio.auth_token, "12", 2)
        await eventually(lambda: any("take medicine" in m.body for m in fake_twilio.to(PHONE)), what="the Q3b SMS")
        await reply(http, survey.url, fake_twilio.auth_token, "3", 3)

        base = f"{portal.url}/fhir/R4"
        responses = await eventually_async(
            lambda: fhir(http, f"{base}/QuestionnaireResponse?patient=Patient/{PATIENT}"),
            lambda bundle: len(resources(bundle)) == 2, what="both check-ins as QuestionnaireResponses", timeout=60)
        side, headache = resources(responses)
        assert side["questionnaire"].endswith("side-effects") and side["item"][0] == {"linkId": "q1", "answer": [{"valueBoolean": True}]}
        assert [i["answer"][0]["valueInteger"] for i in headache["item"]] == [12, 3]

        observations = resources(await fhir(http, f"{base}/Observation?patient={PATIENT}"))
        assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in observations] == [
            ("headache-days", 12), ("acute-medication-days", 3)]
        [adverse] = resources(await fhir(http, f"{base}/AdverseEvent?patient={PATIENT}"))
        assert adverse["seriousness"]["coding"][0]["code"] == "serious" and adverse["event"]["coding"][0]["code"] == "dysphagia"
        flags = await eventually_async(lambda: fhir(http, f"{base}/Flag?patient={PATIENT}"), lambda b: resources(b),
                                       what="the urgent alert as a Flag")
        [flag] = resources(flags)
        assert flag["status"] == "active" and "urgent" in [c["coding"][0]["code"] for c in flag["category"]]

        # search by date (the simulated clock's day) and page one resource at a time through the next links
        today = CLOCK_START.date().isoformat()
        assert len(resources(await fhir(http, f"{base}/QuestionnaireResponse?patient={PATIENT}&date=ge{today}&date=le{today}"))) == 2
        assert resources(await fhir(http, f"{base}/QuestionnaireResponse?patient={PATIENT}&date=lt{today}")) == []
        url: str | None = f"{base}/QuestionnaireResponse?patient={PATIENT}&_count=1"
        paged = []
        while url:
            bundle = await fhir(http, url)
            paged += [r["id"] for r in resources(bundle)]
            url = next((str(URL(link["url"])) for link in bundle["link"] if link["relation"] == "next"), None)
        assert paged == [side["id"], headache["id"]]

        async with http.get(f"{base}/Flag") as unauthorised:
            assert unauthorised.status == 401

    # the push sink: every new result once in the EHR, the first request's 500 retried
    await eventually(lambda: len(ehr.stored) == 4, what="two responses, the adverse event and the flag in the EHR", timeout=60)
    assert sorted(r["resourceType"] for r in ehr.stored.values()) == ["AdverseEvent", "Flag", "QuestionnaireResponse", "QuestionnaireResponse"]
    first = ehr.requests[0].condition  # answered 500, then sent again after a backoff, once stored
    assert [r.condition for r in ehr.requests].count(first) == 2 and first in ehr.stored
    assert PHONE not in portal.output()
