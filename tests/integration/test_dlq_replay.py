"""Dead letters an operator can act on: events for a clinic missing from the clinics file are
dead-lettered, `cyclecare dlq list` shows them without their bodies, and once the clinic is
added `cyclecare dlq replay` brings them back; replaying twice changes nothing more."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.clinics import EXAMPLE_CLINICS
from shared.clock import SimulatedClock
from shared.events import DueEvent, PatientEnrolled, TreatmentRecorded
from tests.integration.test_scheduler_durability import LA, SPEED, START, clock_env
from tests.support.kafka import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
EASTSIDE = """
  - id: eastside
    name: Eastside Headache Clinic
    phone: "+19165550200"
    timezone: America/Los_Angeles
    clinicians:
      - {name: Dr. Kim, email: kim@example.org, on_call: true}
"""


def cyclecare(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=os.environ | env,
                          capture_output=True, text=True, timeout=120)


async def test_dead_letters_are_listed_without_bodies_and_replayed_once_the_clinic_exists(
    worker_env, topics, publisher, watch, start_worker, tmp_path: Path
) -> None:
    anchor = time.time()
    watcher = await watch(topics.due, topics.dlq)
    first = await start_worker("scheduler", **clock_env(anchor))
    today = SimulatedClock(START, SPEED, anchor).now().astimezone(ZoneInfo(LA)).date()
    patient = PatientEnrolled(patient_id="p-east", clinic_id="eastside", first_name="Ana", phone="+19165550123",
                              timezone=LA, sms_consent=True)
    treated = TreatmentRecorded(treatment_id="t-east", patient_id="p-east", clinic_id="eastside",
                                administered_on=today - timedelta(days=3))
    await publisher.send(topics.patients, "p-east", patient)
    await publisher.send(topics.treatments, "p-east", treated)
    await eventually(lambda: len(watcher.raw(topics.dlq)) == 2, 60, "both events dead-lettered")

    env = worker_env | {"CYCLECARE_TOPIC_NAMESPACE": topics.namespace}
    listed = cyclecare(env, "dlq", "list", "--since", "1h")
    assert listed.returncode == 0, listed.stderr
    assert "2 dead letter(s): UnknownClinic 2" in listed.stdout
    assert f"{topics.patients}[" in listed.stdout and f"{topics.treatments}[" in listed.stdout
    assert "+19165550123" not in listed.stdout and "Ana" not in listed.stdout
    only_patients = cyclecare(env, "dlq", "list", "--topic", "patients")
    assert "1 dead letter(s)" in only_patients.stdout

    dry = cyclecare(env, "dlq", "replay", "--topic", "patients", "--dry-run")
    assert "would republish 1 record(s)" in dry.stdout

    clinics = tmp_path / "clinics.yaml"
    clinics.write_text(EXAMPLE_CLINICS.read_text().rstrip() + "\n" + EASTSIDE)
    first.stop()
    await start_worker("scheduler", CYCLECARE_CLINICS=str(clinics), **clock_env(anchor))
    for topic in ("patients", "treatments", "patients"):  # patients twice: replay is idempotent
        replayed = cyclecare(env | {"CYCLECARE_CLINICS": str(clinics)}, "dlq", "replay", "--topic", topic,
                             "--reason", "UnknownClinic")
        assert replayed.returncode == 0, replayed.stderr
        assert "republished 1 record(s)" in replayed.stdout

    def fired() -> list[DueEvent]:
        return [e for e in watcher.events(topics.due) if isinstance(e, DueEvent) and e.patient_id == "p-east"]

    await eventually(fired, 60, "the replayed patient's first check-in")
    assert len(watcher.raw(topics.dlq)) == 2  # nothing new dead-lettered
    by_id = {e.event_id for e in fired()}
    assert len(by_id) == len({(e.type, e.day) for e in fired()})  # one event per moment, whatever the replays
