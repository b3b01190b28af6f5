"""FHIR out of the portal's read model (a real SQLite database): the builders, keyset
paging, search parameters and the read API over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from services.portal.fhir.api import FhirApi
from services.portal.fhir.resources import BUILDERS, questionnaires
from services.portal.fhir.search import Bound, Cursor, Search, SearchError, next_link, parse_bound, parse_search
from services.portal.fhir.store import FhirStore
from services.portal.store import Projection
from tests.support.fhir_story import full_cycle
from tests.support.portal_db import migrated_sqlite
from tests.support.portal_events import T0, enrolled, headache_checkin

TOKEN = "fhir-test-token"
UTC = timezone.utc


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await migrated_sqlite(tmp_path / "portal.db")
    await Projection(engine).apply(full_cycle("p1") + full_cycle("p2"))
    yield engine
    await engine.dispose()


async def every(engine: AsyncEngine, resource_type: str, **search: Any) -> list[Any]:
    return [r async for r in FhirStore(engine).every(resource_type, Search(**search))]


def construct_fhir_element(resource_type: str, text: str) -> Any:
    """Parse and validate ``text`` as an R4B ``resource_type``."""
    return get_fhir_model_class(resource_type).model_validate_json(text)


def as_json(resource: Any) -> dict[str, Any]:
    return json.loads(resource.model_dump_json())


# --- every resource validates -------------------------------------------------------------


async def test_every_resource_type_built_from_a_full_cycle_validates_as_fhir_r4b(engine: AsyncEngine) -> None:
    built = {t: await every(engine, t, patient="p1") for t in BUILDERS}
    built["Questionnaire"] = questionnaires()
    for resource_type, resources in built.items():
        assert resources, f"the cycle gives no {resource_type}"
        for resource in resources:
            parsed = construct_fhir_element(resource_type, resource.model_dump_json())  # validates
            assert parsed.get_resource_type() == resource_type
    assert {t: len(r) for t, r in built.items()} == {
        "QuestionnaireResponse": 4, "Observation": 3, "AdverseEvent": 3, "Flag": 2, "DetectedIssue": 1,
        "Communication": 10, "Questionnaire": 2,
    }


# --- what each resource says --------------------------------------------------------------


async def test_a_red_flag_report_is_a_serious_adverse_event_and_a_drooping_eyelid_a_severe_non_serious_one(engine) -> None:
    red, eyelid, neck = [as_json(r) for r in await every(engine, "AdverseEvent", patient="p1")]
    assert red["seriousness"]["coding"][0]["code"] == "serious"
    assert red["event"]["coding"][0] == {"system": "urn:cyclecare:red-flag", "code": "dysphagia", "display": "new trouble swallowing"}
    assert red["subject"] == {"reference": "Patient/p1"} and red["identifier"]["value"] == "p1-rf1-red-flags"
    assert eyelid["seriousness"]["coding"][0]["code"] == "non-serious" and eyelid["severity"]["coding"][0]["code"] == "severe"
    assert eyelid["event"]["text"] == "drooping eyelid"
    assert neck["severity"]["coding"][0]["code"] == "mild" and neck["event"]["text"] == "neck pain or stiffness"


async def test_a_questionnaire_response_carries_the_answers_the_patient_gave_and_nothing_for_a_missing_one(engine) -> None:
    responses = {r.id: as_json(r) for r in await every(engine, "QuestionnaireResponse", patient="p1")}
    red = responses["p1-rf1"]
    assert red["questionnaire"] == "urn:cyclecare:questionnaire:side-effects" and red["status"] == "completed"
    items = {i["linkId"]: i["answer"] for i in red["item"]}
    assert items["q1"] == [{"valueBoolean": True}] and items["q1-reasons"][0]["valueCoding"]["code"] == "dysphagia"
    assert items["q2"][0]["valueCoding"]["code"] == "2"
    assert items["q2"][0]["item"][0]["answer"][0]["valueCoding"]["code"] == "severe"
    partial = responses["p1-hc-partial"]
    assert [(i["linkId"], i["answer"]) for i in partial["item"]] == [("q3a", [{"valueInteger": 16}])]


async def test_headache_and_medication_days_are_observations_over_the_four_weeks_before_the_report(engine) -> None:
    observations = [as_json(o) for o in await every(engine, "Observation", patient="p1")]
    assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in observations] == [
        ("headache-days", 12), ("acute-medication-days", 3), ("headache-days", 16)]  # no medication figure: no Observation
    assert observations[0]["effectivePeriod"] == {"start": "2026-03-01T15:00:00Z", "end": "2026-03-29T15:00:00Z"}  # day 27
    assert observations[0]["valueQuantity"]["unit"] == "days"
    assert observations[0]["derivedFrom"] == [{"reference": "QuestionnaireResponse/p1-hc1-12"}]


async def test_an_alert_is_a_flag_inactive_once_resolved_and_a_non_response_review_is_also_a_detected_issue(engine) -> None:
    urgent, review = [as_json(f) for f in await every(engine, "Flag", patient="p1")]
    assert urgent["status"] == "inactive" and urgent["identifier"] == [{"system": "urn:cyclecare:alert", "value": "p1-a1"}]
    assert urgent["period"] == {"start": "2026-03-03T15:00:00Z", "end": "2026-03-03T15:30:00Z"}
    assert review["status"] == "active" and review["code"]["coding"][0]["code"] == "non_response"
    [issue] = [as_json(d) for d in await every(engine, "DetectedIssue", patient="p1")]
    assert issue["id"] == "p1-nr" and issue["patient"] == {"reference": "Patient/p1"} and "mitigation" not in issue


async def test_an_acknowledged_alert_stays_an_active_flag(tmp_path: Path) -> None:
    from tests.support.portal_events import acked, alert

    engine = await migrated_sqlite(tmp_path / "ack.db")
    await Projection(engine).apply([enrolled(), alert(), acked()])
    [flag] = await every(engine, "Flag")
    assert flag.status == "active"
    await engine.dispose()


async def test_messages_sent_and_the_patients_replies_are_communications(engine) -> None:
    messages = [as_json(c) for c in await every(engine, "Communication", patient="p1")]
    sent = next(m for m in messages if m["category"][0]["coding"][0]["code"] == "checkin_q1" and m["status"] == "completed")
    assert sent["recipient"] == [{"reference": "Patient/p1"}] and "payload" not in sent
    reply = next(m for m in messages if m.get("payload"))
    assert reply["sender"] == {"reference": "Patient/p1"} and reply["payload"] == [{"contentString": "yes, hard to swallow"}]
    failed = next(m for m in messages if m["status"] == "not-done")
    assert failed["statusReason"]["text"] == "number unreachable"


def test_the_questionnaires_ask_the_check_in_questions_in_their_order() -> None:
    side, headache = questionnaires()
    assert [i.linkId for i in side.item] == ["q1", "q1-reasons", "q2"]
    assert [o.valueCoding.display for o in side.item[2].answerOption][:2] == ["neck pain or stiffness", "drooping eyelid"]
    assert [(i.linkId, i.type) for i in headache.item] == [("q3a", "integer"), ("q3b", "integer")]


# --- search parameters and paging ---------------------------------------------------------


def test_a_date_covers_its_whole_precision_and_the_prefixes_bound_it() -> None:
    day, next_day = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    assert parse_bound("2026-03-02", "date") == Bound(day, next_day)
    assert parse_bound("ge2026-03-02", "date") == Bound(day, None)
    assert parse_bound("gt2026-03-02", "date") == Bound(next_day, None)
    assert parse_bound("lt2026-03", "date") == Bound(None, datetime(2026, 3, 1, tzinfo=UTC))
    assert parse_bound("le2026-12", "date") == Bound(None, datetime(2027, 1, 1, tzinfo=UTC))
    assert parse_bound("ge2026-03-02T10:00:00+02:00", "date").start == datetime(2026, 3, 2, 8, tzinfo=UTC)


@pytest.mark.parametrize(("query", "expression"), [
    ([("name", "Ana")], "name"), ([("date", "yesterday")], "date"), ([("_count", "0")], "_count"),
    ([("_count", "many")], "_count"), ([("_cursor", "not-a-cursor")], "_cursor"),
    ([("patient", "p1"), ("patient", "p2")], "patient"), ([("patient", "Practitioner/x/y")], "patient"),
])
def test_a_parameter_the_server_cannot_honour_is_refused_and_named(query: list[tuple[str, str]], expression: str) -> None:
    with pytest.raises(SearchError) as refused:
        parse_search(query)
    assert refused.value.expression == expression


def test_the_next_link_keeps_every_parameter_and_replaces_the_cursor() -> None:
    from yarl import URL

    url = URL("http://portal/fhir/R4/Flag?patient=p1&date=ge2026-01-01&date=le2026-12-31&_count=2&_cursor=old")
    link = URL(next_link(url, Cursor(T0, "a1", 1)))
    assert link.query.getall("date") == ["ge2026-01-01", "le2026-12-31"] and link.query["patient"] == "p1"
    assert Cursor.decode(link.query["_cursor"]) == Cursor(T0, "a1", 1)


async def walk(engine: AsyncEngine, resource_type: str, count: int, **search: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await FhirStore(engine).search(resource_type, Search(count=count, cursor=cursor, **search))
        pages.append([str(r.id) for r in page.resources])
        if page.next is None:
            return pages
        cursor = page.next


@pytest.mark.parametrize("count", [1, 2, 3, 5, 100])
async def test_paging_returns_every_resource_once_in_order_whatever_the_page_size(engine, count: int) -> None:
    whole = [str(r.id) for r in await every(engine, "Observation")]  # two per report: pages cut inside a row
    pages = await walk(engine, "Observation", count)
    assert [i for page in pages for i in page] == whole and len(whole) == 6
    assert all(len(page) == count for page in pages[:-1])


async def test_results_added_behind_the_cursor_do_not_shift_the_next_page(engine) -> None:
    first = await FhirStore(engine).search("QuestionnaireResponse", Search(count=3))
    early = headache_checkin(5, 1, patient_id="p3", at=T0 - timedelta(days=30))
    await Projection(engine).apply([enrolled("p3"), early])
    rest = await FhirStore(engine).search("QuestionnaireResponse", Search(count=100, cursor=first.next))
    everything = [str(r.id) for r in await every(engine, "QuestionnaireResponse")]
    assert [str(r.id) for r in first.resources + rest.resources] == [i for i in everything if i != early.checkin_id]


async def test_date_and_last_updated_searches_select_by_when_and_by_the_latest_change(engine) -> None:
    days_1_to_7 = [parse_bound("ge2026-03-03", "date"), parse_bound("lt2026-03-09", "date")]
    assert [r.id for r in await every(engine, "QuestionnaireResponse", patient="p1", date=days_1_to_7)] == ["p1-rf1", "p1-se1"]
    # the urgent alert was raised on day 1 and resolved 30 minutes later; the review is later still
    changed_late = [parse_bound("gt2026-03-03T15:10:00+00:00", "_lastUpdated")]
    assert [r.id for r in await every(engine, "Flag", patient="p1", last_updated=changed_late)] == ["p1-a1", "p1-nr"]
    assert [r.id for r in await every(engine, "Flag", patient="p1", last_updated=[parse_bound("gt2026-03-03T15:40:00+00:00", "_lastUpdated")])] == ["p1-nr"]


# --- the read API over HTTP ---------------------------------------------------------------


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient]:
    app = web.Application()
    app.add_routes(FhirApi(FhirStore(engine), TOKEN).routes())
    async with TestClient(TestServer(app)) as client:
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_read_api_refuses_a_request_without_the_bearer_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await client.get("/fhir/R4/Flag", headers=headers)
        body = await response.json(content_type=None)
        assert response.status == 401 and body["resourceType"] == "OperationOutcome"


async def test_without_a_token_configured_the_read_api_is_off(engine: AsyncEngine) -> None:
    app = web.Application()
    app.add_routes(FhirApi(FhirStore(engine), None).routes())
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/fhir/R4/Flag", headers=AUTH)).status == 503


async def test_a_search_follows_next_links_to_the_end_as_fhir_json(client: TestClient) -> None:
    url, seen = "/fhir/R4/AdverseEvent?patient=Patient/p2&_count=2", []
    while url:
        response = await client.get(url, headers=AUTH)
        assert response.status == 200 and response.content_type == "application/fhir+json"
        bundle = construct_fhir_element("Bundle", await response.text())
        assert bundle.type == "searchset"
        seen += [e.resource.id for e in bundle.entry or []]
        assert all(e.fullUrl.endswith(f"/fhir/R4/AdverseEvent/{e.resource.id}") for e in bundle.entry or [])
        url = next((URL(link.url).path_qs for link in bundle.link if link.relation == "next"), None)
    assert seen == ["p2-rf1-red-flags", "p2-rf1-effect-2", "p2-se1-effect-1"]


async def test_a_resource_is_read_by_its_id_and_an_unknown_one_is_not_found(client: TestClient) -> None:
    response = await client.get("/fhir/R4/Observation/p1-hc1-12-medication-days", headers=AUTH)
    assert response.status == 200 and (await response.json(content_type=None))["valueQuantity"]["value"] == 3
    assert (await client.get("/fhir/R4/Flag/p1-a1", headers=AUTH)).status == 200
    assert (await client.get("/fhir/R4/Flag/nope", headers=AUTH)).status == 404
    assert (await client.get("/fhir/R4/Patient", headers=AUTH)).status == 404


async def test_a_bad_search_parameter_is_a_400_operation_outcome_naming_it(client: TestClient) -> None:
    response = await client.get("/fhir/R4/Flag?status=active", headers=AUTH)
    body = await response.json(content_type=None)
    assert response.status == 400 and body["issue"][0]["expression"] == ["status"]


async def test_the_questionnaires_and_the_capability_statement_are_served(client: TestClient) -> None:
    bundle = await (await client.get("/fhir/R4/Questionnaire", headers=AUTH)).json(content_type=None)
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["side-effects", "headache-frequency"]
    assert (await client.get("/fhir/R4/Questionnaire/headache-frequency", headers=AUTH)).status == 200
    capability = construct_fhir_element("CapabilityStatement", await (await client.get("/fhir/R4/metadata")).text())
    assert {r.type for r in capability.rest[0].resource} >= {"Flag", "Observation", "Questionnaire"}


def test_a_fhir_read_sent_to_another_worker_is_pointed_at_the_portal() -> None:
    from shared.endpoints import not_found_hint, run_urls

    hint = not_found_hint("scheduler", "GET", "/fhir/R4/Flag", run_urls(6066))
    assert hint["hint"] == "GET /fhir/R4/ is served by the portal at http://localhost:6069, not by the scheduler"
