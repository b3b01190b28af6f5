"""How long a consumer's fetch may wait at the broker: short while records flow, longer
once nothing has come for a while, on a broker that answers a waiting fetch at once.

An idle consumer sends a fetch every ``fetch_max_wait_ms``; at 100 ms that is ten requests
a second for each worker, and answering them was most of an idle pipeline's CPU (the
broker's and the workers', measured with ``bench.idle``). A quiet consumer therefore waits
``idle_ms`` per fetch, and the first record it receives brings it back to ``busy_ms``.

Apache Kafka answers a waiting fetch as soon as records arrive, so the longer wait costs no
latency there. The embedded broker holds a fetch even when records arrive (it looks for
records, sleeps half of what is left of the wait, looks again), so there the longer wait
would add up to about half of ``idle_ms`` to the first record after a quiet spell, on the
urgent path too: on it the quiet wait is off. ``CYCLECARE_FETCH_ANSWERED_AT_ONCE`` says
which kind of broker this is; ``auto`` (the default) asks the broker for its cluster id on
the first fetch, and the embedded broker names its cluster ``EMBEDDED_CLUSTER_ID``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.broker import EMBEDDED_CLUSTER_ID, ping

log = logging.getLogger(__name__)


@dataclass
class FetchWait:
    """The wait of the next fetch, from whether the last one brought records.

    ``answered_at_once`` is whether the broker answers a waiting fetch as soon as records
    arrive; ``None`` until the broker has been asked (``adapt`` asks on the first fetch)."""

    busy_ms: int
    idle_ms: int
    idle_after_s: float = 2.0  # records absent this long make a consumer quiet
    answered_at_once: bool | None = None
    clock: Callable[[], float] = time.monotonic
    _last_records: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self._last_records = self.clock()

    @classmethod
    def from_settings(cls, settings: Any) -> "FetchWait":
        """From ``CYCLECARE_FETCH_MAX_WAIT_MS``, ``CYCLECARE_FETCH_IDLE_WAIT_MS`` and
        ``CYCLECARE_FETCH_ANSWERED_AT_ONCE`` (a ``shared.config.Settings``)."""
        return cls(settings.fetch_max_wait_ms, settings.fetch_idle_wait_ms,
                   answered_at_once=settings.fetch_answered_at_once)

    def after_fetch(self, got_records: bool) -> int:
        now = self.clock()
        if got_records:
            self._last_records = now
        quiet = now - self._last_records >= self.idle_after_s
        return max(self.idle_ms, self.busy_ms) if quiet and self.answered_at_once else self.busy_ms


def answers_at_once(cluster_id: str | None) -> bool:
    """What ``auto`` decides from the cluster id the broker reports: every broker but the
    embedded one answers a waiting fetch at once (as the Kafka protocol describes)."""
    return cluster_id != EMBEDDED_CLUSTER_ID


async def cluster_id(client: Any) -> str | None:
    """The cluster id an aiokafka client's broker reports (Metadata v2 and later), or None."""
    return getattr(await ping(client), "cluster_id", None)


async def find_out(policy: FetchWait, client: Any) -> None:
    """Settle ``policy.answered_at_once`` by asking the broker; a broker that does not say
    keeps the short wait (no saving, but no latency risk)."""
    try:
        found = await cluster_id(client)
    except Exception as exc:  # noqa: BLE001 - any failure: stay on the safe side, say so once
        log.warning("could not ask the broker for its cluster id (%s); the quiet fetch wait stays off", exc)
        policy.answered_at_once = False
        return
    policy.answered_at_once = found is not None and answers_at_once(found)
    log.info("broker cluster %r: the quiet fetch wait is %s", found, "on" if policy.answered_at_once else "off")


def adapt(fetcher: Any, policy: FetchWait) -> None:
    """Make an aiokafka ``Fetcher`` (a started consumer's ``_fetcher``) set each next
    request's wait from ``policy``. aiokafka reads ``_fetch_max_wait_ms`` when it builds
    each fetch request and looks ``_proc_fetch_request`` up each time it sends one."""
    fetcher._fetch_max_wait_ms = policy.busy_ms  # noqa: SLF001
    handle = fetcher._proc_fetch_request  # noqa: SLF001

    async def proc_fetch_request(*args: Any, **kwargs: Any) -> Any:
        if policy.answered_at_once is None:
            await find_out(policy, fetcher._client)  # noqa: SLF001
        got_records = await handle(*args, **kwargs)
        fetcher._fetch_max_wait_ms = policy.after_fetch(bool(got_records))  # noqa: SLF001
        return got_records

    fetcher._proc_fetch_request = proc_fetch_request  # noqa: SLF001
