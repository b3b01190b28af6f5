"""``python -m bench.fhir_out``: FHIR out of the portal's read model (SQLite in a temp dir),
each figure next to a baseline measured in the same run on the same database.

- projection with the push sink's outbox on, against the same events projected with it off
  (the cost of queueing each QuestionnaireResponse, AdverseEvent and Flag);
- a patient's Observation search over real HTTP (R4B models, Bundle, JSON), p50/p95,
  against the same rows read with a plain SELECT of that patient's check-ins;
- walking every QuestionnaireResponse page by page (``_count=1000``, keyset cursor) and the
  bulk export (NDJSON), resources/s, against a plain SELECT of every check-in row;
- the push sink draining its outbox into a local FHIR server over HTTP (conditional
  creates), resources/s.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from services.portal import schema as s
from services.portal.fhir.api import FhirApi
from services.portal.fhir.export import export_ndjson
from services.portal.fhir.search import Search
from services.portal.fhir.sink import HttpFhirSink, Pusher, outbox_states
from services.portal.fhir.store import FhirStore
from services.portal.store import Projection
from tests.support.fake_fhir import FakeFhirServer
from tests.support.fhir_story import full_cycle
from tests.support.portal_db import migrated_sqlite

TOKEN = "bench-token"
BATCH = 2000


def story(patients: int) -> list:
    return [event for i in range(patients) for event in full_cycle(f"p{i:05d}")]


async def project(path: Path, events: list, outbox: bool) -> float:
    engine = await migrated_sqlite(path)
    projection = Projection(engine, fhir_outbox=outbox)
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        await projection.apply(events[start:start + BATCH])
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(events) / elapsed


def percentile(values: list[float], p: float) -> float:
    return round(statistics.quantiles(values, n=100)[p - 1] * 1000, 1)


async def searches(path: Path, patients: int, requests: int) -> dict[str, float]:
    engine = await migrated_sqlite(path)
    app = web.Application()
    app.add_routes(FhirApi(FhirStore(engine), TOKEN).routes())
    api, plain = [], []
    async with TestClient(TestServer(app)) as client:
        for n in range(requests):
            patient = f"p{(n * 7919) % patients:05d}"
            started = time.perf_counter()
            response = await client.get(f"/fhir/R4/Observation?patient={patient}", headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status == 200 and len(json.loads(await response.text())["entry"]) == 3
            api.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with engine.connect() as conn:
                rows = list(await conn.execute(select(s.checkins).where(s.checkins.c.patient_id == patient,
                                                                        s.checkins.c.kind == "headache_frequency")))
            assert len(rows) == 2
            plain.append(time.perf_counter() - started)
    await engine.dispose()
    return {"api_p50_ms": percentile(api, 50), "api_p95_ms": percentile(api, 95),
            "plain_p50_ms": percentile(plain, 50), "plain_p95_ms": percentile(plain, 95)}


async def walks(path: Path, out: Path) -> dict[str, float]:
    engine = await migrated_sqlite(path)
    store = FhirStore(engine)
    started = time.perf_counter()
    async with engine.connect() as conn:
        rows = list(await conn.execute(select(s.checkins).order_by(s.checkins.c.completed_at, s.checkins.c.checkin_id)))
    plain = len(rows) / (time.perf_counter() - started)
    started, walked, cursor = time.perf_counter(), 0, None
    while True:
        page = await store.search("QuestionnaireResponse", Search(count=1000, cursor=cursor))
        walked += len(page.resources)
        if page.next is None:
            break
        cursor = page.next
    paged = walked / (time.perf_counter() - started)
    assert walked == len(rows)
    started = time.perf_counter()
    written = await export_ndjson(engine, Search(), out)
    exported = sum(written.values()) / (time.perf_counter() - started)
    await engine.dispose()
    return {"plain_rows_per_s": round(plain), "paged_resources_per_s": round(paged),
            "export_resources_per_s": round(exported), "exported": sum(written.values())}


async def push(path: Path) -> dict[str, float]:
    engine = await migrated_sqlite(path)
    ehr = await FakeFhirServer().start()
    sink = HttpFhirSink(ehr.url, ehr.token)
    pusher = Pusher(engine, sink)
    started = time.perf_counter()
    while await pusher.push_due():
        pass
    elapsed = time.perf_counter() - started
    states = await outbox_states(engine)
    await sink.close()
    await ehr.stop()
    await engine.dispose()
    assert set(states) == {"pushed"}, states  # every row pushed; a Flag's resolution updates its Flag
    assert len(ehr.stored) == 9 * states["pushed"] // 10
    return {"pushed": states["pushed"], "pushed_per_s": round(states["pushed"] / elapsed)}


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    events = story(args.patients)
    print(f"{len(events):,} events ({args.patients:,} patients' cycles) projected into SQLite in batches of {BATCH}", flush=True)
    without = await project(tmp / "plain.db", events, outbox=False)
    with_outbox = await project(tmp / "outbox.db", events, outbox=True)
    print(f"projection without the outbox (baseline): {without:,.0f} events/s; with it: {with_outbox:,.0f} events/s "
          f"(ratio {with_outbox / without:.2f})", flush=True)
    latency = await searches(tmp / "plain.db", args.patients, args.requests)
    print(f"Observation search by patient over HTTP: p50 {latency['api_p50_ms']} ms, p95 {latency['api_p95_ms']} ms; "
          f"plain SELECT of the same rows: p50 {latency['plain_p50_ms']} ms, p95 {latency['plain_p95_ms']} ms", flush=True)
    walk = await walks(tmp / "plain.db", tmp / "export")
    print(f"every QuestionnaireResponse page by page (_count=1000): {walk['paged_resources_per_s']:,} resources/s; "
          f"plain SELECT of the rows: {walk['plain_rows_per_s']:,} rows/s", flush=True)
    print(f"bulk export: {walk['exported']:,} resources at {walk['export_resources_per_s']:,} resources/s", flush=True)
    pushed = await push(tmp / "outbox.db")
    print(f"push sink to a local FHIR server over HTTP: {pushed['pushed']:,} conditional creates and updates at "
          f"{pushed['pushed_per_s']:,}/s", flush=True)
    return {"bench": "fhir_out", "patients": args.patients, "events": len(events),
            "projection_events_per_s": round(with_outbox), "projection_baseline_events_per_s": round(without),
            "projection_ratio": round(with_outbox / without, 2), **latency, **walk, **pushed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir_out", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cyclecare-fhir-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
