"""A real ``cyclecare worker portal`` whose database goes away: the batch it was writing is
not acknowledged, ``/readyz`` turns 503 naming the cause once it has failed for longer than
``CYCLECARE_STUCK_AFTER_SECONDS``, nothing goes to the dead-letter topic, and once the
database is back the worker catches up by itself and is ready again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import aiohttp
import asyncpg
import pytest

from shared.topics import Topics
from tests.support.kafka import Publisher, TopicWatcher, eventually_async
from tests.support.portal_events import alert, enrolled
from tests.support.postgres import ThrowawayPostgres, throwaway_postgres
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    yield from throwaway_postgres()


async def readiness(worker: WorkerProcess) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"{worker.url}/readyz") as response:
        return response.status, await response.json()


async def alert_ids(dsn: str) -> set[str]:
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return set()
    try:
        return {row["alert_id"] for row in await connection.fetch("SELECT alert_id FROM alerts")}
    finally:
        await connection.close()


async def test_a_portal_whose_database_is_down_reports_why_keeps_the_batch_and_catches_up(
    postgres: ThrowawayPostgres, start_worker: Callable, publisher: Publisher, topics: Topics, watch: Callable,
) -> None:
    name = f"portal_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres.url().replace("postgresql+asyncpg", "postgresql"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = postgres.url(name).replace("postgresql+asyncpg", "postgresql")
    dlq: TopicWatcher = await watch(topics.dlq)
    portal = await start_worker("portal", CYCLECARE_DATABASE_URL=postgres.url(name), CYCLECARE_STUCK_AFTER_SECONDS="1")

    await publisher.send(topics.patients, "p1", enrolled())
    await publisher.send(topics.alerts, "p1", alert("before"))
    await eventually_async(lambda: alert_ids(dsn), lambda ids: "before" in ids, what="the first alert in the read model")

    postgres.pause()
    await publisher.send(topics.alerts, "p1", alert("during"))
    status, body = await eventually_async(lambda: readiness(portal), lambda r: r[0] == 503, timeout=60,
                                          what="/readyz to report the stuck projection")
    assert body["ready"] is False and body["cause"].startswith("stuck: ")
    assert "failing for" in body["cause"] and topics.alerts in body["cause"]
    async with aiohttp.ClientSession() as http, http.get(f"{portal.url}/metrics") as response:
        assert 'cyclecare_partition_stuck{partition=' in await response.text()

    postgres.resume()
    await eventually_async(lambda: readiness(portal), lambda r: r[0] == 200, timeout=60, what="/readyz to recover")
    await eventually_async(lambda: alert_ids(dsn), lambda ids: {"before", "during"} <= ids, timeout=30,
                           what="the alert published while the database was down")
    assert dlq.records == [], "a database outage must never dead-letter a record"
    assert "hard to swallow" not in portal.output()
