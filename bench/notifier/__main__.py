"""Notifier benchmark: ``.venv/bin/python -m bench.notifier [--messages N] ...``

On the embedded broker, with the fake Twilio REST server in its own process:

1. baseline: a plain aiokafka consumer reading N due events and POSTing each to the fake
   (form-encoded, basic auth, one at a time: the simplest correct loop);
2. notifier: ``cyclecare worker notifier`` with no effective rate limit sending the same
   N due events (ledger, rendering, the twilio client, ``message.sent`` and all);
3. limited: the notifier with ``CYCLECARE_SMS_RATE`` (default 100/s) on a further sample.

Rates are measured at the fake: (messages - 1) / (last arrival - first arrival). The
notifier worker's CPU time per message (user + system, from /proc, over the measured
messages only) is the steadiest figure on a shared machine. The baseline swings by a third
from run to run, so ``--repeat N`` runs baseline and notifier alternately N times (same
broker, same fake) and reports each pair and the median ratio.
Prints a readable report and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.broker import EmbeddedBroker, ensure_topics, free_port
from shared.codec import encode
from shared.events import PatientEnrolled, ReminderDue
from shared.topics import Topics
from tests.support.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, TOKEN = "ACtest00000000000000000000000000", "test-auth-token"
PARTITIONS = 8


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.notifier", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="due events for the baseline and the unlimited run")
    parser.add_argument("--patients", type=int, default=1_000, help="patients the due events are spread over")
    parser.add_argument("--rate", type=float, default=100.0, help="CYCLECARE_SMS_RATE of the limited run")
    parser.add_argument("--limited-messages", type=int, default=3_000, help="due events of the limited run (0: skip it)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the fake Twilio waits before answering")
    parser.add_argument("--in-flight", type=int, default=64, help="CYCLECARE_NOTIFIER_IN_FLIGHT of the notifier")
    parser.add_argument("--repeat", type=int, default=1, help="baseline/notifier pairs, run alternately")
    return parser.parse_args()


class Fake:
    """The fake Twilio server in a process of its own, so it competes with neither side."""

    def __init__(self, latency: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_twilio", "--port", str(self.port), "--latency", str(latency)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )

    async def stats(self, http: aiohttp.ClientSession) -> dict:
        async with http.get(f"{self.url}/_stats") as response:
            return await response.json()

    async def reset(self, http: aiohttp.ClientSession) -> None:
        for _ in range(100):
            try:
                async with http.post(f"{self.url}/_reset"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the fake Twilio server did not start")

    async def wait_for(self, http: aiohttp.ClientSession, count: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats(http)
            if stats["count"] >= count:
                return stats
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stats['count']} of {count} messages arrived in {timeout:.0f} s")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


def rate_of(stats: dict) -> float:
    span = (stats["last_at"] or 0) - (stats["first_at"] or 0)
    return (stats["count"] - 1) / span if span > 0 else float("inf")


def phone(n: int) -> str:
    return f"+1916555{n % 10_000:04d}"


def due_events(prefix: str, count: int, patients: int) -> list[tuple[str, bytes]]:
    due_at = datetime(2026, 5, 19, 17, tzinfo=timezone.utc)
    return [
        (f"p{n % patients}", encode(ReminderDue(
            event_id=f"{prefix}-{n}", patient_id=f"p{n % patients}", clinic_id="rocklin", treatment_id="t-1",
            cycle=1, due_at=due_at, day=70)))
        for n in range(count)
    ]


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key.encode()) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def enrol(bootstrap: str, topics: Topics, patients: int) -> None:
    await produce(bootstrap, topics.patients, [
        (f"p{n}", encode(PatientEnrolled(patient_id=f"p{n}", clinic_id="rocklin", first_name="Ana", phone=phone(n),
                                         timezone="America/Los_Angeles", sms_consent=True, event_id=f"enrol-{n}")))
        for n in range(patients)
    ])


async def baseline(bootstrap: str, fake: Fake, http: aiohttp.ClientSession, args: argparse.Namespace) -> dict:
    topic = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], PARTITIONS)
    await produce(bootstrap, topic, due_events("base", args.messages, args.patients))
    await fake.reset(http)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest",
                                enable_auto_commit=True)
    await consumer.start()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()}
    url = f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    posted = 0
    try:
        async for record in consumer:
            event = json.loads(record.value)
            form = {"To": phone(int(event["patient_id"][1:])), "From": "+19165550100", "Body": "It is time to book."}
            async with http.post(url, data=form, headers=auth) as response:
                await response.read()
            posted += 1
            if posted >= args.messages:
                break
    finally:
        await consumer.stop()
    return await fake.stats(http)


def worker_env(bootstrap: str, topics: Topics, fake: Fake, data: Path, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
        "CYCLECARE_PARTITIONS": str(PARTITIONS), "CYCLECARE_REBALANCE_TIMEOUT": "2", "CYCLECARE_DATA_DIR": str(data),
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": "+19165550100",
        "TWILIO_API_BASE": fake.url, "CYCLECARE_PUBLIC_URL": "https://cyclecare.clinic.test/hooks",
        "CYCLECARE_LOG_LEVEL": "WARNING", "CYCLECARE_LOG_FORMAT": "json",
    } | extra


async def notifier_run(bootstrap: str, fake: Fake, http: aiohttp.ClientSession, args: argparse.Namespace,
                       count: int, rate: float, scratch: Path) -> dict:
    """Enrol the patients, start a worker, warm it up with one message per patient, then
    measure ``count`` due events end to end: the fake's stats and ``cpu_s``, the worker's
    CPU seconds over them."""
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, topics.all(), PARTITIONS)
    await enrol(bootstrap, topics, args.patients)
    env = worker_env(bootstrap, topics, fake, scratch / topics.namespace, CYCLECARE_SMS_RATE=str(rate),
                     CYCLECARE_NOTIFIER_IN_FLIGHT=str(args.in_flight))
    worker = WorkerProcess("notifier", os.environ | env, scratch).start()
    try:
        await worker.wait_ready(timeout=120)
        await fake.reset(http)
        await produce(bootstrap, topics.due, due_events("warm", args.patients, args.patients))
        await fake.wait_for(http, args.patients, timeout=60 + args.patients / rate)
        await fake.reset(http)
        cpu = worker.cpu_seconds()
        await produce(bootstrap, topics.due, due_events("due", count, args.patients))
        stats = await fake.wait_for(http, count, timeout=120 + count / min(rate, 200))
        return stats | {"cpu_s": worker.cpu_seconds() - cpu}
    finally:
        worker.stop()


def cpu_ms(run: dict) -> float:
    return run["cpu_s"] / run["count"] * 1000


def report(args: argparse.Namespace, pairs: list[tuple[dict, dict]], limited: dict | None) -> dict:
    """Each pair's figures, then the medians; with one pair, the figures of that run."""
    bases, frees = [rate_of(b) for b, _ in pairs], [rate_of(f) for _, f in pairs]
    ratios, cpus = [f / b for b, f in zip(bases, frees)], [cpu_ms(f) for _, f in pairs]
    for n, (base_rate, free_rate, ratio, cpu) in enumerate(zip(bases, frees, ratios, cpus), 1):
        print(f"pair {n}: baseline {base_rate:,.0f} msg/s, notifier {free_rate:,.0f} msg/s, ratio {ratio:.2f}, "
              f"notifier CPU {cpu:.2f} ms/message")
    base_rate, free_rate = statistics.median(bases), statistics.median(frees)
    ratio, cpu = statistics.median(ratios), statistics.median(cpus)
    result = {
        "messages": args.messages, "patients": args.patients, "fake_latency_s": args.latency,
        "baseline_msgs_per_s": round(base_rate, 1), "notifier_msgs_per_s": round(free_rate, 1),
        "ratio": round(ratio, 3), "notifier_in_flight": args.in_flight, "repeat": len(pairs),
        "ratio_median": round(ratio, 3), "ratios": [round(r, 3) for r in ratios],
        "baselines_msgs_per_s": [round(b, 1) for b in bases], "notifiers_msgs_per_s": [round(f, 1) for f in frees],
        "notifier_cpu_ms_per_msg": round(cpu, 3), "notifier_cpu_ms_per_msgs": [round(c, 3) for c in cpus],
    }
    median = "median " if len(pairs) > 1 else ""
    print(f"baseline (aiokafka consume -> POST, one at a time): {median}{base_rate:,.0f} msg/s")
    print(f"notifier, no rate limit:                            {median}{free_rate:,.0f} msg/s, "
          f"{cpu:.2f} ms of worker CPU per message")
    print(f"ratio notifier / baseline:                          {median}{ratio:.2f} (aim >= 0.5, issue 16)")
    if limited is not None:
        achieved = rate_of(limited)
        error = achieved / args.rate - 1
        result |= {"limit_msgs_per_s": args.rate, "limited_messages": limited["count"],
                   "limited_achieved_msgs_per_s": round(achieved, 2), "limited_error": round(error, 4)}
        print(f"{f'notifier, limit {args.rate:g}/s:':52}{limited['count']} messages, "
              f"{achieved:,.2f} msg/s ({error:+.2%} of the limit; aim within 5%)")
    return result


