"""The scheduler consumes in batches on the real broker: a worker killed between a batch's
publishes and its table writes loses no moment and repeats only with the same event ids, and
each table write lands in the changelog partition of its patient (not of whichever record a
batch happened to end with).

Same simulated clock and helpers as ``test_scheduler_durability``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer

from shared.clock import SimulatedClock
from services.scheduler import domain
from tests.integration.test_scheduler_durability import (
    LA,
    START,
    SPEED,
    away_six_days,
    check_every_moment_once,
    clock_env,
    fired,
    patient,
    planned,
    scheduled,
    treatment,
)
from tests.support.kafka import eventually
from tests.support.workers import WorkerProcess

KILLED_MID_BATCH = "tests.support.scheduler_killed_mid_batch"


async def enrol_and_treat_at_once(publisher, topics, clock: SimulatedClock, patients: range) -> list:
    """Like ``enrol_and_treat``, with every record sent at once (the producer batches them),
    so that hundreds of patients arrive within a simulated hour instead of weeks."""
    today = clock.now().astimezone(ZoneInfo(LA)).date()
    treatments = [treatment(n, today - timedelta(days=n % 10)) for n in patients]
    await asyncio.gather(*(publisher.send(topics.patients, f"p-{n}", patient(n)) for n in patients))
    await asyncio.gather(*(publisher.send(topics.treatments, t.patient_id, t) for t in treatments))
    return treatments


class InFlight:
    """Reads the due topic and the changelog as the watcher collects them (incrementally: the
    test polls it every 50 ms): moments already published whose patient's latest stored
    schedule still holds them, i.e. a worker between a batch's publishes and its table writes."""

    def __init__(self, watcher, due_topic: str, changelog: str) -> None:
        self.watcher, self.due_topic, self.changelog = watcher, due_topic, changelog
        self.read = 0
        self.published: set[str] = set()
        self.pending: dict[str, set[str]] = {}  # patient -> timer ids its latest stored schedule holds

    def __call__(self) -> set[str]:
        records = self.watcher.records
        for name, _, value in records[self.read:len(records)]:
            if not value:
                continue
            data = json.loads(value)
            if name == self.changelog:
                self.pending[data["patient_id"]] = {t.timer_id for t in domain.from_stored(data).pending}
            elif name == self.due_topic and data.get("type") != "timer.skipped":
                self.published.add(data["event_id"])
        self.read = len(records)
        return {timer for timers in self.pending.values() for timer in timers} & self.published


async def test_a_worker_killed_in_the_middle_of_a_batch_loses_no_moment_and_repeats_keep_their_ids(
    start_worker, publisher, topics, watch, worker_env, tmp_path
):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    first = await start_worker("scheduler", **clock_env(anchor))
    changelog = f"{topics.namespace}-scheduler-schedules-changelog"
    watcher = await watch(topics.due, changelog, topics.dlq)
    treatments = await enrol_and_treat_at_once(publisher, topics, clock, range(1000))
    timers = planned(treatments)
    await eventually(lambda: len(scheduled(watcher.raw(changelog))) == 1000, timeout=60, what="1,000 schedules saved")

    # a few days with no worker: the restarted one has thousands of moments to fire in batches
    await away_six_days(first, clock)
    in_flight = InFlight(watcher, topics.due, changelog)
    # killed by itself once the broker acknowledged its first batch's due events: the batch's
    # table writes and offsets never happen
    second = WorkerProcess("scheduler", worker_env | clock_env(anchor), tmp_path, module=KILLED_MID_BATCH).start()
    try:
        await eventually(lambda: second.returncode() is not None, timeout=90, what="the worker killed mid-batch")
    finally:
        second.kill()
    assert second.returncode() == -signal.SIGKILL, second.output()[-3000:]
    caught = await eventually(in_flight, timeout=30, what="a batch published but not stored")

    await start_worker("scheduler", **clock_env(anchor))
    restarted_at = clock.now()

    def caught_up() -> bool:  # the restarted worker works through the whole backlog, not only that batch
        try:
            check_every_moment_once(watcher.events(topics.due), timers, restarted_at)
        except AssertionError:
            return False
        return True

    await eventually(caught_up, timeout=90, what="every moment due before the restart fired once by id")
    assert caught <= fired(watcher.events(topics.due))
    check_every_moment_once(watcher.events(topics.due), timers, restarted_at)
    assert watcher.raw(topics.dlq) == []


async def partitions_of(bootstrap: str, topic: str, wanted: int) -> dict[str, set[int]]:
    """The partitions each patient was written to in ``topic``, read from the beginning
    (a table's changelog keys are JSON strings, the input topics' plain ids)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, metadata_max_age_ms=1000)
    await consumer.start()
    found: dict[str, set[int]] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(found) < wanted:
            assert loop.time() < deadline, f"only {len(found)} of {wanted} keys in {topic}"
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    key = record.key.decode()
                    found.setdefault(json.loads(key) if key.startswith('"') else key, set()).add(tp.partition)
    finally:
        await consumer.stop()
    return found


async def test_each_schedule_written_from_a_batch_lands_in_the_changelog_partition_of_its_patient(
    start_worker, publisher, topics, watch, broker
):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    await start_worker("scheduler", **clock_env(anchor))
    changelog = f"{topics.namespace}-scheduler-schedules-changelog"
    watcher = await watch(changelog)
    await enrol_and_treat_at_once(publisher, topics, clock, range(200))
    await eventually(lambda: len(scheduled(watcher.raw(changelog))) == 200, timeout=60, what="200 schedules saved")

    sources = await partitions_of(broker.bootstrap_servers, topics.treatments, 200)
    stored = await partitions_of(broker.bootstrap_servers, changelog, 200)
    misplaced = {key: (sources[key], parts) for key, parts in stored.items() if parts != sources.get(key)}
    assert len({p for parts in sources.values() for p in parts}) > 1  # the patients span partitions
    assert not misplaced, f"{len(misplaced)} schedules in another patient's partition: {list(misplaced.items())[:3]}"
