"""The portal's projection consumer on the embedded broker: rows are written before the
offsets are committed, a failed write is read again, a bad record goes to the DLQ, and
`cyclecare portal rebuild` replays the topics into an empty read model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.cli import _rebuild
from services.portal.consumer import ProjectionConsumer, group_id
from services.portal.db import database_url, make_engine, migrate
from services.portal.store import Projection, ReadModel
from shared.broker import EmbeddedBroker
from shared.config import load_settings
from shared.events import Event
from shared.topics import Topics
from tests.support.kafka import Publisher, TopicWatcher, eventually
from tests.support.portal_events import acked, alert, enrolled, headache_checkin, treated

pytestmark = pytest.mark.integration
CLINIC = ["rocklin"]


class FailingOnce(Projection):
    """The database refuses the first write (a failover, a full disk)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.failures = 1

    async def apply(self, events: Sequence[Event]) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        return await super().apply(events)


@pytest.fixture
def env(broker: EmbeddedBroker, topics: Topics, tmp_path: Path) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
            "CYCLECARE_DATA_DIR": str(tmp_path / "data"), "CYCLECARE_PARTITIONS": "4"}


@pytest.fixture
async def engine(env: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url(load_settings(env)))
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def producer(broker: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    yield producer
    await producer.stop()


async def project_until_idle(broker: EmbeddedBroker, topics: Topics, projection: Projection,
                             producer: AIOKafkaProducer, generation: str = "1") -> int:
    consumer = ProjectionConsumer(broker.bootstrap_servers, topics, group_id(topics, generation), projection, producer)
    await consumer.start()
    try:
        await consumer.run(idle_exit=2.0)
    finally:
        await consumer.stop()
    return consumer.projected


async def publish_story(publisher: Publisher, topics: Topics) -> None:
    await publisher.send(topics.patients, "p1", enrolled())
    await publisher.send(topics.treatments, "p1", treated())
    await publisher.send(topics.checkins, "p1", headache_checkin(9, 1))
    await publisher.send(topics.alerts, "p1", alert())
    await publisher.send(topics.alert_actions, "p1", acked())


async def test_events_on_the_topics_become_rows_and_a_restart_reads_nothing_twice(
        broker, topics, publisher, producer, engine) -> None:
    await publish_story(publisher, topics)
    assert await project_until_idle(broker, topics, Projection(engine), producer) == 5
    shown = await ReadModel(engine).alert(CLINIC, "a1")
    assert shown is not None and shown.acknowledged_by == "lee"
    # offsets were committed: the same group starts after them
    assert await project_until_idle(broker, topics, Projection(engine), producer) == 0


async def test_a_failed_write_is_read_again_and_nothing_is_lost(broker, topics, publisher, producer, engine) -> None:
    await publish_story(publisher, topics)
    flaky = FailingOnce(engine)
    assert await project_until_idle(broker, topics, flaky, producer) == 5
    assert flaky.failures == 0 and (await ReadModel(engine).counts())["alerts"] == 1


async def test_a_record_that_is_not_an_event_goes_to_the_dlq_and_the_next_is_projected(
        broker, topics, publisher, producer, engine, watch) -> None:
    dlq = await watch(topics.dlq)
    await publisher.send(topics.alerts, "p1", b"{not json")
    await publisher.send(topics.alerts, "p1", alert())
    assert await project_until_idle(broker, topics, Projection(engine), producer) == 1
    [dead] = await eventually(lambda: dlq.raw(topics.dlq), what="the dead letter")
    assert dead["service"] == "portal" and dead["topic"] == topics.alerts and "not JSON" in dead["error"]


async def test_rebuild_replays_every_topic_into_an_empty_read_model(broker, topics, publisher, producer, engine, env) -> None:
    await publish_story(publisher, topics)
    await project_until_idle(broker, topics, Projection(engine), producer)
    before = await ReadModel(engine).counts()
    await _rebuild(load_settings(env), idle=2.0)
    assert await ReadModel(engine).counts() == before
