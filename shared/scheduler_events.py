"""The scheduler's internal events (internal topic ``scheduler-commands``): part of no
contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from typing import Literal

from shared.envelope import AwareDatetime, Event, Id


class TimerFire(Event):
    """Command: fire the due timers of one patient (keyed by patient)."""

    type: Literal["scheduler.fire"] = "scheduler.fire"
    patient_id: Id
    at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (TimerFire,)
