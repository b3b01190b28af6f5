"""FHIR R4 in on the real broker: a transaction Bundle from an EHR becomes contract events,
once, whatever the number of times it is posted."""

from __future__ import annotations

import re

import aiohttp
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from tests.support.fhir import FHIR_HEADERS, as_body, bundle_of, ehr_patient, ehr_procedure
from tests.support.kafka import eventually

TOKEN = {"Authorization": "Bearer test-api-token"}
PEOPLE = [("p-fhir-1", "+19165550131"), ("p-fhir-2", "+19165550132"), ("p-fhir-3", "+19165550133")]
# two days before the worker's clock: each patient's day-2 check-in is due at once
PERFORMED = "2026-03-10T09:30:00-07:00"
CLOCK = "2026-03-12T18:00:00+00:00"


def ehr_transaction(patients: list[tuple[str, str]], with_bad_entry: bool = True) -> str:
    resources = []
    for n, (patient_id, phone) in enumerate(patients):
        resources += [ehr_patient(patient_id, phone), ehr_procedure(f"proc-{patient_id}", patient_id, PERFORMED)]
        if n == 0 and with_bad_entry:
            resources.append(ehr_patient("p-fhir-nophone", None))
    return as_body(bundle_of(resources))


async def post(http: aiohttp.ClientSession, url: str, body: str) -> Bundle:
    async with http.post(f"{url}/fhir/R4", data=body, headers=TOKEN | FHIR_HEADERS) as response:
        assert response.status == 200, await response.text()
        return Bundle.model_validate_json(await response.text())


def published_ids(answer: Bundle) -> list[str]:
    """The event id each accepted entry was published with (its etag, ``W/"{event_id}"``)."""
    return [re.fullmatch(r'W/"(\w+)"', e.response.etag).group(1) for e in answer.entry if e.response.etag]


async def test_a_transaction_bundle_publishes_its_good_entries_once_and_names_the_bad_one(start_worker, topics, watch):
    scheduler = await start_worker("scheduler", CYCLECARE_CLOCK_START=CLOCK)
    watcher = await watch(topics.patients, topics.treatments, topics.due, topics.dlq)
    async with aiohttp.ClientSession() as http:
        first = await post(http, scheduler.url, ehr_transaction(PEOPLE))

        assert first.type == "transaction-response"
        statuses = [e.response.status for e in first.entry]
        assert statuses == ["202 Accepted", "202 Accepted", "422 Unprocessable Entity"] + ["202 Accepted"] * 4
        failed = first.entry[2].response.outcome
        assert OperationOutcome.model_validate(failed.model_dump())
        assert failed.issue[0].expression == ["Patient.telecom"] and "no phone number" in failed.issue[0].diagnostics

        events = await eventually(lambda: (watcher.events(topics.patients), watcher.events(topics.treatments))
                                  if len(watcher.events(topics.treatments)) == 3 else None, what="3 patients and 3 treatments")
        patients, treatments = events
        assert sorted(e.patient_id for e in patients) == [p for p, _ in PEOPLE]
        assert {(t.treatment_id, str(t.administered_on), t.clinic_id) for t in treatments} == {
            (f"proc-{p}", "2026-03-10", "rocklin") for p, _ in PEOPLE}
        ids = published_ids(first)
        assert sorted(ids) == sorted(e.event_id for e in patients + treatments)

        # the scheduler opens each patient's day-2 check-in
        await eventually(lambda: len([e for e in watcher.events(topics.due) if e.type == "checkin.due"]) == 3,
                         what="the three day-2 check-ins")

        again = await post(http, scheduler.url, ehr_transaction(PEOPLE))
        assert published_ids(again) == ids
        # a newcomer after the repost: once its check-in is out, the repost has been handled too
        newcomer = await post(http, scheduler.url, ehr_transaction([("p-fhir-4", "+19165550134")], with_bad_entry=False))
        assert [e.response.status for e in newcomer.entry] == ["202 Accepted"] * 2

    due = await eventually(lambda: [e for e in watcher.events(topics.due) if e.type == "checkin.due"]
                           if any(e.patient_id == "p-fhir-4" for e in watcher.events(topics.due)) else None,
                           what="the newcomer's check-in")
    assert sorted(e.patient_id for e in due) == ["p-fhir-1", "p-fhir-2", "p-fhir-3", "p-fhir-4"]
    # 6 events posted twice and the newcomer's 2 once: 14 records, 8 event ids
    on_topics = await eventually(lambda: watcher.events(topics.patients) + watcher.events(topics.treatments)
                                 if len(watcher.events(topics.patients) + watcher.events(topics.treatments)) >= 14 else None,
                                 what="every record of the three posts")
    assert len(on_topics) == 14 and len({e.event_id for e in on_topics}) == 8
    assert watcher.raw(topics.dlq) == []
    assert "+1916555013" not in scheduler.output()
