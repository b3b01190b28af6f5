"""Clocks. Only the scheduler asks "what time is it"; everything else gets times in events."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

from shared.config import Settings


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimulatedClock:
    """Starts at ``start`` when the real clock read ``anchor`` and runs ``speed`` times faster.

    Several processes given the same three numbers agree on the time, which is how the
    demo runs a 12-week cycle in minutes across three workers.
    """

    def __init__(self, start: datetime, speed: float = 1.0, anchor: float | None = None) -> None:
        self.start = start.astimezone(timezone.utc)
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)


class ManualClock:
    """A clock a test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def clock_from(settings: Settings) -> Clock:
    if settings.clock_start is None:
        return SystemClock()
    return SimulatedClock(settings.clock_start, settings.clock_speed, settings.clock_anchor)
