"""``python -m bench.portal.profile``: where the projection's time goes, without the broker.

Decodes the benchmark's events and applies them to a fresh read model in batches of 2,000
(as the consumer does), under cProfile; prints the events/s and the top entries by own
time and by cumulative time. SQLite in a temp dir by default, or ``--database-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from bench.portal.__main__ import BATCH, events
from services.portal.db import make_engine, migrate
from services.portal.store import Projection
from shared.codec import decode


async def apply_all(url: str, raw: list[bytes], *, fhir_outbox: bool, profile: cProfile.Profile | None) -> tuple[float, float]:
    """Events/s (wall clock), and this process's CPU seconds per 1,000 events: the steadier
    figure on a shared machine (SQLite runs in this process; a PostgreSQL server does not)."""
    engine = make_engine(url)
    await migrate(engine)
    projection = Projection(engine, fhir_outbox=fhir_outbox)
    started, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    for start in range(0, len(raw), BATCH):
        await projection.apply([decode(r) for r in raw[start:start + BATCH]])
    if profile:
        profile.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await engine.dispose()
    return len(raw) / elapsed, cpu / len(raw) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.portal.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--fhir-outbox", action="store_true", help="queue FHIR resources, as with a push sink")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="only the events/s")
    args = parser.parse_args(argv)
    raw = events(args.patients, args.alerts)
    profile = None if args.no_profile else cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="bench-portal-profile-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'portal.db'}"
        rate, cpu = asyncio.run(apply_all(url, raw, fhir_outbox=args.fhir_outbox, profile=profile))
    print(f"{len(raw):,} events decoded and applied: {rate:,.0f} events/s, "
          f"{cpu * 1000:.0f} ms CPU per 1,000 events in this process{' (under cProfile)' if profile else ''}")
    if profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
