"""Fixtures shared by the integration and end-to-end tiers.

One embedded broker serves the whole session; every test gets its own topic namespace
(and so its own consumer groups), so tests never see each other's events or rebalances.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from shared.broker import EmbeddedBroker, ensure_topics
from shared.topics import Topics
from tests.support.fake_twilio import FakeTwilio
from tests.support.kafka import Publisher, TopicWatcher
from tests.support.smtp import SmtpServer
from tests.support.workers import WorkerProcess

PARTITIONS = 4


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture
async def topics(broker: EmbeddedBroker) -> Topics:
    names = Topics(f"t{uuid.uuid4().hex[:10]}")
    await ensure_topics(broker.bootstrap_servers, names.all(), PARTITIONS)
    return names


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio().start()
    yield server
    await server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def publisher(broker: EmbeddedBroker) -> AsyncIterator[Publisher]:
    producer = await Publisher(broker.bootstrap_servers).start()
    yield producer
    await producer.stop()


@pytest.fixture
async def watch(broker: EmbeddedBroker) -> AsyncIterator[Callable[..., TopicWatcher]]:
    watchers: list[TopicWatcher] = []

    async def start(*names: str) -> TopicWatcher:
        watcher = await TopicWatcher(broker.bootstrap_servers, *names).start()
        watchers.append(watcher)
        return watcher

    yield start
    for watcher in watchers:
        await watcher.stop()


@pytest.fixture
def worker_env(broker: EmbeddedBroker, topics: Topics, fake_twilio: FakeTwilio, smtp: SmtpServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a worker in this test: its own namespace, fakes for providers."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
        "CYCLECARE_PARTITIONS": str(PARTITIONS),
        "CYCLECARE_REBALANCE_TIMEOUT": "1",
        "CYCLECARE_TICK_SECONDS": "0.2",
        "CYCLECARE_DATA_DIR": str(tmp_path / "data"),
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM": "+19165550100",
        "TWILIO_API_BASE": fake_twilio.url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_FROM": "cyclecare@clinic.test",
        "CYCLECARE_PUBLIC_URL": "https://cyclecare.clinic.test/hooks",
        "CYCLECARE_API_TOKEN": "test-api-token",
        "CYCLECARE_LOG_FORMAT": "json",
    }


@pytest.fixture
async def start_worker(worker_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    async def start(service: str, *, module: str | None = None, **extra_env: str) -> WorkerProcess:
        process = WorkerProcess(service, worker_env | extra_env, tmp_path, module=module).start()
        started.append(process)
        await process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()
