"""Measure the scheduler on the embedded broker (see the README, "Scheduler").

1. ingest: N patients with one treatment each, events/s until every timer is registered
   (``cyclecare_timers_pending``), next to a plain aiokafka consume->produce loop and to a
   bare Faust agent that reads and writes one table entry and publishes one event per record
   (``bench/scheduler/faust_ceiling.py``: the Faust ceiling), over the same messages on the
   same broker: ``ingest_ratio`` to the plain loop, ``faust_ratio`` to the bare agent;
2. tick cost with many pending timers and none due, against few;
3. peak RSS of the scheduler worker holding the timers of step 1;
4. catch-up: a new worker whose clock is past every patient's day-2 check-in fires them all;
5. idle cost: CPU of the scheduler worker holding every timer, with nothing to do.

Prints a readable report and, last, one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.broker import EmbeddedBroker, ensure_topics, free_port
from shared.readiness import NotReady, wait_until_ready
from shared.topics import Topics
from tests.support.workers import cpu_seconds

ROOT = Path(__file__).parents[2]
TREATED_ON = "2026-03-02"
INGEST_CLOCK = "2026-03-02T19:00:00+00:00"  # 11:00 in Los Angeles on the day of treatment
CATCHUP_CLOCK = "2026-03-05T00:00:00+00:00"  # 16:00 on day 2: every day-2 check-in is due
TIMERS_PER_PATIENT = 9
PARTITIONS = 8


def messages(patients: int, topics: Topics) -> list[tuple[str, bytes, bytes]]:
    out = []
    for n in range(patients):
        pid = f"p-{n}"
        patient = {"type": "patient.enrolled", "version": 1, "event_id": f"e-p-{n}", "occurred_at": INGEST_CLOCK,
                   "patient_id": pid, "clinic_id": "rocklin", "first_name": "Ana", "phone": f"+1916{n:07d}",
                   "timezone": "America/Los_Angeles", "language": "en", "sms_consent": True}
        treatment = {"type": "treatment.recorded", "version": 1, "event_id": f"e-t-{n}", "occurred_at": INGEST_CLOCK,
                     "treatment_id": f"t-{n}", "patient_id": pid, "clinic_id": "rocklin", "administered_on": TREATED_ON}
        out.append((topics.patients, pid.encode(), json.dumps(patient).encode()))
        out.append((topics.treatments, pid.encode(), json.dumps(treatment).encode()))
    return out


async def produce(bootstrap: str, batch: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in batch]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def plain_loop(bootstrap: str, topics: Topics, batch: list) -> float:
    """Events/s of a bare consume->produce loop, measured like the scheduler: from the first
    message produced to the last one consumed and forwarded."""
    sink = topics.name("bench-sink")
    await ensure_topics(bootstrap, [sink], PARTITIONS)
    consumer = AIOKafkaConsumer(topics.patients, topics.treatments, bootstrap_servers=bootstrap,
                                group_id=f"plain-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    started = time.perf_counter()
    feeding = asyncio.create_task(produce(bootstrap, batch))
    seen = 0
    while seen < len(batch):
        for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            for record in records:
                await producer.send(sink, record.value, key=record.key)
            seen += len(records)
    await producer.flush()
    elapsed = time.perf_counter() - started
    await feeding
    await consumer.stop()
    await producer.stop()
    return len(batch) / elapsed


class Worker:
    def __init__(self, bootstrap: str, namespace: str, clock: str, data: Path,
                 module: tuple[str, ...] = ("services.cli", "worker", "scheduler")) -> None:
        self.port = free_port()
        env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CYCLECARE_TOPIC_NAMESPACE": namespace,
            "CYCLECARE_PARTITIONS": str(PARTITIONS), "CYCLECARE_HTTP_PORT": str(self.port),
            "CYCLECARE_HTTP_HOST": "127.0.0.1", "CYCLECARE_CLOCK_START": clock, "CYCLECARE_CLOCK_SPEED": "1",
            "CYCLECARE_TICK_SECONDS": "0.2", "CYCLECARE_REBALANCE_TIMEOUT": "2", "CYCLECARE_DATA_DIR": str(data),
            "CYCLECARE_LOG_LEVEL": "WARNING",
        }
        self.log = open(data / f"scheduler-{self.port}.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", *module],
                                        env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    async def metric(self, name: str) -> float | None:
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{self.url}/metrics") as response:
                    for line in (await response.text()).splitlines():
                        if line.startswith(name + " "):
                            return float(line.split()[1])
        except aiohttp.ClientError:
            return None
        return None

    async def ready(self, timeout: float = 120) -> None:
        try:
            await wait_until_ready(self.url, timeout)
        except NotReady:
            raise SystemExit("scheduler worker never became ready") from None

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User and system CPU time of the worker process so far."""
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Cpu:
    """CPU time of the worker and the broker from now on, as shares of one core over a phase."""

    def __init__(self, worker_pid: int, broker_pid: int | None) -> None:
        self.pids = (worker_pid, broker_pid)
        self.start = [self._seconds(pid) for pid in self.pids]

    @staticmethod
    def _seconds(pid: int | None) -> float:
        return cpu_seconds(pid) if pid else float("nan")

    def share(self, wall: float) -> tuple[float, float]:
        worker, broker = ((self._seconds(pid) - start) / wall for pid, start in zip(self.pids, self.start))
        return worker, broker


