"""``python -m bench.portal``: the clinician portal on a read model of 10,000 patients and
50,000 alerts (SQLite by default, PostgreSQL with ``--database-url``).

Measures
- projection throughput: the contract events are published once on the embedded broker;
  the portal's ProjectionConsumer (a consumer group, batches of up to 2,000, decode,
  ``Projection.apply`` in one transaction, then commit) reads them all, against a
  baseline in the same run, on the same topics and the same kind of database: a plain
  aiokafka consume -> json.loads -> one executemany INSERT into a bare table -> commit loop
  (the tracked ratio), and a second, fairer baseline: the same loop writing 3 indexed rows
  per event (an event id, an entity, a timeline line) as the projection does;
- page latency over real HTTP with a signed-in session: the inbox (its 200 open alerts
  of the most severe) and a patient page (timeline, chart), p50 and p95;
- live: an urgent alert published on the embedded broker until a signed-in poll of the
  inbox list (what the open page fetches every second) shows it, against a portal worker
  process (`cyclecare worker portal`); the page adds at most its 1 s polling interval.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Callable

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Index, MetaData, String, Table, Text

from services.portal.auth import Accounts
from services.portal.cli import add_user
from services.portal.consumer import ProjectionConsumer, group_id, projected_topics
from services.portal.db import database_url, make_engine, migrate
from services.portal.store import Projection, ReadModel
from services.portal.web import Portal, make_app
from shared.broker import EmbeddedBroker, ensure_topics, free_port
from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.codec import encode
from shared.config import load_settings
from shared.readiness import wait_until_ready
from shared.topics import TOPIC_OF, Topics
from tests.support.portal_events import T0, acked, alert, enrolled, headache_checkin, sms_sent, treated

BATCH = 2000
PARTITIONS = 8
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


async def publish_all(bootstrap: str, topics: Topics, raw: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        pending = []
        for r in raw:
            data = json.loads(r)
            topic = topics.name(TOPIC_OF[data["type"]])
            pending.append(await producer.send(topic, r, key=data["patient_id"].encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def project(url: str, bootstrap: str, topics: Topics, total: int, *, fhir_outbox: bool = False) -> float:
    engine = make_engine(url)
    await migrate(engine)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    consumer = ProjectionConsumer(bootstrap, topics, group_id(topics, "bench"), Projection(engine, fhir_outbox=fhir_outbox), producer)
    await consumer.start()
    started = None  # from the first records: joining the group is not the projection's cost
    try:
        while consumer.projected < total:
            batch = await consumer.consumer.getmany(timeout_ms=200, max_records=BATCH)
            if batch:
                started = started or time.perf_counter()
                await consumer.project(batch)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
        await engine.dispose()
    return total / elapsed


_plain = MetaData()
PLAIN = Table("bench_plain_events", _plain, Column("event_id", String(64), primary_key=True),
              Column("type", String(40)), Column("body", Text))
# the second baseline: as many rows per event as the projection writes, with its indexes
_rows = MetaData()
ROWS_SEEN = Table("bench_rows_seen", _rows, Column("event_id", String(64), primary_key=True), Column("type", String(40)))
ROWS_ENTITY = Table("bench_rows_entity", _rows, Column("entity_id", String(128), primary_key=True),
                    Column("patient_id", String(128)), Column("clinic_id", String(64), index=True), Column("body", Text))
ROWS_TIMELINE = Table("bench_rows_timeline", _rows, Column("event_id", String(64), primary_key=True),
                      Column("patient_id", String(128)), Column("clinic_id", String(64)), Column("at", String(40)),
                      Column("kind", String(40)), Column("title", String(300)))
Index("ix_bench_rows_timeline_patient", ROWS_TIMELINE.c.patient_id, ROWS_TIMELINE.c.at)
Index("ix_bench_rows_timeline_clinic_kind", ROWS_TIMELINE.c.clinic_id, ROWS_TIMELINE.c.kind)


def one_row(data: dict, value: bytes) -> dict[Table, list[dict]]:
    return {PLAIN: [{"event_id": data["event_id"], "type": data["type"], "body": value.decode()}]}


def same_rows(data: dict, value: bytes) -> dict[Table, list[dict]]:
    """An event id, an entity row and a timeline line per event, in plain SQL (no model, no
    conflict handling, no lifecycle): what the projection's rows cost the database."""
    event_id, patient_id, clinic_id = data["event_id"], data["patient_id"], data["clinic_id"]
    return {ROWS_SEEN: [{"event_id": event_id, "type": data["type"]}],
            ROWS_ENTITY: [{"entity_id": event_id, "patient_id": patient_id, "clinic_id": clinic_id, "body": value.decode()}],
            ROWS_TIMELINE: [{"event_id": event_id, "patient_id": patient_id, "clinic_id": clinic_id,
                             "at": data["occurred_at"], "kind": data["type"], "title": data["type"]}]}


