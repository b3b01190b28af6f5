"""The SMS rate limit: a token bucket whose tokens go to urgent sends first."""

from __future__ import annotations

import asyncio

import pytest

from services.notifier.throttle import ROUTINE, URGENT, PriorityGate, TokenBucket


def test_a_full_bucket_gives_its_burst_at_once_then_one_token_per_interval():
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take(0.0) == pytest.approx(0.1)
    assert bucket.try_take(0.1) == 0.0


def test_an_idle_bucket_saves_no_more_than_its_burst():
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert [bucket.try_take(100.0) for _ in range(3)][-1] > 0


def test_a_bucket_refuses_a_rate_of_zero():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0.0)


class ManualTime:
    """The gate's clock and sleep: a sleep advances the clock once the test lets it
    (``allow``); with ``free`` every sleep passes at once."""

    def __init__(self, free: bool = False) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._permits = asyncio.Semaphore(0)
        self._free = free

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self._free:
            await self._permits.acquire()
        self.slept.append(seconds)
        self.now += seconds + 1e-9  # a real clock never stands still: float rounding must not leave a token short
        await asyncio.sleep(0)

    def allow(self, sleeps: int) -> None:
        for _ in range(sleeps):
            self._permits.release()

    def release_all(self) -> None:
        self._free = True
        self.allow(1000)


async def until(condition, what: str) -> None:
    """Let the event loop run until ``condition`` holds (no real time passes in these tests)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def test_the_gate_holds_the_rate_over_many_sends():
    time = ManualTime(free=True)
    gate = PriorityGate(rate=200, burst=1, clock=time.clock, sleep=time.sleep)
    await asyncio.gather(*(gate.acquire() for _ in range(41)))
    assert time.now == pytest.approx(40 / 200)  # the burst at once, then one token every 5 ms


async def test_an_urgent_send_overtakes_routine_sends_already_waiting():
    time = ManualTime()
    gate = PriorityGate(rate=100, burst=1, clock=time.clock, sleep=time.sleep)
    order: list[str] = []

    async def send(name: str, priority: int) -> None:
        await gate.acquire(priority)
        order.append(name)

    routine = [asyncio.create_task(send(f"r{i}", ROUTINE)) for i in range(20)]
    time.allow(3)  # the burst and three more tokens go to routine sends; the rest wait
    await until(lambda: len(order) == 4 and gate.waiting == 16, what="four routine sends gone, sixteen waiting")
    urgent = asyncio.create_task(send("urgent", URGENT))
    await until(lambda: gate.waiting == 17, what="the urgent send waiting")
    time.release_all()
    await asyncio.gather(urgent, *routine)
    assert order.index("urgent") == 4
    assert [n for n in order if n != "urgent"] == [f"r{i}" for i in range(20)]