async def wait_metric(worker: Worker, name: str, target: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await worker.metric(name) or 0) >= target:
            return time.perf_counter()
        await asyncio.sleep(0.25)
    raise SystemExit(f"{name} never reached {target} (last {await worker.metric(name)})")


def tick_costs(many: int, few: int = 1000, ticks: int = 2000, rounds: int = 7) -> tuple[float, float]:
    """Microseconds per tick of the wheel with ``many`` and with ``few`` patients pending and
    none due (the scheduler's tick: count, overdue look, pop what is due). A tick costs a few
    microseconds, so one pass of each moved by 30% from run to run: the two wheels are timed
    in turn, ``rounds`` times, and each keeps its fastest pass (as ``timeit`` advises)."""
    from services.scheduler.timerwheel import TimerWheel

    base = datetime(2026, 3, 2, tzinfo=timezone.utc)
    now = base + timedelta(hours=1)

    def filled(pending: int) -> TimerWheel:
        wheel = TimerWheel()
        for n in range(pending):
            wheel.set(f"p-{n}", base + timedelta(days=2, seconds=n % 86400), TIMERS_PER_PATIENT)
        return wheel

    def one_pass(wheel: TimerWheel) -> float:
        started = time.perf_counter()
        for _ in range(ticks):
            _ = wheel.timers, wheel.overdue(now)
            assert wheel.pop_due(now, retry_at=now + timedelta(seconds=20)) == []
        return (time.perf_counter() - started) / ticks * 1e6

    wheels = filled(many), filled(few)
    passes = [[one_pass(wheel) for wheel in wheels] for _ in range(rounds)]
    return min(big for big, _ in passes), min(small for _, small in passes)


async def count_due(bootstrap: str, topic: str, target: int, timeout: float) -> tuple[float, float]:
    """When the first and the ``target``-th distinct check-in came due (NaN if never)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    ids: set[bytes] = set()
    first, deadline = float("nan"), time.monotonic() + timeout
    try:
        while len(ids) < target and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=100, max_records=10000)).values():
                for record in records:
                    if b'"checkin.due"' in record.value:
                        ids.add(json.loads(record.value)["event_id"].encode())
                        first = time.perf_counter() if math.isnan(first) else first
        return first, time.perf_counter() if len(ids) >= target else float("nan")
    finally:
        await consumer.stop()


async def count_records(bootstrap: str, topic: str, target: int, timeout: float) -> float:
    """When ``target`` records have been read back from ``topic`` (counted, not end offsets:
    the embedded broker under-reports those under load)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen, deadline = 0, time.monotonic() + timeout
    try:
        while seen < target and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=10000)).values():
                seen += len(records)
        return time.perf_counter() if seen >= target else float("nan")
    finally:
        await consumer.stop()


