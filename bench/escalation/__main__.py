"""``python -m bench.escalation``: how long after an urgent alert's acknowledgement deadline
passes (on the scheduler's simulated clock) its level-2 ``alert.escalated`` is on the broker.

One scheduler worker on the embedded broker runs a simulated clock; the bench builds the same
clock from the same three numbers, so it knows the real instant each deadline passes. It
publishes N urgent alerts at once whose 15-minute deadlines fall one after another during the
run, and reads ``cyclecare.alert-actions`` with a plain aiokafka consumer: the latency of an
alert is the real time from its deadline passing to its level-2 page being read. The baseline,
in the same run, is a raw aiokafka produce -> consume round trip on the same broker (the floor
of one hop); a page costs a tick (``CYCLECARE_TICK_SECONDS``) plus two hops. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.survey.__main__ import baseline, summary
from shared.broker import EmbeddedBroker, ensure_topics
from shared.clock import SimulatedClock
from shared.codec import DecodeError, decode, encode
from shared.events import AlertEscalated, ClinicianAlert
from shared.topics import Topics
from tests.support.workers import WorkerProcess

START = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)  # 18:00 in Rocklin
URGENT_ACK = timedelta(minutes=15)  # the example clinic's default policy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.escalation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=300, help="urgent alerts, one deadline each (default 300)")
    parser.add_argument("--spacing", type=float, default=0.1, help="real seconds between two deadlines (default 0.1)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    parser.add_argument("--tick", type=float, default=1.0, help="CYCLECARE_TICK_SECONDS of the worker (default 1.0, "
                                                                "the production default)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument("--fetch-wait-ms", type=int, default=50, help="fetch_max_wait_ms of the bench's reader (default 50)")
    parser.add_argument("--quick", action="store_true", help="60 alerts")
    args = parser.parse_args(argv)
    if args.quick:
        args.alerts = 60
    return args


def deadlines(first_in: float, args: argparse.Namespace) -> dict[str, float]:
    """Alert id -> the real (wall clock) instant its deadline passes, one every ``spacing`` seconds."""
    now = time.time()
    return {f"bench-{n}": now + first_in + n * args.spacing for n in range(args.alerts)}


def alert_event(alert_id: str, n: int, deadline_real: float, clock: SimulatedClock) -> ClinicianAlert:
    deadline = clock.start + timedelta(seconds=(deadline_real - clock.anchor) * clock.speed)
    return ClinicianAlert(alert_id=alert_id, patient_id=f"p-{n}", clinic_id="rocklin", severity="urgent",
                          reasons=["dysphagia"], summary="bench", raised_at=deadline - URGENT_ACK)


async def measure(bootstrap: str, topics: Topics, clock: SimulatedClock, args: argparse.Namespace) -> tuple[list[float], int]:
    reader = AIOKafkaConsumer(topics.alert_actions, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                              fetch_max_wait_ms=args.fetch_wait_ms)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await reader.start()
    await producer.start()
    seen: dict[str, float] = {}
    due: dict[str, float] = {}
    try:
        due = deadlines(first_in=5.0, args=args)
        for n, (alert_id, real) in enumerate(due.items()):
            event = alert_event(alert_id, n, real, clock)
            await producer.send(topics.alerts, encode(event), key=event.patient_id.encode())
        await producer.flush()
        last = max(due.values())
        async with asyncio.timeout(last - time.time() + 30):
            async for record in reader:
                try:
                    event = decode(record.value)
                except DecodeError:
                    continue
                if isinstance(event, AlertEscalated) and event.level == 2 and event.alert_id in due:
                    seen.setdefault(event.alert_id, time.time())
                    if len(seen) == len(due):
                        break
    except TimeoutError:
        pass
    finally:
        await producer.stop()
        await reader.stop()
    return [(seen[a] - due[a]) * 1000 for a in seen], len(due) - len(seen)


def report(args: argparse.Namespace, pages: list[float], missing: int, base: list[float]) -> dict:
    page, floor = summary(pages), summary(base)
    line = "{:<42} {:>6} {:>8} {:>8} {:>8} {:>8}"
    print()
    print(f"escalation benchmark: {args.alerts} urgent alerts, a deadline every {args.spacing:g} s, clock x{args.speed:g}, "
          f"tick {args.tick:g} s, {args.partitions} partitions")
    print(line.format("latency (ms)", "n", "p50", "p95", "p99", "max"))
    for name, s in (("deadline passed -> level-2 page on topic", page), ("baseline: raw produce -> consume", floor)):
        print(line.format(name, s["n"], f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['p99']:.1f}", f"{s['max']:.1f}"))
    aim = page["p99"] < args.tick * 1000 + 1000
    print(f"pages missing: {missing}; aim p99 < tick + 1 s: {'met' if aim and not missing else 'MISSED'}")
    print("note: a deadline is noticed at the next tick (up to one tick late), then the deadline command and the page\n"
          "each take one hop through the broker.")
    outcome = {"benchmark": "escalation", "alerts": args.alerts, "speed": args.speed, "tick_s": args.tick,
               "missing": missing, "page_ms": {k: round(v, 2) for k, v in page.items()},
               "baseline_ms": {k: round(v, 2) for k, v in floor.items()}, "aim_met": bool(aim and not missing)}
    print(json.dumps(outcome))
    return outcome


async def run(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict:
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap, [*topics.all(), topics.name("bench-baseline")], args.partitions)
    anchor = time.time()
    clock = SimulatedClock(START, args.speed, anchor)
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
           "CYCLECARE_PARTITIONS": str(args.partitions), "CYCLECARE_REBALANCE_TIMEOUT": "2",
           "CYCLECARE_DATA_DIR": str(workdir / "data"), "CYCLECARE_TICK_SECONDS": str(args.tick),
           "CYCLECARE_CLOCK_START": START.isoformat(), "CYCLECARE_CLOCK_SPEED": str(args.speed),
           "CYCLECARE_CLOCK_ANCHOR": str(anchor), "CYCLECARE_LOG_LEVEL": "WARNING", "CYCLECARE_LOG_FORMAT": "json"}
    worker = WorkerProcess("scheduler", env, workdir).start()
    print(f"starting the scheduler worker (log: {worker.log_path})", flush=True)
    try:
        await worker.wait_ready()
        base = await baseline(bootstrap, topics.name("bench-baseline"), 300, 50.0, args.fetch_wait_ms)
        print(f"baseline done; {args.alerts} alerts, deadlines over {args.alerts * args.spacing:.0f} s", flush=True)
        pages, missing = await measure(bootstrap, topics, clock, args)
    finally:
        worker.stop()
    return report(args, pages, missing, base)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-escalation-") as tmp, \
            EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        asyncio.run(run(args, broker.bootstrap_servers, Path(tmp)))


if __name__ == "__main__":
    main()
