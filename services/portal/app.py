"""``cyclecare worker portal``: migrations, the projection consumer and the web server in
one process. Kafka is read with a plain consumer (batches, manual commits) rather than
Faust: the portal keeps no Faust tables, its state is the SQL read model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import fetch_wait, metrics
from shared.clinics import Directory
from shared.clock import Clock
from shared.codec import encode
from shared.config import Settings
from shared.events import Event
from shared.failures import Stalls
from shared.logs import configure_logging
from shared.streaming import create_topics
from shared.topics import Topics
from services.portal.auth import Accounts
from services.portal.consumer import SERVICE, ProjectionConsumer, group_id
from services.portal.db import database_url, make_engine, migrate
from services.portal.fhir.api import FhirApi
from services.portal.fhir.sink import HttpFhirSink, Pusher
from services.portal.fhir.store import FhirStore
from services.portal.store import Projection, ReadModel, get_meta
from services.portal.web import Portal, make_app

log = logging.getLogger(__name__)


def health_routes(consumer: ProjectionConsumer) -> list[web.AbstractRouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": SERVICE})

    async def readyz(request: web.Request) -> web.Response:
        cause = consumer.not_ready_cause()
        metrics.READY.labels(SERVICE).set(0 if cause else 1)
        body = {"ready": cause is None, "service": SERVICE, "projected": consumer.projected} | ({"cause": cause} if cause else {})
        return web.json_response(body, status=503 if cause else 200)

    async def prometheus(request: web.Request) -> web.Response:
        metrics.READY.labels(SERVICE).set(1 if consumer.ready() else 0)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", prometheus)]


async def serve(settings: Settings, clinics: Directory, clock: Clock, stop: asyncio.Event) -> None:
    topics = Topics(settings.topic_namespace)
    engine = make_engine(database_url(settings))
    await migrate(engine)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    generation = await get_meta(engine, "generation", "1")
    projection = Projection(engine, fhir_outbox=bool(settings.fhir_sink_url))
    consumer = ProjectionConsumer(settings.bootstrap_servers, topics, group_id(topics, generation), projection,
                                  producer, settings.fetch_max_wait_ms, Stalls(stuck_after=settings.stuck_after_seconds))
    await consumer.start()
    consumer.fetch_less_when_quiet(fetch_wait.FetchWait.from_settings(settings))

    async def publish(key: str, event: Event) -> None:
        await producer.send_and_wait(topics.of(event), encode(event), key=key.encode())

    portal = Portal(ReadModel(engine), Accounts(engine), publish, clinics, clock,
                    secure_cookies=settings.portal_url.startswith("https://"))
    fhir = FhirApi(FhirStore(engine), settings.api_token)
    runner = web.AppRunner(make_app(portal, health_routes(consumer) + fhir.routes()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    log.info("portal: HTTP on %s:%s, projecting as consumer group generation %s", settings.http_host, settings.http_port, generation)
    projecting = asyncio.create_task(consumer.run())
    stopping = asyncio.create_task(stop.wait())
    sink = HttpFhirSink(settings.fhir_sink_url, settings.fhir_sink_token) if settings.fhir_sink_url else None
    pushing = asyncio.create_task(Pusher(engine, sink).run(stop)) if sink else None
    try:
        await asyncio.wait({projecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if projecting.done():
            projecting.result()  # re-raise what stopped the projection
    finally:
        for task in (projecting, stopping, *([pushing] if pushing else [])):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if sink:
            await sink.close()
        await runner.cleanup()
        await consumer.stop()
        await producer.stop()
        await engine.dispose()


def run_worker(settings: Settings, clinics: Directory, clock: Clock) -> None:
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        await create_topics(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, clinics, clock, stop)

    asyncio.run(main())
