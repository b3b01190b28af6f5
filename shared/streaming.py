"""Faust plumbing shared by the three services: the app factory, decoding with a
dead-letter topic, the HTTP server (webhooks, health, readiness, metrics), and the worker
entry point. Services stay free of this detail.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.exceptions import NotReady
from faust.types import TP
from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import metrics
from shared.broker import ensure_topics, ping
from shared.codec import DecodeError, capped, dead_letter, dead_letter_key, decode_record, encode
from shared.config import Settings
from shared.end_offsets import trusted_end_offsets
from shared.endpoints import not_found_middleware, parse_urls
from shared.events import Event
from shared.fetch_wait import FetchWait, adapt
from shared.failures import RetryHooks, Stall, Stalls, describe, dlq_reason, until_handled
from shared.logs import configure_logging
from shared.topics import Topics

log = logging.getLogger(__name__)
# Faust queues a table's changelog writes in its producer's buffer and, once more than
# ``max_messages`` (100 by default) wait there, stops handing consumed records to every agent
# until the buffer is back to 100 (``Conductor``: ``wait_until_ebb``). A scheduler batch
# wrote thousands of keys at once, so each batch stalled the worker's consumer for up to a
# second: fire commands reached the agent 1 to 5 s after they were sent (issue 16). Those
# writes now go past the buffer (``PartitionedTable.put_all``); the bound stays for any other
# table written in a burst. The buffer only holds writes already made in memory; Faust
# flushes it before every commit.
PRODUCER_BUFFER_MAX = 50_000
# mode names a service's logger after the module that subclasses it, which would file
# Faust's own "[^--Consumer]: Starting..." lines under cyclecare; keep them Faust's (WARNING+).
_FAUST_LOG = logging.getLogger("faust.cyclecare")


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    logger = _FAUST_LOG

    def _create_worker_consumer(self, transport):  # noqa: ANN001, ANN202
        consumer = super()._create_worker_consumer(transport)
        # faust-streaming fixes the fetch wait at 1500 ms. A broker that holds a fetch for
        # part of that wait (the embedded one does) then adds up to 1.5 s to every hop,
        # which an urgent alert cannot afford; Apache Kafka answers as soon as data arrives.
        consumer._fetch_max_wait_ms = self.app.conf.cyclecare_settings.fetch_max_wait_ms  # noqa: SLF001
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        # quiet consumers fetch less often (shared.fetch_wait): most of an idle pipeline's CPU
        adapt(self._consumer._fetcher, FetchWait.from_settings(self.app.conf.cyclecare_settings))  # noqa: SLF001

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """The end offsets a table recovers up to (faust's ``Recovery`` asks for them at
        every assignment): ListOffsets raised to the high watermark a Fetch reports, since
        the embedded broker's ListOffsets can point inside a partition's last batch
        (``shared.end_offsets``). Inside a Kafka transaction faust's own answer stands."""
        listed = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return listed
        return await trusted_end_offsets(self._ensure_consumer()._client, listed)  # noqa: SLF001


class _Consumer(aiokafka_driver.Consumer):
    logger = _FAUST_LOG

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(aiokafka_driver.Transport):
    Consumer = _Consumer


class _App(faust.App):
    logger = _FAUST_LOG

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)


PRODUCER_BATCH_BYTES = 262_144  # aiokafka's default is 16 KB (issue 16; see Runtime)
PRODUCER_REQUEST_BYTES = 4_000_000  # its default is 1 MB
Record = tuple[str, bytes, bytes, int | None]  # topic, key, value, partition (None: the key's)

# The cyclic collector's thresholds in a worker (Python's are 700, 10, 10). A batch keeps
# thousands of objects alive until its flush; collected every 700 allocations they survived
# into the oldest generation, and a scheduler holding 100,000 patients ran a full collection
# (108 ms each) 27 times in 40 s of catch-up, 10% of its CPU. Objects freed by reference
# counting are freed at once either way; only cycles wait longer (issue 16).
GC_THRESHOLDS = (50_000, 20, 100)


