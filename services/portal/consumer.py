"""The projection's Kafka edge: read the contract topics in batches, write each batch in
one transaction, and only then commit the offsets. A batch that fails to write is read
again (nothing acknowledged); a record that is not an event goes to the dead-letter topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from shared import fetch_wait, metrics
from shared.codec import DecodeError, dead_letter, decode
from shared.events import Event
from shared.failures import Backoff, Stall, Stalls, describe
from shared.topics import Topics
from services.portal.store import Projection

log = logging.getLogger(__name__)
SERVICE = "portal"
RETRY = Backoff(initial=0.4, cap=30.0)


def projected_topics(topics: Topics) -> list[str]:
    return [topics.patients, topics.treatments, topics.due, topics.deliveries, topics.checkins,
            topics.alerts, topics.alert_actions, topics.consent]


class ProjectionConsumer:
    def __init__(self, bootstrap: str, topics: Topics, group_id: str, projection: Projection,
                 producer: AIOKafkaProducer, fetch_max_wait_ms: int = 100, stalls: Stalls | None = None) -> None:
        self.topics = topics
        self.projection = projection
        self.producer = producer
        self.consumer = AIOKafkaConsumer(
            *projected_topics(topics), bootstrap_servers=bootstrap, group_id=group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms,
            max_poll_records=2000, metadata_max_age_ms=5000,
        )
        self.projected = 0
        self.stalls = stalls or Stalls()
        self._failing: Stall | None = None  # the batch being read again, while the read model refuses it

    async def start(self) -> None:
        await self.consumer.start()

    def fetch_less_when_quiet(self, policy: fetch_wait.FetchWait) -> None:
        """Once started: after 2 s without records, fetch less often (shared.fetch_wait)."""
        fetch_wait.adapt(self.consumer._fetcher, policy)  # noqa: SLF001

    async def stop(self) -> None:
        await self.consumer.stop()

    def ready(self) -> bool:
        return self.not_ready_cause() is None

    def not_ready_cause(self) -> str | None:
        """What ``/readyz`` answers: no partitions yet, or a batch the read model keeps refusing
        for longer than ``CYCLECARE_STUCK_AFTER_SECONDS`` (the database is down or locked)."""
        if not self.consumer.assignment():
            return "no partitions assigned yet"
        if stuck := self.stalls.cause():
            return f"stuck: {stuck}"
        return None

    async def run(self, idle_exit: float | None = None) -> None:
        """Project until cancelled, or until nothing came for ``idle_exit`` seconds (a rebuild)."""
        loop = asyncio.get_running_loop()
        last_record = loop.time()
        while idle_exit is None or loop.time() - last_record < idle_exit or not self.consumer.assignment():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=2000)
            if batch:
                last_record = loop.time()
                await self.project(batch)

    async def project(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        events: list[Event] = []
        for records in batch.values():
            for record in records:
                metrics.CONSUMED.labels(SERVICE, record.topic).inc()
                try:
                    events.append(decode(record.value))
                except DecodeError as exc:
                    await self._dead_letter(record, str(exc))
        try:
            self.projected += await self.projection.apply(events)
        except Exception as exc:  # noqa: BLE001 - nothing is committed: the batch is read again
            await self._retry_later(batch, exc)
            return
        self._cleared()
        try:
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        except KafkaError as exc:  # a rebalance took the partitions: their next owner reads the batch again
            log.warning("portal: offsets not committed (%s); the batch will be read again, which changes nothing", type(exc).__name__)

    async def _retry_later(self, batch: dict[TopicPartition, list[ConsumerRecord]], exc: Exception) -> None:
        if self._failing is None:
            log.exception("portal: writing %s records failed; reading them again", sum(len(r) for r in batch.values()))
        # one stall for as long as the read model refuses: the batch's first record names it
        where = self._failing or min((records[0] for records in batch.values()), key=lambda r: (r.topic, r.partition, r.offset))
        self._failing = self.stalls.failed(where.topic, where.partition, where.offset, describe(exc))
        stuck = self.stalls.is_stuck(self._failing)
        metrics.PARTITION_STUCK.labels(SERVICE, self._failing.topic, str(self._failing.partition)).set(1 if stuck else 0)
        for tp, records in batch.items():
            self.consumer.seek(tp, records[0].offset)
        await asyncio.sleep(RETRY.delay(self._failing.attempts))

    def _cleared(self) -> None:
        if self._failing is None:
            return
        stall, self._failing = self._failing, None
        self.stalls.cleared(stall.topic, stall.partition, stall.offset)
        metrics.PARTITION_STUCK.labels(SERVICE, stall.topic, str(stall.partition)).set(0)
        log.warning("portal: the read model accepts writes again after %d attempts", stall.attempts)

    async def _dead_letter(self, record: ConsumerRecord, error: str) -> None:
        metrics.FAILED.labels(SERVICE, record.topic).inc()
        log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, error)
        value = dead_letter(record.value, topic=record.topic, partition=record.partition, offset=record.offset,
                            error=error, service=SERVICE)
        await self.producer.send_and_wait(self.topics.dlq, value, key=record.key)


def group_id(topics: Topics, generation: str) -> str:
    """A rebuild starts a new generation: a new consumer group that reads from the beginning."""
    return f"{topics.namespace}-portal-g{generation}"
