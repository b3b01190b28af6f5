"""The SMS rate limit: one token bucket per sender, urgent messages served first.

``TokenBucket`` is the pure arithmetic (time is an argument). ``PriorityGate`` is the
asyncio edge: every send waits at the gate for a token, and when tokens are scarce the
waiting urgent sends (clinician alerts, safety replies) get them before any routine one.
Nothing is dropped and nothing errors: a burst of routine reminders simply waits.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable

URGENT, ROUTINE = 0, 1


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = max(self._at, now)

    def try_take(self, now: float) -> float:
        """Take a token and return 0, or take nothing and return the seconds until one exists."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class PriorityGate:
    """Grants the bucket's tokens to waiters, lowest priority number first, FIFO within one."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._bucket = TokenBucket(rate, burst, clock())
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._granter: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def acquire(self, priority: int = ROUTINE) -> None:
        if not self._waiting and self._bucket.try_take(self._clock()) == 0:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), future))
        if self._granter is None or self._granter.done():
            self._granter = asyncio.create_task(self._grant())
        await future

    async def _grant(self) -> None:
        while self._waiting:
            wait = self._bucket.try_take(self._clock())
            if wait > 0:
                await self._sleep(wait)
                continue
            _, _, future = heapq.heappop(self._waiting)
            if future.cancelled():  # its sender gave up (shutdown): the token is simply spent
                continue
            future.set_result(None)

