"""A contract topic that exists before the workers, with its own partition count (an
integration that published first and let the broker auto-create it): the scheduler sizes
its tables to it and works, or refuses to start with one line when its sources disagree.
Never does it start and dead-letter every record."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.broker import ensure_topics, partition_counts
from shared.clock import SimulatedClock
from shared.events import DueEvent
from shared.topics import Topics
from tests.integration.test_scheduler_durability import LA, SPEED, START, clock_env, patient, treatment
from tests.support.kafka import eventually
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration


def fresh_namespace() -> Topics:
    return Topics(f"s{uuid.uuid4().hex[:10]}")


async def test_a_source_topic_pre_created_with_another_partition_count_is_followed_and_nothing_dead_lettered(
    broker, worker_env, publisher, watch, start_worker
) -> None:
    topics = fresh_namespace()
    await ensure_topics(broker.bootstrap_servers, [topics.patients], 2)  # the early integration's topic
    anchor = time.time()
    watcher = await watch(topics.due, topics.dlq)
    scheduler = await start_worker("scheduler", CYCLECARE_TOPIC_NAMESPACE=topics.namespace, **clock_env(anchor))

    clock = SimulatedClock(START, SPEED, anchor)
    today = clock.now().astimezone(ZoneInfo(LA)).date()
    for n in range(6):
        await publisher.send(topics.patients, f"p-{n}", patient(n))
        await publisher.send(topics.treatments, f"p-{n}", treatment(n, today - timedelta(days=3)))

    def fired() -> set[str]:
        return {e.patient_id for e in watcher.events(topics.due) if isinstance(e, DueEvent)}

    await eventually(lambda: fired() == {f"p-{n}" for n in range(6)}, 60, "a due event for every patient")
    assert watcher.raw(topics.dlq) == []
    counts = await partition_counts(broker.bootstrap_servers)
    assert counts[topics.treatments] == 2  # created by the worker to match
    assert counts[f"{topics.namespace}-scheduler-schedules-changelog"] == 2
    assert "get 2 partitions (CYCLECARE_PARTITIONS=4)" in scheduler.output()


async def test_source_topics_that_disagree_stop_the_worker_with_one_line_naming_them_and_the_fix(
    broker, worker_env, tmp_path: Path
) -> None:
    topics = fresh_namespace()
    await ensure_topics(broker.bootstrap_servers, [topics.patients], 2)
    await ensure_topics(broker.bootstrap_servers, [topics.treatments], 3)
    worker = WorkerProcess("scheduler", worker_env | {"CYCLECARE_TOPIC_NAMESPACE": topics.namespace}, tmp_path).start()
    try:
        await eventually(lambda: worker._process.poll() is not None, 60, "the worker to refuse to start")
    finally:
        worker.kill()
    assert worker._process.returncode != 0
    refusal = [line for line in worker.output().splitlines() if "cannot start" in line]
    assert len(refusal) == 1
    assert f"{topics.patients}=2" in refusal[0] and f"{topics.treatments}=3" in refusal[0]
    assert "fix:" in refusal[0]
    counts = await partition_counts(broker.bootstrap_servers)
    assert f"{topics.namespace}-scheduler-schedules-changelog" not in counts  # it never subscribed
