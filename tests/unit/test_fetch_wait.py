"""A quiet consumer fetches less often; the first record brings back the short wait."""

from __future__ import annotations

import asyncio

from shared.fetch_wait import FetchWait, adapt


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_consumer_receiving_records_keeps_the_short_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, clock=clock)
    for _ in range(10):
        clock.now += 1
        assert wait.after_fetch(got_records=True) == 100


def test_empty_fetches_for_less_than_the_quiet_time_keep_the_short_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, clock=clock)
    clock.now = 1.9
    assert wait.after_fetch(got_records=False) == 100


def test_a_consumer_without_records_for_the_quiet_time_waits_longer_until_records_come():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, clock=clock)
    clock.now = 2.0
    assert wait.after_fetch(got_records=False) == 500
    clock.now = 60.0
    assert wait.after_fetch(got_records=False) == 500
    assert wait.after_fetch(got_records=True) == 100


def test_an_idle_wait_set_below_the_busy_one_never_shortens_the_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=300, idle_ms=50, idle_after_s=0, clock=clock)
    assert wait.after_fetch(got_records=False) == 300


class FakeFetcher:
    """What ``adapt`` relies on in aiokafka's Fetcher: the wait attribute read for each
    request, and the coroutine that sends one and says whether records came."""

    def __init__(self, answers: list[bool]) -> None:
        self._fetch_max_wait_ms = 1500
        self.answers = answers
        self.waits: list[int] = []

    async def _proc_fetch_request(self, assignment: object, node_id: int, request: object) -> bool:
        self.waits.append(self._fetch_max_wait_ms)
        return self.answers.pop(0)


def test_the_fetcher_sends_each_next_request_with_the_wait_the_last_answer_calls_for():
    clock = Clock()
    fetcher = FakeFetcher([False, False, True, False])
    adapt(fetcher, FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, clock=clock))

    async def fetch_four() -> None:
        for _ in range(4):
            clock.now += 1.5
            await fetcher._proc_fetch_request(None, 0, None)

    asyncio.run(fetch_four())
    assert fetcher.waits == [100, 100, 500, 100]
    assert fetcher._fetch_max_wait_ms == 100  # the last empty fetch came 1.5 s after records


def test_aiokafkas_fetcher_still_has_what_adapt_relies_on():
    import inspect

    from aiokafka.consumer.fetcher import Fetcher

    assert list(inspect.signature(Fetcher._proc_fetch_request).parameters) == ["self", "assignment", "node_id", "request"]
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher._get_actions_per_node)
    assert "self._proc_fetch_request(" in inspect.getsource(Fetcher._fetch_requests_routine)
