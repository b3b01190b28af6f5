"""``python -m bench.paging``: how fast an ``alert.escalated`` becomes a page SMS, with the
notifier idle and behind a backlog of routine reminders.

One notifier worker on the embedded broker sends to the fake Twilio server (in this
process) at ``--rate`` SMS a second, one token saved up. Each escalation names one
clinician of a patient's urgent alert; its latency is from producing the record to the
page SMS arriving at the fake. Phase 1: the notifier idle. Phase 2: a backlog of routine
reminders, ``--backlog-seconds`` of sending at the rate, is queued first: pages go ahead of
it at the rate limiter. Baseline, in the same run: a raw aiokafka produce -> consume round
trip on the same broker. Prints a report and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.survey.__main__ import baseline, summary
from shared.broker import EmbeddedBroker, ensure_topics
from shared.codec import encode
from shared.events import AlertEscalated, ClinicianAlert, Event, PatientEnrolled, ReminderDue
from shared.topics import Topics
from tests.support.fake_twilio import FakeTwilio
from tests.support.workers import WorkerProcess

CLINICS = """clinics:
  - id: rocklin
    name: Rocklin Headache Clinic
    phone: "+19165550100"
    timezone: America/Los_Angeles
    clinicians:
      - {name: Dr. Lee, email: lee@example.org, phone: "+19165550101", on_call: true}
      - {name: Dr. Patel, email: patel@example.org, phone: "+19165550102"}
"""
PATEL = "+19165550102"
BACKLOG_PATIENT = "p-backlog"
NOW = datetime.now(timezone.utc)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.paging", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20, help="escalations measured in each phase (default 20)")
    parser.add_argument("--rate", type=float, default=20.0, help="the notifier's SMS rate per second (default 20)")
    parser.add_argument("--backlog-seconds", type=float, default=30.0, help="routine reminders queued first, in seconds of sending (default 30)")
    parser.add_argument("--partitions", type=int, default=4)
    return parser.parse_args(argv)


class Producer:
    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

    async def __aenter__(self) -> "Producer":
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, event: Event) -> None:
        await self._producer.send_and_wait(topic, encode(event), key=key.encode())


async def until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def patient(n: int) -> str:
    return f"p-{n:04d}"


async def set_up(out: Producer, topics: Topics, fake: FakeTwilio, count: int) -> None:
    """One urgent alert (to Dr. Lee, on call) per patient whose page will be measured."""
    for n in range(count):
        await out.send(topics.patients, patient(n), PatientEnrolled(
            patient_id=patient(n), clinic_id="rocklin", first_name="Ana", phone=f"+1916557{n:04d}",
            timezone="America/Los_Angeles", sms_consent=True))
        await out.send(topics.alerts, patient(n), ClinicianAlert(
            alert_id=f"a-{n}", patient_id=patient(n), clinic_id="rocklin", severity="urgent", reasons=["dysphagia"],
            summary="Patient reports a red-flag symptom after treatment: Trouble swallowing.", raised_at=NOW))
    await out.send(topics.patients, BACKLOG_PATIENT, PatientEnrolled(
        patient_id=BACKLOG_PATIENT, clinic_id="rocklin", first_name="Bo", phone="+19165558888",
        timezone="America/Los_Angeles", sms_consent=True))
    await until(lambda: len([m for m in fake.messages if m.to == "+19165550101"]) >= count, 120, "the alerts")


async def page(out: Producer, topics: Topics, fake: FakeTwilio, n: int) -> float:
    """Milliseconds from producing patient n's escalation to its page reaching the fake."""
    marker = f"({patient(n)})"
    started = time.time()
    await out.send(topics.alert_actions, patient(n), AlertEscalated(
        alert_id=f"a-{n}", patient_id=patient(n), clinic_id="rocklin", level=2, notified=["patel"],
        escalated_at=NOW + timedelta(minutes=15)))
    await until(lambda: any(m.to == PATEL and marker in m.body for m in fake.messages), 60, f"page {n}")
    arrived = next(m.received_at for m in fake.messages if m.to == PATEL and marker in m.body)
    return (arrived - started) * 1000