class PartitionedTable(faust.Table):
    """A table written by batches: each write names its changelog partition and returns the
    broker's acknowledgement. Faust takes the partition from the current event, which inside
    a batch (``take``) is not the record a write belongs to: a write there would land in
    another key's partition and be recovered by the wrong worker."""

    # Runtime.send_all, set by Runtime.table: straight to the aiokafka producer Faust made
    send_all: Callable[[Iterable[Record]], Awaitable[list[Awaitable[Any]]]] | None = None

    async def put_all(self, writes: Iterable[tuple[int, Any, Any]]) -> list[Awaitable[Any]]:
        """Write each (partition, key, value): the changelog records go to the producer as
        whole batches, then the values are kept in memory; returns the acknowledgements to
        await before the batch's records are. Faust's own path (``self[key] = value``) sends
        each record from its producer buffer, a task and an event-loop turn a record (issue
        16). The records are the ones Faust writes, same key and value bytes, so a recovery
        reads them back the same way."""
        assert self.send_all is not None, "a PartitionedTable is made by Runtime.table"
        topic = self.changelog_topic
        name, writes = topic.get_topic_name(), list(writes)
        acks = await self.send_all([(name, topic.prepare_key(key, None)[0], topic.prepare_value(value, None)[0], partition)
                                    for partition, key, value in writes])
        for _, key, value in writes:
            self.data[key] = value
        return acks


