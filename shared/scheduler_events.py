"""The scheduler's internal events (internal topics ``scheduler-commands`` and
``scheduler-alerts``): part of no
contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.envelope import AwareDatetime, Event, Id, RequiredId


# patients one fire command may name: 200 ids of the longest allowed fit well under a record's limit
FIRE_GROUP_MAX = 200


class TimerFire(Event):
    """Command: fire the due timers of one patient (keyed by patient), and of the patients in
    ``also``, which the sender put in the same partition (where their schedules are kept)."""

    type: Literal["scheduler.fire"] = "scheduler.fire"
    patient_id: Id
    at: AwareDatetime
    also: list[Id] = Field(default_factory=list, max_length=FIRE_GROUP_MAX - 1)


class AlertDeadline(Event):
    """Command: an escalation deadline of one alert has passed (keyed by alert)."""

    type: Literal["scheduler.alert_deadline"] = "scheduler.alert_deadline"
    alert_id: RequiredId
    at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (TimerFire, AlertDeadline)
