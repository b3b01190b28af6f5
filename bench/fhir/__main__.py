"""FHIR in benchmark: ``.venv/bin/python -m bench.fhir [--patients N] [--bundle-entries 500]``

On the embedded broker, one ``cyclecare worker scheduler`` serving both ingest APIs:

1. baseline: the JSON ingest API (``POST /v1/patients`` and ``POST /v1/treatments``), one
   request per event, N patients and N treatments, ``--concurrency`` requests in flight;
2. FHIR: the same N patients and N treatments as Patients and Procedures in transaction
   Bundles of ``--bundle-entries`` entries to ``POST /fhir/R4``, as many Bundles in flight.

For each: resources/s accepted (every request answered, so every event acknowledged by the
broker), and resources/s until the scheduler has registered every patient's timers
(``cyclecare_timers_pending``). Each phase starts once the scheduler is idle again. Then the
pure mapping alone (fhir.resources validation and fhir_in, no HTTP, no broker), to show
where the time goes. Prints a readable report and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

from services.scheduler import fhir_in
from shared.broker import EmbeddedBroker, ensure_topics
from shared.clinics import load_clinics
from shared.limits import MAX_FHIR_BUNDLE_ENTRIES
from shared.topics import Topics
from tests.support.fhir import FHIR_HEADERS, as_body, bundle_of, ehr_patient, ehr_procedure
from tests.support.workers import WorkerProcess

TOKEN = "bench-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTITIONS = 8
CLOCK = "2026-03-02T19:00:00+00:00"  # 11:00 in Los Angeles on the day of treatment
PERFORMED = "2026-03-02T10:00:00-08:00"
TIMERS_PER_PATIENT = 9


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000, help="patients, each with one treatment, per phase")
    parser.add_argument("--bundle-entries", type=int, default=500, help="entries per transaction Bundle")
    parser.add_argument("--concurrency", type=int, default=4, help="requests (or Bundles) in flight")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each phase")
    args = parser.parse_args()
    if not 2 <= args.bundle_entries <= MAX_FHIR_BUNDLE_ENTRIES:
        parser.error(f"--bundle-entries must be within 2..{MAX_FHIR_BUNDLE_ENTRIES}")
    return args


def phone(prefix: int, n: int) -> str:
    return f"+1916{prefix}{n:06d}"


def json_requests(patients: int) -> list[tuple[str, str]]:
    """(path, body) of the JSON API: a patient then its treatment."""
    out = []
    for n in range(patients):
        pid = f"json-{n}"
        out.append(("/v1/patients", json.dumps({
            "patient_id": pid, "clinic_id": "rocklin", "first_name": "Ana", "phone": phone(1, n),
            "timezone": "America/Los_Angeles", "sms_consent": True})))
        out.append(("/v1/treatments", json.dumps({
            "treatment_id": f"t-{pid}", "patient_id": pid, "clinic_id": "rocklin", "administered_on": "2026-03-02"})))
    return out


def fhir_bundles(patients: int, entries: int) -> list[str]:
    """Transaction Bundles of ``entries`` entries: each patient next to its procedure."""
    per_bundle = entries // 2
    bodies = []
    for start in range(0, patients, per_bundle):
        resources = []
        for n in range(start, min(start + per_bundle, patients)):
            pid = f"fhir-{n}"
            resources += [ehr_patient(pid, phone(2, n)), ehr_procedure(f"proc-{pid}", pid, PERFORMED)]
        bodies.append(as_body(bundle_of(resources)))
    return bodies


async def in_flight(count: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    queue = list(reversed(jobs))

    async def lane() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(lane() for _ in range(count)))


async def timers_pending(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("cyclecare_timers_pending "):
                return float(line.split()[1])
    return 0.0


async def until_timers(http: aiohttp.ClientSession, url: str, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await timers_pending(http, url) >= target:
            return time.perf_counter()
        await asyncio.sleep(0.2)
    raise SystemExit(f"the scheduler never registered {target:,} timers (last {await timers_pending(http, url):,.0f})")


async def json_phase(http: aiohttp.ClientSession, url: str, requests: list[tuple[str, str]], concurrency: int) -> None:
    async def send(path: str, body: str) -> None:
        async with http.post(url + path, data=body, headers=AUTH | {"Content-Type": "application/json"}) as response:
            if response.status != 202:
                raise SystemExit(f"JSON API answered {response.status}: {(await response.text())[:300]}")

    await in_flight(concurrency, [lambda p=p, b=b: send(p, b) for p, b in requests])


async def fhir_phase(http: aiohttp.ClientSession, url: str, bodies: list[str], concurrency: int) -> None:
    async def send(body: str) -> None:
        async with http.post(f"{url}/fhir/R4", data=body, headers=AUTH | FHIR_HEADERS) as response:
            text = await response.text()
            statuses = {e["response"]["status"] for e in json.loads(text).get("entry", [])} if response.status == 200 else {}
            if statuses != {"202 Accepted"}:
                raise SystemExit(f"FHIR API answered {response.status}: {text[:300]}")

    await in_flight(concurrency, [lambda b=b: send(b) for b in bodies])


def mapping_only(bodies: list[str]) -> float:
    """Resources/s of the pure part: JSON in, every entry validated and mapped, the answer built."""
    clinics, now, resources = load_clinics(None), datetime.now(timezone.utc), 0
    started = time.perf_counter()
    for body in bodies:
        mapped = fhir_in.map_bundle(json.loads(body), clinics, now, MAX_FHIR_BUNDLE_ENTRIES)
        assert isinstance(mapped, fhir_in.BundleResult)
        fhir_in.response_bundle(mapped).model_dump_json(exclude_none=True)
        resources += len(mapped.entries)
    return resources / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> dict:
    n, resources = args.patients, 2 * args.patients
    report: dict = {"patients": n, "resources": resources, "bundle_entries": args.bundle_entries,
                    "concurrency": args.concurrency}
    requests, bodies = json_requests(n), fhir_bundles(n, args.bundle_entries)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        topics = Topics(f"benchfhir{uuid.uuid4().hex[:6]}")
        await ensure_topics(broker.bootstrap_servers, topics.all(), PARTITIONS)
        worker = WorkerProcess("scheduler", {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
            "CYCLECARE_PARTITIONS": str(PARTITIONS), "CYCLECARE_API_TOKEN": TOKEN, "CYCLECARE_CLOCK_START": CLOCK,
            "CYCLECARE_TICK_SECONDS": "0.2", "CYCLECARE_REBALANCE_TIMEOUT": "2", "CYCLECARE_DATA_DIR": tmp,
            "CYCLECARE_LOG_LEVEL": "WARNING"}, Path(tmp)).start()
        try:
            await worker.wait_ready(120)
            print(f"embedded broker {broker.bootstrap_servers}; one scheduler worker; {n:,} patients + {n:,} "
                  f"treatments per phase; {args.concurrency} in flight")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as http:
                for name, run, done_target in (
                    ("json", lambda: json_phase(http, worker.url, requests, args.concurrency), n * TIMERS_PER_PATIENT),
                    ("fhir", lambda: fhir_phase(http, worker.url, bodies, args.concurrency), 2 * n * TIMERS_PER_PATIENT),
                ):
                    started = time.perf_counter()
                    await run()
                    accepted = time.perf_counter()
                    scheduled = await until_timers(http, worker.url, done_target, args.timeout)
                    report |= {f"{name}_accepted_per_s": round(resources / (accepted - started)),
                               f"{name}_scheduled_per_s": round(resources / (scheduled - started)),
                               f"{name}_accepted_s": round(accepted - started, 2)}
            what = {"json": f"1. JSON API, {resources:,} requests", "fhir": f"2. FHIR, {len(bodies)} transaction Bundles "
                    f"of {args.bundle_entries} entries"}
            for name in ("json", "fhir"):
                print(f"{what[name]}: {report[f'{name}_accepted_per_s']:,} resources/s accepted "
                      f"({report[f'{name}_accepted_s']} s); {report[f'{name}_scheduled_per_s']:,} resources/s "
                      f"until every timer was registered")
            ratio = report["fhir_accepted_per_s"] / report["json_accepted_per_s"]
            report["fhir_to_json_accepted"] = round(ratio, 2)
            print(f"   FHIR / JSON (accepted): {ratio:.2f}x")
        finally:
            worker.stop()
    pure = mapping_only(bodies)
    report["mapping_only_per_s"] = round(pure)
    print(f"3. mapping alone (R4B validation, fhir_in, the response Bundle; no HTTP, no broker): {pure:,.0f} resources/s")
    return report


if __name__ == "__main__":
    figures = asyncio.run(main(arguments()))
    print(json.dumps(figures))
