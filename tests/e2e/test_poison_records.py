"""Poison records on every input topic, across all three services on the broker: each is
dead-lettered with its reason by every service that reads it, the workers keep answering
``/healthz`` meanwhile, and a patient enrolled after them still gets their check-in SMS.

(The issue's check: three poison records on ``cyclecare.patients`` froze every worker, none
reached the DLQ, and the next patient got no message.)
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import date

import aiohttp
from aiokafka import AIOKafkaProducer

from shared.events import PatientEnrolled, TreatmentRecorded
from tests.support.kafka import eventually

CLOCK = {"CYCLECARE_CLOCK_START": "2026-03-12T22:00:00+00:00"}  # two days after the treatment, in daytime
PHONE = "+19165550123"
SHUTDOWN_BUDGET = 60  # terminationGracePeriodSeconds of deploy/k8s/base/worker-pod.yaml
PATIENT = {"type": "patient.enrolled", "patient_id": "p-x", "clinic_id": "rocklin", "first_name": "Ana",
           "phone": "+19165550177", "timezone": "America/Los_Angeles", "sms_consent": True}

# (key, value, the reason the DLQ record must give)
ON_EVERY_TOPIC: list[tuple[bytes, bytes, str]] = [
    (b"\xff\xfe\xfd", json.dumps(PATIENT).encode(), "key is not UTF-8"),
    (b"p-x", b'{"type": "patient.enrolled", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested deeper"),
    (b"p-x", b'{"type": "patient.enrolled", "version": ' + b"9" * 5000 + b"}", "digits"),
    (b"p-x", json.dumps(PATIENT | {"timezone": "A" * 300}).encode(), "timezone"),
]
ON_PATIENTS_ONLY: list[tuple[bytes, bytes, str]] = [
    (b"p-x", b"\x00not json" * 100_000, "exceeds the limit"),  # 1 MB
    (b"p-x", json.dumps(PATIENT | {"first_name": "x" * 900_000}).encode(), "exceeds the limit"),
    (b"p-x", json.dumps(PATIENT | {"event_id": "e" * 200_000}).encode(), "event_id"),
    (b"p-x", json.dumps({"type": "t" * 200_000}).encode(), "type"),
]
CONSUMERS = {
    "scheduler": ("patients", "treatments", "consent", "scheduler-commands", "alerts", "alert-actions", "scheduler-alerts"),
    "survey": ("patients", "due", "consent", "survey-replies", "survey-phones", "inbound"),
    "notifier": ("patients", "consent", "due", "alerts", "outbound", "notifier-retry"),
}


async def probe_health(urls: list[str], stop: asyncio.Event, failures: list[str]) -> int:
    """Ask every worker's /healthz again and again until ``stop``; a probe that gets no answer
    within 2 s is a failure."""
    probes = 0
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            for url in urls:
                probes += 1
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status != 200:
                            failures.append(f"{url}: {response.status}")
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    failures.append(f"{url}: {type(exc).__name__}")
            await asyncio.sleep(0.1)
    return probes


async def test_poison_on_every_input_topic_is_dead_lettered_and_the_next_patient_still_gets_a_message(
    start_worker, topics, watch, fake_twilio
):
    workers = {name: await start_worker(name, **CLOCK) for name in CONSUMERS}
    watcher = await watch(topics.dlq)
    stop, failures = asyncio.Event(), []
    probing = asyncio.create_task(probe_health([w.url for w in workers.values()], stop, failures))

    producer = AIOKafkaProducer(bootstrap_servers=fake_bootstrap(workers), max_request_size=2_000_000)
    await producer.start()
    expected: dict[tuple[str, str, int], str] = {}
    try:
        sent = []
        for short in sorted({t for ts in CONSUMERS.values() for t in ts}):
            poison = ON_EVERY_TOPIC + (ON_PATIENTS_ONLY if short == "patients" else [])
            for key, value, reason in poison:
                meta = await producer.send_and_wait(topics.name(short), value, key=key)
                sent.append((short, meta.partition, meta.offset, reason))
        for service, shorts in CONSUMERS.items():
            for short, partition, offset, reason in sent:
                if short in shorts:
                    expected[(service, topics.name(short), offset, partition)] = reason
        # the next patient, enrolled and treated after all of it
        await producer.send_and_wait(topics.patients, enrolment().model_dump_json().encode(), key=b"p-ana")
        await producer.send_and_wait(topics.treatments, TreatmentRecorded(
            treatment_id="t-1", patient_id="p-ana", clinic_id="rocklin", administered_on=date(2026, 3, 10),
        ).model_dump_json().encode(), key=b"p-ana")
    finally:
        await producer.stop()

    def dead_letters() -> dict[tuple[str, str, int, int], str]:
        return {(r["service"], r["topic"], r["offset"], r["partition"]): r["error"] for r in watcher.raw(topics.dlq)}

    await eventually(lambda: expected.keys() <= dead_letters().keys(), timeout=90,
                     what=f"{len(expected)} dead letters")
    letters = dead_letters()
    for where, reason in expected.items():
        assert reason in letters[where], (where, letters[where])
    [question] = await eventually(lambda: fake_twilio.to(PHONE), timeout=60, what="the next patient's check-in SMS")
    assert "swallow" in question.body.lower()

    stop.set()
    probes = await probing
    assert failures == [] and probes > 0
    for worker in workers.values():
        assert alive(worker)
        assert "Traceback" not in worker.output() and PHONE not in worker.output()
        worker.stop(timeout=SHUTDOWN_BUDGET)  # SIGTERM, then SIGKILL past the budget
        assert worker._process.returncode != -signal.SIGKILL, f"{worker.service} ignored SIGTERM"  # noqa: SLF001


def enrolment() -> PatientEnrolled:
    return PatientEnrolled(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone=PHONE,
                           timezone="America/Los_Angeles", sms_consent=True)


def fake_bootstrap(workers: dict) -> str:
    return next(iter(workers.values())).env["KAFKA_BOOTSTRAP_SERVERS"]


def alive(worker) -> bool:  # noqa: ANN001
    return worker._process is not None and worker._process.poll() is None  # noqa: SLF001
