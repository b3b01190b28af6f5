"""Reading and writing topics from tests with a plain aiokafka client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.codec import DecodeError, decode, encode
from shared.events import Event

T = TypeVar("T")


class TopicWatcher:
    """Collects every record of some topics from the beginning, decoded when possible."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self._consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                          enable_auto_commit=False, metadata_max_age_ms=1000)
        self.records: list[tuple[str, bytes | None, bytes | None]] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> "TopicWatcher":
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for record in self._consumer:
            self.records.append((record.topic, record.key, record.value))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    def events(self, topic: str | None = None) -> list[Event]:
        found = []
        for name, _, value in self.records:
            if topic is None or name == topic:
                try:
                    found.append(decode(value))
                except DecodeError:
                    pass
        return found

    def raw(self, topic: str) -> list[dict]:
        return [json.loads(v) for name, _, v in self.records if name == topic and v]


async def eventually(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Wait until ``predicate()`` is truthy (no sleeps as synchronisation: a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


class Publisher:
    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap)

    async def start(self) -> "Publisher":
        await self._producer.start()
        return self

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, event: Event | bytes) -> None:
        value = event if isinstance(event, bytes) else encode(event)
        await self._producer.send_and_wait(topic, value, key=key.encode())


async def eventually_async(probe: Callable[[], Awaitable[T]], accept: Callable[[T], object], timeout: float = 30.0,
                           what: str = "condition") -> T:
    """Like :func:`eventually` for a probe that must be awaited (an HTTP call, say)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
