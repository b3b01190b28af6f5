"""Getting patients and treatments in: the HTTP ingest API and ``cyclecare import``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from shared.events import PatientEnrolled, TreatmentRecorded
from tests.support.kafka import eventually

ROOT = Path(__file__).parents[2]
TOKEN = {"Authorization": "Bearer test-api-token"}
PATIENT = {"patient_id": "p-api", "clinic_id": "rocklin", "first_name": "Ana", "phone": "+19165550123",
           "timezone": "America/Los_Angeles", "sms_consent": True}


async def test_ingest_api_checks_the_token_explains_invalid_bodies_and_publishes_valid_ones(start_worker, topics, watch):
    scheduler = await start_worker("scheduler")
    watcher = await watch(topics.patients, topics.treatments)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{scheduler.url}/v1/patients", json=PATIENT) as response:
            assert response.status == 401
        async with http.post(f"{scheduler.url}/v1/patients", json=PATIENT,
                             headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        bad = PATIENT | {"phone": "12", "timezone": "Mars/Olympus"}
        async with http.post(f"{scheduler.url}/v1/patients", json=bad, headers=TOKEN) as response:
            assert response.status == 422
            fields = {d["field"] for d in (await response.json())["details"]}
            assert {"phone", "timezone"} <= fields
        impossible = {"treatment_id": "t-x", "patient_id": "p-api", "clinic_id": "rocklin", "administered_on": "2026-02-30"}
        async with http.post(f"{scheduler.url}/v1/treatments", json=impossible, headers=TOKEN) as response:
            assert response.status == 422 and "administered_on" in await response.text()
        async with http.post(f"{scheduler.url}/v1/patients", data=b"{nope", headers=TOKEN) as response:
            assert response.status == 422
        async with http.post(f"{scheduler.url}/v1/patients", json=PATIENT, headers=TOKEN) as response:
            assert response.status == 202
            event_id = (await response.json())["event_id"]
        treatment = {"treatment_id": "t-api", "patient_id": "p-api", "clinic_id": "rocklin", "administered_on": "2026-03-02"}
        async with http.post(f"{scheduler.url}/v1/treatments", json=treatment, headers=TOKEN) as response:
            assert response.status == 202

    [enrolled] = await eventually(lambda: watcher.events(topics.patients), what="the enrolment on the topic")
    assert isinstance(enrolled, PatientEnrolled) and enrolled.event_id == event_id
    [treated] = await eventually(lambda: watcher.events(topics.treatments), what="the treatment on the topic")
    assert isinstance(treated, TreatmentRecorded) and treated.treatment_id == "t-api"
    assert "+19165550123" not in scheduler.output()


async def test_ingest_api_answers_503_without_a_configured_token(start_worker):
    scheduler = await start_worker("scheduler", CYCLECARE_API_TOKEN="")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{scheduler.url}/v1/patients", json=PATIENT, headers=TOKEN) as response:
            assert response.status == 503


def cyclecare_import(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", "import", *args], cwd=ROOT,
                          env=os.environ | env, capture_output=True, text=True, timeout=60)


def import_env(broker, topics) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
            "CYCLECARE_PARTITIONS": "4"}


async def test_import_publishes_valid_rows_reports_invalid_ones_by_row_and_field_and_exits_1(broker, topics, watch):
    watcher = await watch(topics.treatments)
    result = cyclecare_import(import_env(broker, topics), "treatments", "examples/treatments-with-errors.csv")
    assert result.returncode == 1
    assert "row 2: administered_on:" in result.stderr
    assert "row 3: clinic_id: unknown clinic 'nowhere'" in result.stderr
    assert "row 4: patient_id:" in result.stderr and "row 4: units:" in result.stderr
    assert "1 of 4 treatments published; 3 invalid row(s)" in result.stdout
    [published] = await eventually(lambda: watcher.events(topics.treatments), what="the valid row")
    assert published.treatment_id == "t-6001"


async def test_reimporting_a_file_publishes_the_same_event_ids_and_the_scheduler_plans_once(
    broker, topics, watch, start_worker
):
    await start_worker("scheduler", CYCLECARE_CLOCK_START="2026-03-12T18:00:00+00:00")
    watcher = await watch(topics.patients, topics.treatments, topics.due, topics.dlq)
    env = import_env(broker, topics)
    for _ in range(2):
        assert cyclecare_import(env, "patients", "examples/patients.csv").returncode == 0
        assert cyclecare_import(env, "treatments", "examples/treatments.csv").returncode == 0
    await eventually(lambda: len(watcher.events(topics.treatments)) == 8, what="both imports on the topic")
    ids = [e.event_id for e in watcher.events(topics.patients) + watcher.events(topics.treatments)]
    assert len(ids) == 16 and len(set(ids)) == 8
    # treatments 8-16 days before the clock start: days 2 and 7 (and 14 for one) reported stale, once each
    skipped = await eventually(lambda: [e for e in watcher.events(topics.due) if e.type == "timer.skipped"]
                               if len(watcher.events(topics.due)) >= 9 else None, what="the stale moments")
    assert len({e.event_id for e in skipped}) == len(skipped) == 9
    assert watcher.raw(topics.dlq) == []


def test_import_says_clearly_when_kafka_is_not_configured():
    result = cyclecare_import({"KAFKA_BOOTSTRAP_SERVERS": ""}, "patients", "examples/patients.csv")
    assert result.returncode == 2 and "KAFKA_BOOTSTRAP_SERVERS is not set" in result.stderr


def test_import_names_a_missing_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("patient_id,clinic_id\np-1,rocklin\n")
    result = cyclecare_import({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "treatments", str(path))
    assert result.returncode == 2 and "missing column(s) treatment_id, administered_on" in result.stderr
