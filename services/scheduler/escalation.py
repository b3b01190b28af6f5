"""When an alert nobody acknowledges gets louder, and what each step says (DESIGN.md, clinics
file ``escalation``). Pure: times come in as arguments, events come out.

Urgent: not acknowledged ``urgent_ack_minutes`` after it was raised -> level 2 (every clinician
of the clinic); ``repeat_minutes`` later -> level 3 (every clinician and the clinic's
``escalation_phone``); then level 3 again every ``repeat_minutes``, ``max_repeats`` times.
High: not acknowledged after ``high_ack_working_hours`` of the clinic's send window (its
timezone, DST included) -> level 2, once. Routine and review alerts never escalate.

The steps sit on a fixed schedule counted from ``raised_at``. When several deadlines passed
while no worker ran, only the loudest one pages (catch-up once, not a burst of pages).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from shared.alert_state import AlertAction, AlertState
from shared.clinics import Clinic
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert, deterministic_id


@dataclass(frozen=True)
class Step:
    """One page of the policy: ``level``, ``repeat`` (0, 1, ...) and when it is due."""

    level: int
    repeat: int
    due_at: datetime

    @property
    def key(self) -> tuple[int, int]:
        return (self.level, self.repeat)


def policy_steps(state: AlertState, clinic: Clinic) -> list[Step]:
    """Every page the alert would get if nobody ever acknowledged it, in order."""
    policy = clinic.escalation
    if state.severity == "high":
        rules = clinic.rules
        due = after_working_hours(state.raised_at, policy.high_ack_working_hours, clinic.timezone,
                                  rules.send_window_start, rules.send_window_end)
        return [Step(2, 0, due)]
    if state.severity != "urgent":
        return []
    first = state.raised_at + timedelta(minutes=policy.urgent_ack_minutes)
    every = timedelta(minutes=policy.repeat_minutes)
    steps = [Step(2, 0, first)]
    steps += [Step(3, repeat, first + every * (repeat + 1)) for repeat in range(policy.max_repeats + 1)]
    return steps


def next_step(state: AlertState, clinic: Clinic) -> Step | None:
    """The next page still to come: none once the alert is acknowledged or resolved, or once
    the policy's last page was sent."""
    if state.status != "open":
        return None
    done = max(state.escalations, default=(0, 0))
    return next((s for s in policy_steps(state, clinic) if s.key > done), None)


def due_step(state: AlertState, clinic: Clinic, now: datetime) -> Step | None:
    """The page to send at ``now``, if any: the loudest step whose deadline has passed and that
    is louder than every page already sent. An acknowledgement known by then wins, even one
    made at the very instant of the deadline."""
    upcoming = next_step(state, clinic)
    if upcoming is None or upcoming.due_at > now:
        return None
    done = max(state.escalations, default=(0, 0))
    passed = [s for s in policy_steps(state, clinic) if s.key > done and s.due_at <= now]
    return passed[-1]


def escalation_id(alert_id: str, level: int, repeat: int) -> str:
    """The same step of the same alert always has the same id (a re-fire after a crash is the same event)."""
    return deterministic_id(alert_id, "escalated", level, repeat)


def escalated(state: AlertState, clinic: Clinic, step: Step, now: datetime) -> AlertEscalated:
    """The ``alert.escalated`` event of ``step``: every clinician of the clinic is paged (from
    level 3 the notifier also calls the clinic's ``escalation_phone``)."""
    return AlertEscalated(
        event_id=escalation_id(state.alert_id, step.level, step.repeat),
        occurred_at=now,
        alert_id=state.alert_id,
        patient_id=state.patient_id,
        clinic_id=state.clinic_id,
        level=step.level,
        repeat=step.repeat,
        notified=[c.id for c in clinic.clinicians],
        escalated_at=now,
    )


# --- working time (the clinic's send window, its timezone) ----------------------------


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """``moment`` on local ``day``, in UTC (arithmetic on aware datetimes sharing a ZoneInfo is wall-clock)."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(timezone.utc)


def after_working_hours(start: datetime, hours: float, zone_name: str, opens: time, closes: time) -> datetime:
    """The instant ``hours`` of working time after ``start``, counting only the daily window
    ``opens``-``closes`` in ``zone_name`` (each local day, DST-correct)."""
    zone = ZoneInfo(zone_name)
    start = start.astimezone(timezone.utc)
    remaining = timedelta(hours=hours)
    day = start.astimezone(zone).date()
    while True:
        begin, end = max(_at(day, opens, zone), start), _at(day, closes, zone)
        if begin < end:
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        day += timedelta(days=1)


# --- one alert as the scheduler tracks it -----------------------------------------------


MAX_EARLY_ACTIONS = 16  # actions kept for an alert not seen yet (a flood of bogus ids stays small)


@dataclass(frozen=True)
class Tracked:
    """The table entry of one alert: its state once the alert itself was seen, and the
    actions that arrived before it (the alert and its actions travel on two topics)."""

    state: AlertState | None = None
    early: tuple[AlertAction, ...] = ()

    def raised(self, alert: ClinicianAlert) -> "Tracked":
        if self.state is not None:
            return self  # the same alert again (redelivery): the first one counts
        state = AlertState.raised(alert)
        for action in self.early:
            if action.clinic_id == state.clinic_id:
                state = state.apply(action)
        return Tracked(state=state)

    def acted(self, action: AlertAction, clinic: Clinic) -> "Tracked":
        """``action`` applied, unless it cannot be about this alert: an acknowledgement or a
        resolution by someone who is no clinician of the alert's clinic changes nothing."""
        if isinstance(action, (AlertAcknowledged, AlertResolved)) and clinic.clinician(action.by) is None:
            return self
        if self.state is None:
            return replace(self, early=(*self.early, action)[-MAX_EARLY_ACTIONS:])
        if action.clinic_id != self.state.clinic_id:
            return self
        return replace(self, state=self.state.apply(action))


_TRACKED = TypeAdapter(Tracked)


def dump(tracked: Tracked) -> dict:
    return _TRACKED.dump_python(tracked, mode="json")


def load(stored: dict | None) -> Tracked:
    return Tracked() if stored is None else _TRACKED.validate_python(stored)