async def plain_insert(url: str, bootstrap: str, topics: Topics, total: int,
                       rows_of: Callable[[dict, bytes], dict[Table, list[dict]]] = one_row) -> float:
    """Consume -> json.loads -> one executemany per table and batch -> commit the offsets."""
    engine = make_engine(url)
    tables = list(rows_of({"event_id": "", "type": "", "patient_id": "", "clinic_id": "", "occurred_at": ""}, b""))
    async with engine.begin() as conn:
        await conn.run_sync(tables[0].metadata.create_all)
    consumer = AIOKafkaConsumer(*projected_topics(topics), bootstrap_servers=bootstrap,
                                group_id=f"{topics.namespace}-plain-{tables[0].name}",
                                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                max_poll_records=BATCH)
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            started = started or (time.perf_counter() if batch else None)
            rows: dict[Table, list[dict]] = {table: [] for table in tables}
            count = 0
            for records in batch.values():
                for record in records:
                    for table, found in rows_of(json.loads(record.value), record.value).items():
                        rows[table] += found
                    count += 1
            if count:
                async with engine.begin() as conn:
                    for table in tables:
                        await conn.execute(table.insert(), rows[table])
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                seen += count
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await engine.dispose()
    return total / elapsed


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


async def live(tmp: Path, bootstrap: str, alerts: int) -> dict[str, float]:
    topics = Topics(f"live{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, topics.all(), 4)
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
           "CYCLECARE_PARTITIONS": "4", "CYCLECARE_DATA_DIR": str(tmp / "live"), "CYCLECARE_HTTP_PORT": str(port),
           "CYCLECARE_HTTP_HOST": "127.0.0.1", "CYCLECARE_REBALANCE_TIMEOUT": "1"}
    with open(tmp / "portal.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "portal"], env=os.environ | env,
                                  stdout=log, stderr=subprocess.STDOUT)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_ready(url, 60)
        settings = load_settings(env)
        link = await add_user(settings, ["rocklin"], "live@example.org")
        engine = make_engine(database_url(settings))
        await Accounts(engine).set_password(link.split("token=")[1], PASSWORD)
        await engine.dispose()
        await producer.send_and_wait(topics.patients, encode(enrolled("live")), key=b"live")
        samples = []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(f"{url}/login")).text()
            token = page.split('name="csrf_token" value="')[1].split('"')[0]
            await http.post(f"{url}/login", data={"email": "live@example.org", "password": PASSWORD, "csrf_token": token})
            for n in range(alerts):
                alert_id = f"live-{n}"
                started = time.perf_counter()
                await producer.send_and_wait(topics.alerts, encode(alert(alert_id, patient_id="live")), key=b"live")
                while alert_id not in await (await http.get(f"{url}/inbox/list", headers={"HX-Request": "true"})).text():
                    await asyncio.sleep(0.01)
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        await producer.stop()
        worker.terminate()
        worker.wait(30)
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(percentile(samples, 95), 1),
            "max_ms": round(max(samples), 1)}


async def run(args: argparse.Namespace, tmp: Path, bootstrap: str) -> dict:
    raw = events(args.patients, args.alerts)
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, topics.all(), PARTITIONS)
    projection_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'portal.db'}"
    baseline_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'plain.db'}"
    print(f"{len(raw):,} events ({args.patients:,} patients, {args.alerts:,} alerts) on {PARTITIONS} partitions; "
          f"database {projection_url.split(':')[0]}", flush=True)
    await publish_all(bootstrap, topics, raw)
    baseline = await plain_insert(baseline_url, bootstrap, topics, len(raw))
    print(f"baseline, plain consume -> json -> insert -> commit: {baseline:,.0f} events/s", flush=True)
    rows_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'rows.db'}"
    same = await plain_insert(rows_url, bootstrap, topics, len(raw), same_rows)
    print(f"second baseline, the same but 3 indexed rows per event (as the projection writes): {same:,.0f} events/s",
          flush=True)
    projected = await project(projection_url, bootstrap, topics, len(raw), fhir_outbox=args.fhir_outbox)
    print(f"portal projection (decode, idempotent rows, lifecycle, timeline): {projected:,.0f} events/s, "
          f"ratio {projected / baseline:.2f}; against the second baseline {projected / same:.2f}", flush=True)
    timings = await pages(projection_url, args.requests)
    for name, t in timings.items():
        print(f"{name} page: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms ({args.requests} requests)", flush=True)
    shown = await live(tmp, bootstrap, args.live_alerts) if args.live_alerts else None
    if shown:
        print(f"live: urgent alert published -> in the inbox list: p50 {shown['p50_ms']} ms, p95 {shown['p95_ms']} ms, "
              f"max {shown['max_ms']} ms ({args.live_alerts} alerts; the open page polls every 1 s)")
    return {"bench": "portal", "events": len(raw), "fhir_outbox": args.fhir_outbox, "patients": args.patients, "alerts": args.alerts,
            "baseline_events_per_s": round(baseline), "projection_events_per_s": round(projected),
            "ratio": round(projected / baseline, 2), "same_rows_baseline_events_per_s": round(same),
            "ratio_to_same_rows": round(projected / same, 2), "pages": timings, "live_alert_to_inbox": shown}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--live-alerts", type=int, default=20, help="alerts for the live measurement (0: skip it)")
    parser.add_argument("--fhir-outbox", action="store_true", help="the projection also queues FHIR resources (a push sink is set)")
    parser.add_argument("--database-url", default=None, help="e.g. postgresql+asyncpg://…; default: SQLite in a temp dir")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        result = asyncio.run(run(args, Path(tmp), broker.bootstrap_servers))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
