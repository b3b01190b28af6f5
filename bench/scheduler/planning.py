"""The scheduler's per-record cost on ingest, in this process, without a broker (issue 16):

    python -m bench.scheduler.planning [--patients 5000]

The records of ``bench.scheduler`` (an enrolment and a treatment per patient) go through
what the batch agent does to each, batch by batch: decode (the edge, validated), plan with
the app's handlers into a :class:`Batch`, write each changed schedule in its stored form,
arm the timer index. Treatments come a batch after their enrolments, so each one loads a
stored schedule. The stored form is measured next to version 2 in the same run (a JSON
object Faust serialised, loaded through pydantic's validation): loading and writing one
cycle of nine timers each way. Prints a readable report and, last, one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

from faust.utils import json as faust_json

from bench.scheduler.__main__ import INGEST_CLOCK, TIMERS_PER_PATIENT, messages
from shared.clinics import load_clinics
from shared.codec import decode_record
from shared.topics import Topics
from services.scheduler import app, domain
from services.scheduler.batch import Batch
from services.scheduler.timerwheel import TimerWheel

BATCH = 1000


def ingest(patients: int) -> float:
    """Microseconds per record, decode to stored form."""
    topics = Topics("planning")
    records = messages(patients, topics)
    records = records[0::2] + records[1::2]  # every enrolment, then every treatment
    clinics, now = load_clinics(None), datetime.fromisoformat(INGEST_CLOCK)
    d = SimpleNamespace(rules_for=lambda clinic: clinics.require(clinic).rules, clock=SimpleNamespace(now=lambda: now))
    handlers = {topics.patients: app.on_patient, topics.treatments: app.on_treatment}
    table: dict[str, bytes] = {}
    wheel = TimerWheel()

    def load(patient_id: str) -> domain.PatientSchedule:
        stored = table.get(patient_id)
        return domain.from_stored(stored) if stored else domain.PatientSchedule(patient_id=patient_id)

    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        batch = Batch(load)
        for topic, key, value in records[start:start + BATCH]:
            handlers[topic](d, batch, decode_record(key, value)[1])
        for write in batch.writes():
            table[write.patient_id] = domain.to_stored(write.schedule, write.partition)
        for schedule, partition in batch.armed():
            wheel.set(schedule.patient_id, schedule.next_fire_at(), schedule.timer_count, partition)
    elapsed = time.perf_counter() - started
    assert wheel.timers == patients * TIMERS_PER_PATIENT, wheel.timers
    return elapsed / len(records) * 1e6


def version_2(schedule: domain.PatientSchedule) -> bytes:
    """What the scheduler wrote before: pydantic's JSON dump, timers as arrays, serialised by Faust."""
    stored = schedule.model_dump(mode="json")
    stored["pending"] = [[timer[name] for name in domain.STORED_TIMER_FIELDS] for timer in stored["pending"]]
    following = schedule.next_fire_at()
    stored |= {"v": 2, "next": following.isoformat() if following else None, "timers": schedule.timer_count, "p": 0}
    return faust_json.dumps(stored)


def each(action: Callable[[], object], rounds: int) -> float:
    """Microseconds per call of ``action``, best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            action()
        best = min(best, time.perf_counter() - started)
    return best / rounds * 1e6


def a_cycle() -> domain.PatientSchedule:
    topics = Topics("planning")
    (_, pkey, patient), (_, tkey, treatment) = messages(1, topics)
    clinics, now = load_clinics(None), datetime.fromisoformat(INGEST_CLOCK)
    rules = clinics.require("rocklin").rules
    schedule = domain.PatientSchedule(patient_id="p-0")
    schedule = domain.on_patient(schedule, decode_record(pkey, patient)[1], rules, now).schedule
    return domain.on_treatment(schedule, decode_record(tkey, treatment)[1], rules, now).schedule


def main(args: argparse.Namespace) -> dict:
    schedule, rounds = a_cycle(), args.rounds
    v3, v2 = domain.to_stored(schedule, 0), version_2(schedule)
    v2_as_faust_keeps_it = faust_json.loads(v2)
    assert domain.from_stored(v3) == domain.from_stored(v2_as_faust_keeps_it) == schedule
    figures = {
        "store_us": each(lambda: domain.to_stored(schedule, 0), rounds),
        "store_v2_us": each(lambda: version_2(schedule), rounds),
        "load_us": each(lambda: domain.from_stored(v3), rounds),
        "load_v2_us": each(lambda: domain.from_stored(v2_as_faust_keeps_it), rounds),
        "stored_bytes": len(v3), "stored_v2_bytes": len(v2),
    }
    print(f"one cycle of {len(schedule.pending)} timers, stored form {domain.STORED_VERSION} against version 2:")
    print(f"  write: {figures['store_us']:.1f} us against {figures['store_v2_us']:.1f} us "
          f"({figures['store_v2_us'] / figures['store_us']:.1f}x faster), "
          f"{len(v3):,} bytes against {len(v2):,}")
    print(f"  load:  {figures['load_us']:.1f} us against {figures['load_v2_us']:.1f} us "
          f"({figures['load_v2_us'] / figures['load_us']:.1f}x faster)")
    per_record = ingest(args.patients)
    figures["ingest_us_per_record"] = per_record
    print(f"{2 * args.patients:,} records decoded, planned in batches of {BATCH} and stored: "
          f"{per_record:.1f} us per record ({1e6 / per_record:,.0f} records/s on one core)")
    return {name: round(value, 2) if isinstance(value, float) else value for name, value in figures.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler.planning", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000, help="patients, each enrolled and treated once")
    parser.add_argument("--rounds", type=int, default=2000, help="loads and writes of one cycle measured")
    print(json.dumps(main(parser.parse_args())))
