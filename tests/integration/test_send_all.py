"""``Runtime.send_all`` on the real broker: records handed over as whole batches arrive in
the partition they name, or in the one ``Runtime.send`` would pick for their key, in the
order given, more of them than fit in one batch, and one larger than a batch among them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.broker import ensure_topics
from shared.config import load_settings
from shared.streaming import PRODUCER_BATCH_BYTES, Runtime
from shared.topics import Topics

RECORDS = 3000  # 1 KB each: far more than one producer batch (16 KB) per partition


async def read_back(bootstrap: str, topic: str, partitions: int, count: int) -> dict[int, list[tuple[bytes, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    await consumer.seek_to_beginning()
    seen: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(partitions)}
    try:
        async with asyncio.timeout(60):
            while sum(map(len, seen.values())) < count:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    seen[tp.partition] += [(record.key, record.value) for record in records]
    finally:
        await consumer.stop()
    return seen


async def test_records_sent_as_batches_arrive_in_their_partitions_in_order(broker, topics: Topics, worker_env):
    rt = Runtime("sendall", load_settings(worker_env))
    partitions = rt.settings.partitions
    named, keyed = topics.name("send-all-named"), topics.name("send-all-keyed")
    await ensure_topics(broker.bootstrap_servers, [named, keyed], partitions)
    try:
        records = [(named, b"k%d" % n, b"%06d" % n + b"x" * 1000, n % partitions) for n in range(RECORDS)]
        # one record larger than a whole producer batch, in the middle of partition 0's: sent alone, in its place
        records.insert(RECORDS // 2, (named, b"large", b"L" * (PRODUCER_BATCH_BYTES + 1000), 0))
        named_records = records[:RECORDS + 1]
        records += [(keyed, b"patient-%d" % n, b"%06d" % n, None) for n in range(50)]
        await asyncio.gather(*await rt.send_all(records))
        single = [await rt.send(keyed, b"patient-%d" % n, b"single") for n in range(50)]
        chosen = {(await ack).partition for ack in single}
        named_seen = await read_back(broker.bootstrap_servers, named, partitions, len(named_records))
        keyed_seen = await read_back(broker.bootstrap_servers, keyed, partitions, 100)
    finally:
        await rt.app.producer.stop()

    for partition, got in named_seen.items():
        assert got == [(key, value) for _, key, value, p in named_records if p == partition]
    where = {key: partition for partition, got in keyed_seen.items() for key, value in got if value != b"single"}
    single_where = {key: partition for partition, got in keyed_seen.items() for key, value in got if value == b"single"}
    assert where == single_where and len(where) == 50 and len(chosen) > 1
