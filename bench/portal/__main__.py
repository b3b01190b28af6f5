"""``python -m bench.portal``: the clinician portal on a read model of 10,000 patients and
50,000 alerts (SQLite by default, PostgreSQL with ``--database-url``).

Measures
- projection throughput: contract events as bytes -> decode -> ``Projection.apply`` in
  batches of 2,000 (one transaction each, idempotent by event_id), against a baseline in
  the same run and the same database: json.loads and one plain ``INSERT`` per event into a
  bare table, batched the same way (the floor any consume-and-insert loop pays). Kafka is
  not in either path, so the ratio is the cost of the projection itself;
- page latency over real HTTP with a signed-in session: the inbox (its 200 open alerts
  of the most severe) and a patient page (timeline, chart), p50 and p95.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Column, MetaData, String, Table, Text

from services.portal.auth import Accounts
from services.portal.db import make_engine, migrate
from services.portal.store import Projection, ReadModel
from services.portal.web import Portal, make_app
from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.codec import decode, encode
from tests.support.portal_events import T0, acked, alert, enrolled, headache_checkin, sms_sent, treated

BATCH = 2000
PASSWORD = "bench password 123"


def events(patients: int, alerts: int) -> list[bytes]:
    rng = random.Random(14)
    out = []
    for i in range(patients):
        pid = f"p{i:05d}"
        out += [encode(enrolled(pid, name=f"Patient {i}")), encode(treated(pid)),
                encode(headache_checkin(rng.randint(4, 20), 1, patient_id=pid)), encode(sms_sent(pid))]
    for j in range(alerts):
        pid = f"p{rng.randrange(patients):05d}"
        severity = rng.choice(["urgent", "high", "routine", "routine", "review"])
        out.append(encode(alert(f"a{j:06d}", patient_id=pid, severity=severity, at=T0 + timedelta(minutes=j))))
        if j % 2:
            out.append(encode(acked(f"a{j:06d}", patient_id=pid, at=T0 + timedelta(minutes=j + 5))))
    return out


async def project(url: str, raw: list[bytes]) -> float:
    engine = make_engine(url)
    await migrate(engine)
    projection = Projection(engine)
    started = time.perf_counter()
    for start in range(0, len(raw), BATCH):
        await projection.apply([decode(r) for r in raw[start:start + BATCH]])
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(raw) / elapsed


async def plain_insert(url: str, raw: list[bytes]) -> float:
    engine = make_engine(url)
    plain = Table("bench_plain_events", MetaData(), Column("event_id", String(64), primary_key=True),
                  Column("type", String(40)), Column("body", Text))
    async with engine.begin() as conn:
        await conn.run_sync(plain.metadata.create_all)
    started = time.perf_counter()
    for start in range(0, len(raw), BATCH):
        rows = []
        for r in raw[start:start + BATCH]:
            data = json.loads(r)
            rows.append({"event_id": data["event_id"], "type": data["type"], "body": r.decode()})
        async with engine.begin() as conn:
            await conn.execute(plain.insert(), rows)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(raw) / elapsed


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def pages(url: str, requests: int) -> dict[str, dict[str, float]]:
    engine = make_engine(url)
    accounts = Accounts(engine)
    await accounts.set_password(await accounts.add_user("bench@example.org", ["rocklin"]), PASSWORD)

    async def publish(key: str, event: object) -> None:
        raise AssertionError("the benchmark only reads")

    portal = Portal(ReadModel(engine), accounts, publish, load_clinics(None), ManualClock(T0 + timedelta(days=30)))
    timings: dict[str, dict[str, float]] = {}
    async with TestClient(TestServer(make_app(portal))) as client:
        page = await (await client.get("/login")).text()
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        await client.post("/login", data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token})
        for name, path in (("inbox", "/"), ("patient", "/patients/p00042")):
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get(path)
                body = await response.read()
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status == 200 and len(body) > 1000, (name, response.status)
            timings[name] = {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(percentile(samples, 95), 1)}
    await engine.dispose()
    return timings


async def run(args: argparse.Namespace) -> dict:
    raw = events(args.patients, args.alerts)
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        projection_url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'portal.db'}"
        baseline_url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'plain.db'}"
        print(f"{len(raw):,} events ({args.patients:,} patients, {args.alerts:,} alerts) into {projection_url.split(':')[0]}", flush=True)
        baseline = await plain_insert(baseline_url, raw)
        print(f"baseline, plain decode-and-insert: {baseline:,.0f} events/s", flush=True)
        projected = await project(projection_url, raw)
        print(f"projection (idempotent, lifecycle, timeline): {projected:,.0f} events/s  ratio {projected / baseline:.2f}", flush=True)
        timings = await pages(projection_url, args.requests)
    for name, t in timings.items():
        print(f"{name} page: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms ({args.requests} requests)")
    return {"bench": "portal", "events": len(raw), "patients": args.patients, "alerts": args.alerts,
            "baseline_events_per_s": round(baseline), "projection_events_per_s": round(projected),
            "ratio": round(projected / baseline, 2), "pages": timings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="e.g. postgresql+asyncpg://…; default: SQLite in a temp dir")
    result = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
