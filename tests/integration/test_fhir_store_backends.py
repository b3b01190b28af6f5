"""FHIR out on both databases the portal supports (SQLite, and a throwaway PostgreSQL
cluster; skipped with the reason when its binaries are missing): the searches, keyset
paging and the push sink's outbox give the same answers on each."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.fhir.search import Search, parse_bound
from services.portal.fhir.sink import PushRequest, PushResult, Pusher, outbox_states
from services.portal.fhir.store import FhirStore
from services.portal.store import Projection
from tests.integration.test_portal_store import engine, postgres  # noqa: F401  (the fixtures: one per backend)
from tests.support.fhir_story import full_cycle

pytestmark = pytest.mark.integration


class RecordingSink:
    """The FhirSink port's fake: accepts everything, keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[PushRequest] = []

    async def send(self, request: PushRequest) -> PushResult:
        self.sent.append(request)
        return PushResult("pushed", 201, "")


async def test_every_search_pages_the_same_way_on_each_backend(engine: AsyncEngine) -> None:
    await Projection(engine).apply(full_cycle("p1") + full_cycle("p2"))
    store = FhirStore(engine)
    counts = {}
    for resource_type in ("QuestionnaireResponse", "Observation", "AdverseEvent", "Flag", "DetectedIssue", "Communication"):
        whole = [r.id async for r in store.every(resource_type, Search())]
        paged, cursor = [], None
        while True:
            page = await store.search(resource_type, Search(count=3, cursor=cursor))
            paged += [r.id for r in page.resources]
            if page.next is None:
                break
            cursor = page.next
        assert paged == whole
        counts[resource_type] = len(whole)
    assert counts == {"QuestionnaireResponse": 8, "Observation": 6, "AdverseEvent": 6, "Flag": 4, "DetectedIssue": 2,
                      "Communication": 20}
    late = Search(patient="p2", last_updated=[parse_bound("ge2026-08-01", "_lastUpdated")])
    assert [r.id async for r in store.every("Flag", late)] == ["p2-nr"]


async def test_the_outbox_is_queued_once_and_pushed_in_order_on_each_backend(engine: AsyncEngine) -> None:
    projection = Projection(engine, fhir_outbox=True)
    await projection.apply(full_cycle("p1"))
    await projection.apply(full_cycle("p1"))  # redelivered: nothing new
    sink = RecordingSink()
    assert await Pusher(engine, sink).push_due() == 10
    assert await outbox_states(engine) == {"pushed": 10}
    # up to 8 resources are pushed at once: only each resource's own rows keep their order
    sent = [r.headers.get("If-None-Exist", r.path) for r in sink.sent]
    assert len(sent) == len(set(sent)) == 10
    assert {"identifier=urn:cyclecare:checkin|p1-rf1", "identifier=urn:cyclecare:adverse-event|p1-rf1-red-flags",
            "identifier=urn:cyclecare:adverse-event|p1-rf1-effect-2"} <= set(sent)
