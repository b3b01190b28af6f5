"""What a failure inside a handler means, and what to do about it.

Two kinds, and only two:

- **poison**: the record itself can never be processed (it violates the contract, names a
  clinic that is not in the clinics file, carries an impossible date). Retrying cannot help:
  it goes to the dead-letter topic and the consumer carries on.
- **everything else** (Kafka errors, timeouts, a table that is not ready, a partition count
  mismatch, a bug): the record is fine and the world is not. It is retried with backoff and
  *not acknowledged*; after ``stuck_after`` seconds its partition is reported stuck (the
  worker answers 503 on ``/readyz`` naming the cause, ``cyclecare_partition_stuck`` is 1),
  and it resumes by itself once the fault clears.

The dead-letter topic is for poison only: an infrastructure fault that went there would
silently drop a patient's schedule.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from shared.clinics import UnknownClinic
from shared.codec import DecodeError

log = logging.getLogger(__name__)


class ContractViolation(ValueError):
    """Raised by a handler for a record that can never be processed (dead-lettered)."""


POISON: tuple[type[BaseException], ...] = (DecodeError, ValidationError, UnknownClinic, ContractViolation)


def is_poison(exc: BaseException) -> bool:
    """True when retrying ``exc`` can never succeed: the record goes to the DLQ."""
    return isinstance(exc, POISON)


def describe(exc: BaseException) -> str:
    """The error text of a DLQ record or a readiness cause: the class name first."""
    return f"{type(exc).__name__}: {exc}"


_REASON = re.compile(r"^([A-Z][A-Za-z0-9_]*)(?::|$)")


def dlq_reason(error: str) -> str:
    """A short, bounded label for a dead-letter error (metric label, CLI grouping).

    Handler failures are written as ``ClassName: detail`` and give the class name; the
    decoder's own messages (``not JSON: ...``, a field's validation message) give
    ``invalid_event``. Never the detail itself: it may quote the record."""
    match = _REASON.match(error.strip())
    return match.group(1) if match else "invalid_event"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap: 0.1 s, 0.2 s, 0.4 s ... at most ``cap`` seconds."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.initial * self.factor ** max(0, attempt - 1))


@dataclass
class Stall:
    """A partition whose current record keeps failing."""

    topic: str
    partition: int
    offset: int
    since: float
    error: str
    attempts: int = 0

    def cause(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset} failing for {self.attempts} attempts: {self.error}"


@dataclass
class Stalls:
    """The records of one worker being retried, and which of them are stuck."""

    stuck_after: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failing: dict[tuple[str, int, int], Stall] = field(default_factory=dict)

    def failed(self, topic: str, partition: int, offset: int, error: str) -> Stall:
        key = (topic, partition, offset)
        stall = self._failing.setdefault(key, Stall(topic, partition, offset, self.clock(), error))
        stall.error = error
        stall.attempts += 1
        return stall

    def cleared(self, topic: str, partition: int, offset: int) -> Stall | None:
        return self._failing.pop((topic, partition, offset), None)

    def partition_failing(self, topic: str, partition: int) -> bool:
        return any(t == topic and p == partition for t, p, _ in self._failing)

    def is_stuck(self, stall: Stall) -> bool:
        return self.clock() - stall.since >= self.stuck_after

    def stuck(self) -> list[Stall]:
        return [s for s in self._failing.values() if self.is_stuck(s)]

    def cause(self) -> str | None:
        """Why the worker is not ready, or None when no partition is stuck."""
        stuck = self.stuck()
        return "; ".join(s.cause() for s in stuck) if stuck else None


@dataclass
class RetryHooks:
    """What the runtime does around retries (pause/resume a partition, metrics)."""

    on_stuck: Callable[[Stall], None] = lambda stall: None
    on_cleared: Callable[[Stall], None] = lambda stall: None


async def until_handled(
    attempt: Callable[[], Awaitable[None]],
    where: tuple[str, int, int],
    stalls: Stalls,
    *,
    backoff: Backoff = Backoff(),
    hooks: RetryHooks = RetryHooks(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BaseException | None:
    """Run ``attempt`` until it succeeds (None) or fails with poison (that exception).

    Any other failure is retried with backoff, forever: the caller does not acknowledge the
    record meanwhile, so a crash or a rebalance hands it to the next owner instead of losing
    it. Cancellation (worker stopping, partition revoked) propagates."""
    topic, partition, offset = where
    tries = 0
    reported = False
    try:
        while True:
            try:
                await attempt()
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified just below
                if is_poison(exc):
                    return exc
                tries += 1
                stall = stalls.failed(topic, partition, offset, describe(exc))
                if tries == 1:
                    log.warning("%s[%s]@%s: retrying after %s", topic, partition, offset, describe(exc))
                if not reported and stalls.is_stuck(stall):
                    reported = True
                    log.error("%s[%s] stuck: %s", topic, partition, stall.cause())
                    hooks.on_stuck(stall)
                await sleep(backoff.delay(tries))
    finally:
        cleared = stalls.cleared(topic, partition, offset)
        if cleared is not None:
            if reported:
                log.warning("%s[%s] resumed after %d attempts", topic, partition, cleared.attempts)
            hooks.on_cleared(cleared)