async def faust_ceiling(bootstrap: str, patients: int, data: Path, timeout: float) -> float:
    """Events/s of the bare Faust table agent, from the first message produced to the last
    one forwarded."""
    topics = Topics(f"ceiling{uuid.uuid4().hex[:6]}")
    sink = topics.name("bench-ceiling")
    await ensure_topics(bootstrap, [*topics.all(), sink], PARTITIONS)
    batch = messages(patients, topics)
    agent = Worker(bootstrap, topics.namespace, INGEST_CLOCK, data, module=("bench.scheduler.faust_ceiling",))
    try:
        await agent.ready()
        counting = asyncio.create_task(count_records(bootstrap, sink, len(batch), timeout))
        started = time.perf_counter()
        await produce(bootstrap, batch)
        done = await counting
    finally:
        agent.stop()
    return len(batch) / (done - started)


def profile(worker: Worker, path: Path) -> subprocess.Popen:
    """py-spy sampling ``worker`` until stopped (``pip install py-spy``); ``.txt``: collapsed
    stacks (``--format raw``), otherwise a flame graph."""
    form = "raw" if path.suffix == ".txt" else "flamegraph"
    beside = Path(sys.executable).parent / "py-spy"  # installed into the venv running the bench
    return subprocess.Popen([str(beside) if beside.exists() else "py-spy", "record", "--pid", str(worker.process.pid), "--rate", "100", "--format", form,
                             "--output", str(path), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rounded(value: float, digits: int) -> float | None:
    """``round``, with a figure not measured (NaN) as ``null`` in the JSON line."""
    return None if math.isnan(value) else round(value, digits)


async def main(args: argparse.Namespace) -> dict:
    report: dict = {"patients": args.patients}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        bootstrap = broker.bootstrap_servers
        topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
        await ensure_topics(bootstrap, topics.all(), PARTITIONS)
        batch = messages(args.patients, topics)
        print(f"embedded broker {bootstrap}; {len(batch):,} messages ({args.patients:,} patients + treatments)")

        plain = ceiling = float("nan")
        if args.baselines and not args.catchup_only:
            plain_topics = Topics(f"plain{uuid.uuid4().hex[:6]}")
            await ensure_topics(bootstrap, plain_topics.all(), PARTITIONS)
            plain = await plain_loop(bootstrap, plain_topics, messages(args.patients, plain_topics))
            print(f"1. plain aiokafka consume->produce: {plain:,.0f} events/s")
            ceiling = await faust_ceiling(bootstrap, args.patients, Path(tmp), args.timeout)
            print(f"   bare Faust agent, one table read+write and one publish per record: {ceiling:,.0f} events/s "
                  f"({ceiling / plain:.3f}x the plain loop: the Faust ceiling)")

        worker = Worker(bootstrap, topics.namespace, INGEST_CLOCK, Path(tmp))
        await worker.ready()
        started = time.perf_counter()
        cpu = Cpu(worker.process.pid, broker.pid)
        await produce(bootstrap, batch)
        done = await wait_metric(worker, "cyclecare_timers_pending", args.patients * TIMERS_PER_PATIENT, args.timeout)
        worker_cpu, broker_cpu = cpu.share(done - started)
        ingest = len(batch) / (done - started)
        report |= {"ingest_events_per_s": round(ingest), "plain_events_per_s": rounded(plain, 0),
                   "faust_events_per_s": rounded(ceiling, 0), "ingest_ratio": rounded(ingest / plain, 3),
                   "faust_ratio": rounded(ingest / ceiling, 3),
                   "ingest_worker_cpu": rounded(worker_cpu, 2), "ingest_broker_cpu": rounded(broker_cpu, 2)}
        print(f"   scheduler: {ingest:,.0f} events/s until {args.patients * TIMERS_PER_PATIENT:,} timers registered "
              f"({done - started:.1f} s); ingest_ratio {ingest / plain:.3f} (aim >= 0.1), "
              f"faust_ratio {ingest / ceiling:.3f} (aim >= 0.9); busy: worker {worker_cpu:.0%} of a core, "
              f"broker {broker_cpu:.0%}")

        rss = worker.peak_rss_mb()
        report |= {"peak_rss_mb": round(rss), "timers_held": args.patients * TIMERS_PER_PATIENT}
        print(f"3. peak RSS of the worker holding {args.patients * TIMERS_PER_PATIENT:,} timers: {rss:,.0f} MB (aim <= 1000)")
        await asyncio.sleep(2)  # let the ingest's last commits and changelog flushes settle
        if not args.catchup_only:
            cpu, wall = worker.cpu_seconds(), time.perf_counter()
            await asyncio.sleep(args.idle)  # measuring an interval of idleness, not synchronising
            idle = (worker.cpu_seconds() - cpu) / (time.perf_counter() - wall) * 100
            report |= {"idle_cpu_percent": round(idle, 2)}
            print(f"5. idle: the worker holding every timer, nothing to do: {idle:.1f}% of one core over {args.idle:.0f} s (aim < 5)")
        worker.stop()

        if not args.catchup_only:
            big, small = tick_costs(args.timers)
            report |= {"tick_us_many": round(big, 2), "tick_us_1000": round(small, 2), "tick_pending_many": args.timers,
                       "tick_ratio": round(big / small, 2)}
            print(f"2. tick with {args.timers:,} patients pending, none due: {big:.2f} us; with 1,000: {small:.2f} us; "
                  f"ratio {big / small:.2f} (aim <= 1.2)")

        catchup = Worker(bootstrap, topics.namespace, CATCHUP_CLOCK, Path(tmp))
        spawned = time.perf_counter()
        await catchup.ready()
        ready = time.perf_counter()
        profiler = profile(catchup, args.profile) if args.profile else None
        cpu = Cpu(catchup.process.pid, broker.pid)
        first, fired = await count_due(bootstrap, topics.due, args.patients, args.timeout)
        worker_cpu, broker_cpu = cpu.share(fired - ready)
        if profiler:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            profiler.wait(timeout=120)
            print(f"   py-spy profile of the catch-up worker: {args.profile}")
        report |= {"catchup_s": rounded(fired - ready, 2), "catchup_incl_start_s": rounded(fired - spawned, 2),
                   "catchup_first_s": rounded(first - ready, 2),
                   "catchup_timers": args.patients, "catchup_rss_mb": round(catchup.peak_rss_mb()),
                   "catchup_worker_cpu": rounded(worker_cpu, 2), "catchup_broker_cpu": rounded(broker_cpu, 2)}
        print(f"4. catch-up: {args.patients:,} timers due while no worker ran fired in {fired - ready:.1f} s after "
              f"ready ({fired - spawned:.1f} s from start, recovery included); "
              f"{args.patients / (fired - ready):,.0f} timers/s (aim: 100,000 in <= 30 s), the first {first - ready:.1f} s "
              f"after ready; busy: worker "
              f"{worker_cpu:.0%} of a core, broker {broker_cpu:.0%}")
        catchup.stop()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="patients, each with one treatment")
    parser.add_argument("--timers", type=int, default=1_000_000, help="pending entries for the tick-cost figure")
    parser.add_argument("--idle", type=float, default=20, help="seconds of idleness measured")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each phase")
    parser.add_argument("--no-baselines", dest="baselines", action="store_false",
                        help="skip the plain loop and the Faust ceiling (the ratios are then NaN)")
    parser.add_argument("--catchup-only", action="store_true",
                        help="ingest (needed to hold the timers), then catch-up: no baselines, idle or tick figures")
    parser.add_argument("--profile", type=Path, help="py-spy the catch-up worker into this file (.txt: collapsed stacks)")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