async def backlog(out: Producer, topics: Topics, count: int) -> None:
    for n in range(count):
        await out.send(topics.due, BACKLOG_PATIENT, ReminderDue(
            event_id=f"backlog-{n}", patient_id=BACKLOG_PATIENT, clinic_id="rocklin", treatment_id="t-1", cycle=1,
            due_at=NOW, day=70))


async def run(args: argparse.Namespace, bootstrap: str, scratch: Path) -> dict:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, [*topics.all(), topics.name("bench-baseline")], args.partitions)
    fake = await FakeTwilio().start()
    clinics = scratch / "clinics.yaml"
    clinics.write_text(CLINICS)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
        "CYCLECARE_PARTITIONS": str(args.partitions), "CYCLECARE_REBALANCE_TIMEOUT": "2",
        "CYCLECARE_DATA_DIR": str(scratch / "data"), "CYCLECARE_CLINICS": str(clinics),
        "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM": "+19165550100",
        "TWILIO_API_BASE": fake.url, "CYCLECARE_SMS_RATE": str(args.rate), "CYCLECARE_SMS_BURST": "1",
        "CYCLECARE_LOG_FORMAT": "json", "CYCLECARE_LOG_LEVEL": "WARNING",
    }
    worker = WorkerProcess("notifier", os.environ | env, scratch).start()
    try:
        await worker.wait_ready()
        async with Producer(bootstrap) as out:
            await set_up(out, topics, fake, 2 * args.pages)
            print(f"notifier ready, {2 * args.pages} urgent alerts sent; phase 1: idle", flush=True)
            idle = [await page(out, topics, fake, n) for n in range(args.pages)]
            reminders = int(args.backlog_seconds * args.rate)
            print(f"phase 2: {reminders} routine reminders queued first", flush=True)
            await backlog(out, topics, reminders)
            await until(lambda: len([m for m in fake.messages if m.to == "+19165558888"]) >= 10, 60, "the backlog to drain")
            busy, left = [], []
            for n in range(args.pages, 2 * args.pages):
                busy.append(await page(out, topics, fake, n))
                left.append(reminders - len([m for m in fake.messages if m.to == "+19165558888"]))
        base = await baseline(bootstrap, topics.name("bench-baseline"), 200, 100.0, 100)
    finally:
        worker.stop()
        await fake.stop()
    return report(args, idle, busy, left, base)


def report(args: argparse.Namespace, idle: list[float], busy: list[float], left: list[int], base: list[float]) -> dict:
    rows = (("escalation -> page SMS, notifier idle", summary(idle)),
            ("escalation -> page SMS, behind a backlog", summary(busy)),
            ("baseline: raw produce -> consume", summary(base)))
    line = "{:<42} {:>5} {:>8} {:>8} {:>8} {:>8}"
    print(f"\npaging benchmark: SMS rate {args.rate:g}/s (burst 1), {args.pages} pages a phase, "
          f"backlog of {int(args.backlog_seconds * args.rate)} reminders")
    print(line.format("latency (ms)", "n", "p50", "p95", "p99", "max"))
    for name, s in rows:
        print(line.format(name, s["n"], f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['p99']:.1f}", f"{s['max']:.1f}"))
    print(f"routine reminders still waiting when each backlog-phase page arrived: min {min(left)}, max {max(left)}")
    outcome = {"benchmark": "paging", "sms_rate": args.rate, "pages_per_phase": args.pages,
               "backlog_reminders": int(args.backlog_seconds * args.rate),
               "reminders_waiting_at_page": {"min": min(left), "max": max(left)},
               **{key: {k: round(v, 2) for k, v in s.items()} for key, (_, s) in zip(("idle_ms", "backlog_ms", "baseline_ms"), rows)}}
    print(json.dumps(outcome))
    return outcome


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    with tempfile.TemporaryDirectory(prefix="bench-paging-") as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        asyncio.run(run(args, broker.bootstrap_servers, Path(tmp)))


if __name__ == "__main__":
    main()
