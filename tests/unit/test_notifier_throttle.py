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


async def test_the_gate_holds_the_rate_over_many_sends():
    gate = PriorityGate(rate=200, burst=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(gate.acquire() for _ in range(41)))
    assert loop.time() - started == pytest.approx(0.2, abs=0.05)


async def test_an_urgent_send_overtakes_routine_sends_already_waiting():
    gate = PriorityGate(rate=100, burst=1)
    order: list[str] = []

    async def send(name: str, priority: int) -> None:
        await gate.acquire(priority)
        order.append(name)

    routine = [asyncio.create_task(send(f"r{i}", ROUTINE)) for i in range(20)]
    await asyncio.sleep(0.03)  # a few routine sends have gone; the rest wait
    await send("urgent", URGENT)
    await asyncio.gather(*routine)
    assert order.index("urgent") <= 5
    assert [n for n in order if n != "urgent"] == [f"r{i}" for i in range(20)]