class Runtime:
    """One service's Faust app with its topics, DLQ and HTTP routes."""

    def __init__(self, service: str, settings: Settings, *, producer_linger: float = 0.0) -> None:
        """``producer_linger``: seconds the producer waits to fill a request (Faust flushes it
        before every offset commit, so a linger keeps at-least-once)."""
        self.service = service
        self.settings = settings
        self.topics = Topics(settings.topic_namespace)
        (settings.data_dir / service).mkdir(parents=True, exist_ok=True)
        self.app = _App(
            f"{settings.topic_namespace}-{service}",
            broker=settings.broker_url,
            store=settings.table_store,
            datadir=str(settings.data_dir / service),
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            table_standby_replicas=0,
            web_enabled=False,
            broker_rebalance_timeout=settings.rebalance_timeout,
            broker_session_timeout=max(10.0, min(settings.rebalance_timeout, 60.0)),
            broker_heartbeat_interval=min(3.0, settings.rebalance_timeout / 3),
            broker_commit_interval=1.0,
            producer_linger=producer_linger,
            # A scheduler flush hands the producer thousands of 1.4 KB schedules at once: in
            # 16 KB batches and 1 MB requests (one in flight per broker) the worker waited a
            # quarter of a catch-up for the answers. Full batches only form when that much is
            # queued, so nothing waits longer for them; Kafka accepts 1 MB batches by default.
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            producer_max_request_size=PRODUCER_REQUEST_BYTES,
            stream_wait_empty=False,
            consumer_auto_offset_reset="earliest",
        )
        self.app.conf.cyclecare_settings = settings
        self.app.producer.buffer.max_messages = PRODUCER_BUFFER_MAX
        self.stalls = Stalls(stuck_after=settings.stuck_after_seconds)
        self.broker_error: str | None = None  # set by the broker probe while Kafka does not answer
        self.routes = web.RouteTableDef()
        self._topic_cache: dict[str, faust.TopicT] = {}
        self._add_health_routes()
        self.app.service(_HttpServer(self))
        self.app.service(_BrokerProbe(self))

    # --- topics -------------------------------------------------------------------

    def topic(self, name: str) -> faust.TopicT:
        if name not in self._topic_cache:
            self._topic_cache[name] = self.app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.settings.partitions,
            )
        return self._topic_cache[name]

    def table(self, name: str, *, partitioned: bool = False, raw_values: bool = False) -> faust.TableT:
        """A table of JSON values keyed by strings, co-partitioned with the topics; with
        ``partitioned``, a :class:`PartitionedTable` (writes from a batch); with
        ``raw_values``, values are bytes the service encodes itself, kept and logged as they are."""
        schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="raw" if raw_values else "json")
        value_type = bytes if raw_values else None  # Faust picks the changelog's serializer from the value type
        if not partitioned:
            return self.app.Table(name, default=None, schema=schema, value_type=value_type,
                                  partitions=self.settings.partitions)
        table = PartitionedTable(self.app, name=name, default=None, beacon=self.app.tables.beacon, schema=schema,
                                 value_type=value_type, partitions=self.settings.partitions)
        table.send_all = self.send_all
        return self.app.tables.add(table)

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> Awaitable[Any]:
        """Hand one record to the producer; returns the broker's acknowledgement to await.

        Straight to the aiokafka producer Faust made (the same one, its settings, batches and
        default partitioner) rather than through ``Topic.send`` or Faust's producer wrapper:
        measured in a scheduler flush, a send there cost 150 to 200 µs of the worker's CPU,
        because each one gave the event loop a turn (2.6 turns a send), and every turn sent a
        produce request of a few records; straight to aiokafka it is 19 to 40 µs and the
        producer fills its batches (issue 16)."""
        producer = await self._producer()
        return await producer.send(topic, value, key=key, partition=partition)

    async def send_all(self, records: Iterable[Record]) -> list[Awaitable[Any]]:
        """Hand many records (topic, key, value, partition or None for the key's) to the
        producer as whole batches, one or more per topic and partition, in their order;
        returns the acknowledgements to await (one per batch). For a scheduler flush of
        thousands: a record sent one by one costs a coroutine, a future and a place in the
        producer's queue, twice per fired patient (issue 16)."""
        producer = await self._producer()
        by_partition: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        known: set[str] = set()  # topics whose metadata the producer has
        for topic, key, value, partition in records:
            if partition is None:
                if topic not in known:
                    await producer.partitions_for(topic)  # the topic's metadata, as send would wait for it
                    known.add(topic)
                partition = self.app.producer.key_partition(topic, key).partition
            by_partition.setdefault((topic, partition), []).append((key, value))
        acks: list[Awaitable[Any]] = []
        for (topic, partition), pairs in by_partition.items():
            batch = producer.create_batch()
            for key, value in pairs:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # a batch takes its first record whatever its size
            if batch.record_count():
                acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks

    async def _producer(self) -> Any:
        """The aiokafka producer Faust made, started first if an early HTTP call comes before it."""
        try:
            return self.app.producer._ensure_producer()  # noqa: SLF001 - faust's own accessor
        except NotReady:
            await self.app.maybe_start_producer()
            return self.app.producer._ensure_producer()  # noqa: SLF001

    async def publish(self, topic: str, key: str, event: Event, *, wait: bool = False) -> Awaitable[Any]:
        """Send ``event``; with ``wait``, return once the broker acknowledged it, else return
        the acknowledgement to await (many sends, then one wait, as a Bundle does)."""
        future = await self.send(topic, key.encode(), encode(event))
        if wait:
            await future
        return future

    async def emit(self, key: str, event: Event, *, wait: bool = False) -> None:
        """Publish ``event`` to its topic, found by its type (``shared.topics.TOPIC_OF``)."""
        await self.publish(self.topics.of(event), key, event, wait=wait)

    # --- consuming ----------------------------------------------------------------

    async def dead_letter(self, record: Any, error: str) -> None:
        message = record.message
        metrics.FAILED.labels(self.service, message.topic).inc()
        metrics.DLQ_RECORDS.labels(dlq_reason(error)).inc()
        log.warning(
            "dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, capped(error, 500)
        )
        value = dead_letter(
            record.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
            service=self.service,
        )
        await self.send(self.topics.dlq, dead_letter_key(record.key), value)

    async def unpack(self, record: Any) -> tuple[str, Event] | None:
        """The key and event of a consumed record, or ``None`` once it is dead-lettered:
        everything before the handler (size, key, JSON, depth, validation) fails here with
        its reason, never inside the agent."""
        try:
            return decode_record(record.key, record.value)
        except DecodeError as exc:
            await self.until_handled(record, lambda: self.dead_letter(record, str(exc)))
            return None

    async def handle(self, record: Any, handler: Callable[[str, Event], Awaitable[None]], name: str) -> None:
        """Decode one record and run ``handler`` on it. A record that is not an event is
        dead-lettered; a handler failure is classified (see :meth:`until_handled`)."""
        message = record.message
        metrics.child(metrics.CONSUMED, self.service, message.topic).inc()
        unpacked = await self.unpack(record)
        if unpacked is None:
            return
        key, event = unpacked
        poison = await self.until_handled(record, lambda: handler(key, event))
        if poison is not None:
            log.warning("%s: %s %s is poison: %s", name, event.type, event.event_id, type(poison).__name__)
            await self.until_handled(record, lambda: self.dead_letter(record, describe(poison)))

    # --- handler failures (rules in shared/failures.py) -----------------------------

    async def until_handled(self, record: Any, attempt: Callable[[], Awaitable[None]]) -> BaseException | None:
        """Run ``attempt`` until it succeeds, retrying infrastructure faults with backoff
        without acknowledging ``record``; returns the exception when it is poison."""
        message = record.message
        hooks = RetryHooks(on_stuck=self._partition_stuck, on_cleared=self._partition_cleared)

        async def counted() -> None:
            try:
                await attempt()
            except Exception:
                metrics.HANDLER_RETRIES.labels(self.service, message.topic).inc()
                raise

        return await until_handled(counted, (message.topic, message.partition, message.offset), self.stalls, hooks=hooks)

    def _partition_stuck(self, stall: Stall) -> None:
        metrics.PARTITION_STUCK.labels(self.service, stall.topic, str(stall.partition)).set(1)
        self._consumer_call("pause_partitions", stall)

    def _partition_cleared(self, stall: Stall) -> None:
        if self.stalls.partition_failing(stall.topic, stall.partition):
            return
        metrics.PARTITION_STUCK.labels(self.service, stall.topic, str(stall.partition)).set(0)
        self._consumer_call("resume_partitions", stall)

    def _consumer_call(self, method: str, stall: Stall) -> None:
        """Stop (or resume) fetching a stuck partition: records behind it stay in Kafka."""
        try:
            getattr(self.app.consumer, method)({TP(stall.topic, stall.partition)})
        except Exception as exc:  # noqa: BLE001 - consumer gone while stopping: nothing to pause
            log.debug("%s(%s[%s]) failed: %s", method, stall.topic, stall.partition, exc)

    def agent(self, topic: str, handler: Callable[[str, Event], Awaitable[None]], name: str) -> None:
        """Run ``handler`` on every decoded event of ``topic``, one at a time. A record is
        acknowledged once handled (or dead-lettered), never because the agent was stopped or
        its partition revoked while a retry was under way (faust's own acking would)."""

        async def consume(stream: faust.StreamT) -> None:
            manual = stream.noack()
            async for record in manual.events():
                await self.handle(record, handler, name)
                await manual.ack(record)

        consume.__name__ = name
        consume.__qualname__ = f"{self.service}.{name}"
        self.app.agent(self.topic(topic), name=name, concurrency=1)(consume)

    # --- readiness ----------------------------------------------------------------

    def ready(self) -> bool:
        """Assigned, tables recovered, not rebalancing: the worker's own state is usable (the
        scheduler ticks only then). ``/readyz`` asks more: :meth:`not_ready_cause`."""
        return self._assignment_cause() is None

    def not_ready_cause(self) -> str | None:
        """Why this worker is not ready (None when it is): what ``/readyz`` answers. A stuck
        partition or an unreachable broker makes it unready too, though the partitions that
        still move keep being processed."""
        if self.broker_error:
            return f"Kafka unreachable: {self.broker_error}"
        if cause := self._assignment_cause():
            return cause
        if stuck := self.stalls.cause():
            return f"stuck: {stuck}"
        return None

    def _assignment_cause(self) -> str | None:
        app = self.app
        try:
            assigned = bool(app.consumer.assignment())
            # ``completed`` is set once, at the first recovery; ``in_recovery`` covers later ones
            recovered = app.tables.recovery.completed.is_set() and not app.in_recovery
        except Exception:
            return "starting"
        if not (app.started and assigned):
            return "no partitions assigned yet"
        if not recovered:
            return "recovering tables"
        if app.rebalancing:
            return "rebalancing"
        return None

    def _add_health_routes(self) -> None:
        @self.routes.get("/healthz")
        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "alive", "service": self.service})

        @self.routes.get("/readyz")
        async def readyz(request: web.Request) -> web.Response:
            cause = self.not_ready_cause()
            metrics.READY.labels(self.service).set(0 if cause else 1)
            body = {"ready": cause is None, "service": self.service} | ({"cause": cause} if cause else {})
            return web.json_response(body, status=503 if cause else 200)

        @self.routes.get("/metrics")
        async def prometheus(request: web.Request) -> web.Response:
            metrics.READY.labels(self.service).set(0 if self.not_ready_cause() else 1)
            return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- running ------------------------------------------------------------------

    def run_worker(self) -> None:
        configure_logging(self.settings.log_format, self.settings.log_level)
        gc.set_threshold(*GC_THRESHOLDS)
        # Before Faust subscribes: a broker that creates topics on first use would give
        # them its default partition count and break co-partitioning with the tables.
        asyncio.run(create_topics(self.settings))
        worker = faust.Worker(
            self.app,
            loglevel=self.settings.log_level,
            quiet=True,
            override_logging=False,
        )
        worker.spinner = None  # a terminal progress spinner: noise in `cyclecare run` and in logs
        worker.execute_from_commandline()


