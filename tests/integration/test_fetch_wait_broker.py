"""The quiet fetch wait against the real embedded broker: ``auto`` finds out that this broker
holds waiting fetches and keeps the short wait; told the broker answers at once, a quiet
consumer waits longer until a record comes (shared.fetch_wait)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from shared.broker import EMBEDDED_CLUSTER_ID, EmbeddedBroker
from shared.fetch_wait import FetchWait, adapt, cluster_id
from shared.topics import Topics
from tests.support.kafka import Publisher, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def consumer(broker: EmbeddedBroker, topics: Topics) -> AsyncIterator[AIOKafkaConsumer]:
    reader = AIOKafkaConsumer(topics.patients, bootstrap_servers=broker.bootstrap_servers, group_id=f"{topics.namespace}-fw",
                              auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await reader.start()
    yield reader
    await reader.stop()


def fetch_wait_of(consumer: AIOKafkaConsumer) -> int:
    return consumer._fetcher._fetch_max_wait_ms  # noqa: SLF001 - the wait aiokafka puts in its next request


async def test_the_embedded_broker_names_its_cluster_so_consumers_can_tell_it_holds_fetches(consumer: AIOKafkaConsumer) -> None:
    assert await cluster_id(consumer._client) == EMBEDDED_CLUSTER_ID  # noqa: SLF001


async def test_on_the_embedded_broker_auto_keeps_a_quiet_consumer_on_the_short_wait(consumer: AIOKafkaConsumer) -> None:
    policy = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=0.5)
    adapt(consumer._fetcher, policy)  # noqa: SLF001
    await eventually(lambda: policy.answered_at_once is not None, 10, "the broker to be asked")
    assert policy.answered_at_once is False
    quiet_since = policy.clock()
    await eventually(lambda: policy.clock() - quiet_since > 1.5, 5, "a quiet spell three times the quiet time")
    assert fetch_wait_of(consumer) == 100


async def test_told_the_broker_answers_at_once_a_quiet_consumer_waits_longer_until_a_record_comes(
        consumer: AIOKafkaConsumer, publisher: Publisher, topics: Topics) -> None:
    adapt(consumer._fetcher, FetchWait(busy_ms=100, idle_ms=500, idle_after_s=0.5, answered_at_once=True))  # noqa: SLF001
    await eventually(lambda: fetch_wait_of(consumer) == 500, 10, "the quiet wait")

    await publisher.send(topics.patients, "p1", b"{}")
    got = await consumer.getmany(timeout_ms=10_000)

    assert sum(len(records) for records in got.values()) == 1
    await eventually(lambda: fetch_wait_of(consumer) == 100, 5, "the short wait back after the record")
