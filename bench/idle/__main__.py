"""Measure what an idle pipeline costs (see the README, "Scheduler", idle cost).

1. the embedded broker alone, nothing connected: CPU over ``--seconds``;
2. `cyclecare run` (its own embedded broker and its workers), every worker ready and
   nothing to do: CPU of each child over ``--seconds``, and of the workers together.

CPU is user + system time read from /proc, as a percentage of one core. Prints a readable
report and, last, one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.broker import EmbeddedBroker, free_port
from shared.endpoints import RUN_PORT_OFFSET as SERVICES
from shared.readiness import NotReady, wait_until_ready

ROOT = Path(__file__).parents[2]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


async def percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before, started = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.perf_counter()
    await asyncio.sleep(seconds)  # measuring an interval of idleness, not synchronising
    wall = time.perf_counter() - started
    return {name: (cpu_seconds(pid) - before[name]) / wall * 100 for name, pid in pids.items()}


async def broker_alone(seconds: float, settle: float, tmp: Path) -> float:
    with EmbeddedBroker(log_path=tmp / "alone.log") as broker:
        await asyncio.sleep(settle)
        return (await percent({"broker": broker._process.pid}, seconds))["broker"]  # noqa: SLF001


async def pipeline(seconds: float, settle: float, tmp: Path) -> dict[str, float]:
    base = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"} | {
        "CYCLECARE_HTTP_PORT": str(base), "CYCLECARE_DATA_DIR": str(tmp / "var"), "CYCLECARE_LOG_LEVEL": "WARNING",
    }
    # what a deployment on Apache Kafka runs with (`cyclecare run` keeps 100 ms on the embedded broker)
    env.setdefault("CYCLECARE_FETCH_IDLE_WAIT_MS", "500")
    log = open(tmp / "run.log", "ab")
    run = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], env=env, cwd=ROOT,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        for name, offset in SERVICES.items():
            try:
                await wait_until_ready(f"http://127.0.0.1:{base + offset}", 180,
                                       gone=lambda: "cyclecare run exited" if run.poll() is not None else None)
            except NotReady as exc:
                raise SystemExit(f"the {name} worker never became ready: {exc}") from None
        await asyncio.sleep(settle)  # the first commits and table flushes after start-up
        pids = {"run": run.pid}
        for pid in children(run.pid):
            cmd = command(pid)
            name = next((s for s in SERVICES if cmd.endswith(f"worker {s} ")), "broker" if "tansu" in cmd else cmd)
            pids[name] = pid
        return await percent(pids, seconds)
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()


async def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        alone = await broker_alone(args.seconds, args.settle, Path(tmp))
        print(f"1. embedded broker alone, idle: {alone:.1f}% of one core over {args.seconds:.0f} s")
        parts = await pipeline(args.seconds, args.settle, Path(tmp))
    workers = sum(parts.get(s, 0.0) for s in SERVICES)
    print(f"2. `cyclecare run`, idle, over {args.seconds:.0f} s (% of one core):")
    for name, value in parts.items():
        print(f"   {name:<10} {value:5.1f}")
    print(f"   workers together: {workers:.1f}% (aim < 5); with broker and parent: {sum(parts.values()):.1f}%")
    return {"seconds": args.seconds, "broker_alone_percent": round(alone, 2),
            "idle_workers_percent": round(workers, 2), "idle_total_percent": round(sum(parts.values()), 2)} | {
        f"idle_{name}_percent": round(value, 2) for name, value in parts.items() if name in SERVICES or name == "broker"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="seconds of idleness measured, for each part")
    parser.add_argument("--settle", type=float, default=5, help="seconds to let start-up work finish first")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
