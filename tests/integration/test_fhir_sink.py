"""The FHIR push sink against a local FHIR server over HTTP (tests/support/fake_fhir.py):
conditional creates, a 500 retried with backoff and then recorded once, a 422 kept as
failed with the server's OperationOutcome without holding up the rest, a Flag's
resolution as a conditional update. The pusher's clock is moved by the test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from services.portal import schema as s
from services.portal.fhir.sink import HttpFhirSink, Pusher, classify, outbox_states, push_request, retry_failed
from services.portal.fhir.resources import questionnaire_response
from services.portal.store import Projection
from tests.support.fake_fhir import FakeFhirServer
from tests.support.fhir_story import full_cycle
from tests.support.portal_db import engine  # noqa: F401  (the fixture)
from tests.support.portal_events import alert, enrolled, resolved, side_effects_checkin

pytestmark = pytest.mark.integration


class Now:
    def __init__(self) -> None:
        self.moment = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
async def ehr() -> AsyncIterator[FakeFhirServer]:
    server = await FakeFhirServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def sink(ehr: FakeFhirServer) -> AsyncIterator[HttpFhirSink]:
    sink = HttpFhirSink(ehr.url, ehr.token)
    yield sink
    await sink.close()


async def push_all(pusher: Pusher, now: Now, rounds: int = 20) -> None:
    """Pass after pass, moving the clock past each backoff, until nothing is pending."""
    for _ in range(rounds):
        await pusher.push_due()
        if (await outbox_states(pusher.engine)).get("pending", 0) == 0:
            return
        now.moment += timedelta(hours=1)
    raise AssertionError(f"still pending: {await outbox_states(pusher.engine)}")


def identifiers(ehr: FakeFhirServer, resource_type: str) -> list[str]:
    found = []
    for r in ehr.of_type(resource_type):
        ident = r["identifier"][0] if isinstance(r["identifier"], list) else r["identifier"]
        found.append(ident["value"])
    return sorted(found)


async def test_each_new_result_reaches_the_ehr_once_by_conditional_create_after_a_500_is_retried(engine, ehr, sink) -> None:
    await Projection(engine, fhir_outbox=True).apply(full_cycle("p1"))
    ehr.fail_first = 1
    now = Now()
    pusher = Pusher(engine, sink, now)
    await pusher.push_due()
    first = ehr.requests[0]
    assert first.condition == "urn:cyclecare:checkin|p1-rf1"  # in the order the results came
    assert (await outbox_states(engine)) == {"pending": 1, "pushed": 9}
    # backoff: the refused row is not tried again at once
    await pusher.push_due()
    assert len([r for r in ehr.requests if r.condition == first.condition]) == 1
    await push_all(pusher, now)

    assert len([r for r in ehr.requests if r.condition == first.condition]) == 2  # the 500, then the create
    assert identifiers(ehr, "QuestionnaireResponse") == ["p1-hc-partial", "p1-hc1-12", "p1-rf1", "p1-se1"]
    assert identifiers(ehr, "AdverseEvent") == ["p1-rf1-effect-2", "p1-rf1-red-flags", "p1-se1-effect-1"]
    flags = {r["identifier"][0]["value"]: r["status"] for r in ehr.of_type("Flag")}
    assert flags == {"p1-a1": "inactive", "p1-nr": "active"}
    creates = [r for r in ehr.requests if r.method == "POST"]
    assert all(r.condition.startswith("urn:cyclecare:") and r.authorization == "Bearer ehr-token" for r in creates)
    assert await outbox_states(engine) == {"pushed": 10}  # 4 responses, 3 adverse events, 2 flags, 1 resolution


async def test_pushing_the_same_rows_again_after_a_crash_leaves_one_copy_in_the_ehr(engine, ehr, sink) -> None:
    await Projection(engine, fhir_outbox=True).apply(full_cycle("p1"))
    now = Now()
    await push_all(Pusher(engine, sink, now), now)
    stored = dict(ehr.stored)
    # the process died after the EHR answered but before the rows were marked pushed
    async with engine.begin() as conn:
        await conn.execute(update(s.fhir_outbox).values(state="pending"))
    await push_all(Pusher(engine, sink, now), now)
    assert ehr.stored == stored and len(ehr.requests) == 20


async def test_a_refused_resource_is_kept_failed_with_the_servers_operation_outcome_and_the_others_go_on(engine, ehr, sink) -> None:
    ehr.refuse = {"p1-se1-effect-1"}
    await Projection(engine, fhir_outbox=True).apply(full_cycle("p1"))
    now = Now()
    await push_all(Pusher(engine, sink, now), now)
    assert await outbox_states(engine) == {"pushed": 9, "failed": 1}
    async with engine.connect() as conn:
        [row] = list(await conn.execute(select(s.fhir_outbox).where(s.fhir_outbox.c.state == "failed")))
    assert row.resource_id == "p1-se1-effect-1" and row.attempts == 1
    outcome = json.loads(row.error)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["expression"] == ["AdverseEvent.subject"]
    assert "p1-se1-effect-1" not in identifiers(ehr, "AdverseEvent") and len(identifiers(ehr, "AdverseEvent")) == 2
    # fixed on the EHR's side: an operator puts it back in the queue
    ehr.refuse = set()
    assert await retry_failed(engine, now()) == 1
    await push_all(Pusher(engine, sink, now), now)
    assert "p1-se1-effect-1" in identifiers(ehr, "AdverseEvent")


async def test_a_resolution_is_a_conditional_update_of_the_flag(engine, ehr, sink) -> None:
    projection, now = Projection(engine, fhir_outbox=True), Now()
    await projection.apply([enrolled(), alert()])
    await push_all(Pusher(engine, sink, now), now)
    assert [r["status"] for r in ehr.of_type("Flag")] == ["active"]
    await projection.apply([resolved()])
    await push_all(Pusher(engine, sink, now), now)
    put = ehr.requests[-1]
    assert (put.method, put.path, put.condition) == ("PUT", "/fhir/Flag", "urn:cyclecare:alert|a1")
    assert [r["status"] for r in ehr.of_type("Flag")] == ["inactive"]


async def test_a_replayed_event_queues_nothing_new_and_without_a_sink_nothing_is_queued(engine) -> None:
    events = [enrolled(), side_effects_checkin(), alert()]
    await Projection(engine).apply(events)
    assert await outbox_states(engine) == {}
    await Projection(engine, fhir_outbox=True).apply([side_effects_checkin().model_copy(update={"event_id": "again", "checkin_id": "c2"})])
    await Projection(engine, fhir_outbox=True).apply([side_effects_checkin().model_copy(update={"event_id": "again-2", "checkin_id": "c2"})])
    assert await outbox_states(engine) == {"pending": 2}  # c2's response and its one side effect, once


def test_conditional_create_and_update_requests_name_the_identifier() -> None:
    from types import SimpleNamespace

    from tests.support.portal_events import T0

    row = SimpleNamespace(checkin_id="c1", patient_id="p1", kind="headache_frequency", headache_days=3, medication_days=None,
                          red_flags=None, red_flag_reasons=None, effects="[]", completed_at=T0)
    create = push_request(questionnaire_response(row), "create")
    assert (create.method, create.path, create.headers["If-None-Exist"]) == (
        "POST", "QuestionnaireResponse", "identifier=urn:cyclecare:checkin|c1")
    change = push_request(questionnaire_response(row), "resolved")
    assert (change.method, change.path) == ("PUT", "QuestionnaireResponse?identifier=urn:cyclecare:checkin|c1")


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "pushed"), (201, "pushed"), (500, "retry"), (503, "retry"), (429, "retry"), (408, "retry"), (401, "retry"),
    (400, "rejected"), (404, "rejected"), (412, "rejected"), (422, "rejected"),
])
def test_what_each_answer_of_the_ehr_means(status: int, outcome: str) -> None:
    assert classify(status) == outcome
