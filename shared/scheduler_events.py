"""The scheduler's internal events (internal topics ``scheduler-commands`` and
``scheduler-alerts``): part of no
contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from typing import Literal

from shared.envelope import AwareDatetime, Event, Id, RequiredId


class TimerFire(Event):
    """Command: fire the due timers of one patient (keyed by patient)."""

    type: Literal["scheduler.fire"] = "scheduler.fire"
    patient_id: Id
    at: AwareDatetime


class AlertDeadline(Event):
    """Command: an escalation deadline of one alert has passed (keyed by alert)."""

    type: Literal["scheduler.alert_deadline"] = "scheduler.alert_deadline"
    alert_id: RequiredId
    at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (TimerFire, AlertDeadline)