class _HttpServer(Service):
    logger = _FAUST_LOG

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._runner: web.AppRunner | None = None
        super().__init__()

    async def on_start(self) -> None:
        settings = self.runtime.settings
        hint = not_found_middleware(self.runtime.service, parse_urls(settings.service_urls))  # a wrong path names the right service
        web_app = web.Application(middlewares=[hint])
        web_app.add_routes(self.runtime.routes)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.http_host, settings.http_port)
        await site.start()
        log.info("%s: HTTP on %s:%s", self.runtime.service, settings.http_host, settings.http_port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class _BrokerProbe(Service):
    """Asks Kafka for metadata every few seconds, so that a worker whose broker is gone
    reports not ready (the consumer keeps its assignment meanwhile) instead of looking fine."""

    interval = 2.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        super().__init__()

    @Service.task
    async def _probe(self) -> None:
        from aiokafka.client import AIOKafkaClient

        client = AIOKafkaClient(bootstrap_servers=self.runtime.settings.bootstrap_servers.split(","),
                                request_timeout_ms=5000, retry_backoff_ms=500)
        booted = False
        try:
            while not self.should_stop:
                try:
                    if not booted:
                        await asyncio.wait_for(client.bootstrap(), 10)
                        booted = True
                    await asyncio.wait_for(ping(client), 5)  # metadata for no topics: every 2 s, keep it light
                    self._set(None)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure means: not reachable now
                    self._set(f"{type(exc).__name__}")
                await self.sleep(self.interval)
        finally:
            await client.close()

    def _set(self, error: str | None) -> None:
        if error != self.runtime.broker_error:
            (log.warning if error else log.info)("%s: Kafka %s", self.runtime.service, f"unreachable ({error})" if error else "reachable")
        self.runtime.broker_error = error
        metrics.BROKER_REACHABLE.labels(self.runtime.service).set(0 if error else 1)


async def create_topics(settings: Settings) -> None:
    """Create every cyclecare topic that is missing (Kafka clusters often forbid auto-creation)."""
    await ensure_topics(
        settings.bootstrap_servers,
        Topics(settings.topic_namespace).all(),
        settings.partitions,
        settings.replication_factor,
    )

