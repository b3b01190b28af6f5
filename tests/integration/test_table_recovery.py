"""A Faust table recovered by a restarted worker on the real broker holds every key, though
its changelog was produced in batches of several records (``shared.end_offsets``: the
embedded broker's ListOffsets points at the first record of a partition's last batch)."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from shared.broker import EmbeddedBroker, ensure_topics
from shared.topics import Topics
from tests.support import table_worker
from tests.support.kafka import eventually, eventually_async
from tests.support.workers import WorkerProcess

KEYS_PER_RECORD = 10  # written in one go: one produce batch of several changelog records
RECORDS_PER_PARTITION = 3
WORKER = "tests.support.table_worker"


def keys_of(round_: int, partition: int) -> list[str]:
    return [f"k{round_}-{partition}-{n}" for n in range(KEYS_PER_RECORD)]


async def table_keys(worker: WorkerProcess) -> list[str]:
    async with aiohttp.ClientSession() as session, session.get(f"{worker.url}/table") as response:
        return await response.json()


async def write_in_batches(broker: EmbeddedBroker, topic: str, partitions: int) -> list[str]:
    """Every partition gets several records, each naming KEYS_PER_RECORD keys to write."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    written: list[str] = []
    try:
        for round_ in range(RECORDS_PER_PARTITION):
            for partition in range(partitions):
                keys = keys_of(round_, partition)
                await producer.send_and_wait(topic, json.dumps(keys).encode(), key=b"w", partition=partition)
                written += keys
    finally:
        await producer.stop()
    return sorted(written)


async def test_a_restarted_worker_recovers_every_key_of_a_table_written_in_multi_record_batches(
        broker, topics: Topics, worker_env, start_worker, watch):
    writes, partitions = topics.name(table_worker.WRITES), int(worker_env["CYCLECARE_PARTITIONS"])
    await ensure_topics(broker.bootstrap_servers, [writes], partitions)
    first = await start_worker(table_worker.SERVICE, module=WORKER)
    changelog = await watch(table_worker.changelog(topics.namespace))

    written = await write_in_batches(broker, writes, partitions)
    await eventually(lambda: len(changelog.records) >= len(written), timeout=60,
                     what="every table write on the changelog (read back, not counted by end offsets)")
    assert await table_keys(first) == written
    first.stop()

    second = await start_worker(table_worker.SERVICE, module=WORKER)

    async def lost() -> list[str]:
        return sorted(set(written) - set(await table_keys(second)))

    try:
        await eventually_async(lost, lambda keys: not keys, timeout=30, what="the restarted worker to hold every key")
    except AssertionError:
        pytest.fail(f"the restarted worker's table lacks {len(await lost())} of {len(written)} keys: {await lost()}")
