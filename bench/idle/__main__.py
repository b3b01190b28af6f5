"""Measure what an idle pipeline costs (see the README, "Scheduler", idle cost).

1. the embedded broker alone, nothing connected: CPU over ``--seconds``;
2. `cyclecare run` (its own embedded broker and its workers), every worker ready and
   nothing to do, as on Apache Kafka (``CYCLECARE_FETCH_ANSWERED_AT_ONCE=true``: quiet
   consumers wait ``CYCLECARE_FETCH_IDLE_WAIT_MS`` per fetch): CPU of each child over
   ``--seconds``, and of the workers together (the aim is < 5% of one core);
3. the same as `cyclecare run` runs by default on its embedded broker (``auto``: that broker
   holds waiting fetches, so the quiet wait is off); ``--skip-embedded`` leaves it out.

CPU is user + system time read from /proc, as a percentage of one core. ``CYCLECARE_*``
variables of the caller's environment reach the workers (to try other settings). Prints a
readable report and, last, one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from shared.broker import EmbeddedBroker
from shared.endpoints import SERVICES
from tests.support.local_run import LocalRun
from tests.support.workers import cpu_seconds


async def percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before, started = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.perf_counter()
    await asyncio.sleep(seconds)  # measuring an interval of idleness, not synchronising
    wall = time.perf_counter() - started
    return {name: (cpu_seconds(pid) - before[name]) / wall * 100 for name, pid in pids.items()}


async def broker_alone(seconds: float, settle: float, tmp: Path) -> float:
    with EmbeddedBroker(log_path=tmp / "alone.log") as broker:
        await asyncio.sleep(settle)
        return (await percent({"broker": broker.pid}, seconds))["broker"]


async def pipeline(seconds: float, settle: float, data_dir: Path, env: dict[str, str]) -> dict[str, float]:
    data_dir.mkdir(parents=True)
    run = LocalRun(data_dir, env).start()
    try:
        await run.every_worker_ready(timeout=180)
        await asyncio.sleep(settle)  # the first commits and table flushes after start-up
        return await percent({"run": run.pid} | run.children(), seconds)
    finally:
        run.stop()


def report(title: str, parts: dict[str, float], seconds: float) -> float:
    workers = sum(parts.get(s, 0.0) for s in SERVICES)
    print(f"{title}, idle, over {seconds:.0f} s (% of one core):")
    for name, value in parts.items():
        print(f"   {name:<10} {value:5.1f}")
    print(f"   workers together: {workers:.1f}% (aim < 5); with broker and parent: {sum(parts.values()):.1f}%")
    return workers


def figures(prefix: str, parts: dict[str, float], workers: float) -> dict[str, float]:
    return {f"{prefix}_workers_percent": round(workers, 2), f"{prefix}_total_percent": round(sum(parts.values()), 2)} | {
        f"{prefix}_{name}_percent": round(value, 2) for name, value in parts.items() if name in SERVICES or name == "broker"}


async def main(args: argparse.Namespace) -> dict:
    own = {k: v for k, v in os.environ.items() if k.startswith("CYCLECARE_")} | {"CYCLECARE_LOG_LEVEL": "WARNING"}
    result: dict[str, float] = {"seconds": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        alone = await broker_alone(args.seconds, args.settle, Path(tmp))
        print(f"1. embedded broker alone, idle: {alone:.1f}% of one core over {args.seconds:.0f} s")
        result["broker_alone_percent"] = round(alone, 2)
        kafka_like = own | {"CYCLECARE_FETCH_ANSWERED_AT_ONCE": "true"}
        parts = await pipeline(args.seconds, args.settle, Path(tmp) / "kafka-like", kafka_like)
        result |= figures("idle", parts, report("2. `cyclecare run` as on Apache Kafka (quiet fetch wait on)", parts, args.seconds))
        if not args.skip_embedded:
            parts = await pipeline(args.seconds, args.settle, Path(tmp) / "embedded", own)
            result |= figures("embedded", parts, report("3. `cyclecare run` on its embedded broker (quiet fetch wait off)",
                                                        parts, args.seconds))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="seconds of idleness measured, for each part")
    parser.add_argument("--settle", type=float, default=5, help="seconds to let start-up work finish first")
    parser.add_argument("--skip-embedded", action="store_true", help="measure only the Apache-Kafka-like pipeline")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