async def main() -> None:
    args = arguments()
    scratch = Path(tempfile.mkdtemp(prefix="bench-notifier-"))
    print(f"notifier benchmark: {args.messages} due events over {args.patients} patients, "
          f"{PARTITIONS} partitions, fake Twilio latency {args.latency * 1000:.0f} ms", flush=True)
    with EmbeddedBroker(log_path=scratch / "tansu.log") as broker:
        fake = Fake(args.latency)
        try:
            async with aiohttp.ClientSession() as http:
                await fake.reset(http)
                pairs = []
                for n in range(1, args.repeat + 1):
                    base = await baseline(broker.bootstrap_servers, fake, http, args)
                    print(f"  {n}. baseline done: {rate_of(base):,.0f} msg/s", flush=True)
                    free = await notifier_run(broker.bootstrap_servers, fake, http, args, args.messages, 1e9, scratch)
                    print(f"  {n}. notifier done: {rate_of(free):,.0f} msg/s, {cpu_ms(free):.2f} ms CPU/message", flush=True)
                    pairs.append((base, free))
                limited = None
                if args.limited_messages:
                    limited = await notifier_run(broker.bootstrap_servers, fake, http, args, args.limited_messages,
                                                 args.rate, scratch)
        finally:
            fake.stop()
    print()
    print(json.dumps(report(args, pairs, limited)))


if __name__ == "__main__":
    asyncio.run(main())
