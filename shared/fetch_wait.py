"""How long a consumer's fetch may wait at the broker: short while records flow, longer
once nothing has come for a while.

An idle consumer sends a fetch every ``fetch_max_wait_ms``; at 100 ms that is ten requests
a second for each worker, and answering them was most of an idle pipeline's CPU (the
broker's and the workers', measured with ``bench.idle``). A quiet consumer therefore waits
``idle_ms`` per fetch, and the first record it receives brings it back to ``busy_ms``.
Apache Kafka answers a waiting fetch as soon as records arrive, so the longer wait costs no
latency there; the embedded broker holds a fetch for part of its wait, so the first record
after a quiet spell can take up to about half of ``idle_ms`` longer (README, "Idle cost").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FetchWait:
    """The wait of the next fetch, from whether the last one brought records."""

    busy_ms: int
    idle_ms: int
    idle_after_s: float = 2.0  # records absent this long make a consumer quiet
    clock: Callable[[], float] = time.monotonic
    _last_records: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self._last_records = self.clock()

    def after_fetch(self, got_records: bool) -> int:
        now = self.clock()
        if got_records:
            self._last_records = now
        quiet = now - self._last_records >= self.idle_after_s
        return max(self.idle_ms, self.busy_ms) if quiet else self.busy_ms


def adapt(fetcher: Any, policy: FetchWait) -> None:
    """Make an aiokafka ``Fetcher`` (a started consumer's ``_fetcher``) set each next
    request's wait from ``policy``. aiokafka reads ``_fetch_max_wait_ms`` when it builds
    each fetch request and looks ``_proc_fetch_request`` up each time it sends one."""
    fetcher._fetch_max_wait_ms = policy.busy_ms  # noqa: SLF001
    handle = fetcher._proc_fetch_request  # noqa: SLF001

    async def proc_fetch_request(*args: Any, **kwargs: Any) -> Any:
        got_records = await handle(*args, **kwargs)
        fetcher._fetch_max_wait_ms = policy.after_fetch(bool(got_records))  # noqa: SLF001
        return got_records

    fetcher._proc_fetch_request = proc_fetch_request  # noqa: SLF001
