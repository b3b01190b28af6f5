"""The scheduler's rules: which moments a treatment cycle has and when each is due.

Pure functions over pydantic models; ``now`` is always an argument. The Faust wiring in
``app.py`` stores one :class:`PatientSchedule` per patient and calls these functions.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.clinics import ClinicRules
from shared.events import (
    CheckinDue,
    CheckinExpired,
    ClinicianAlert,
    ConsentChanged,
    CycleOverdue,
    DueEvent,
    Event,
    PatientDischarged,
    PatientSnapshot,
    ReminderDue,
    TimerSkipped,
    TreatmentRecorded,
    deterministic_id,
)

EventType = Literal["checkin.due", "reminder.due", "cycle.overdue", "checkin.expired"]
STALE_AFTER = timedelta(hours=24)  # a patient message this late is no longer meaningful


class InvalidTreatment(ValueError):
    """A treatment that can never be scheduled (dated in the future, say)."""


class Timer(BaseModel):
    model_config = ConfigDict(frozen=True)

    timer_id: str
    event_type: EventType
    kind: str | None = None  # the check-in kind, or "booking"
    day: int
    fire_at: datetime
    treatment_id: str
    cycle: int
    checkin_id: str | None = None

    @property
    def patient_facing(self) -> bool:
        return self.event_type in ("checkin.due", "reminder.due")


class PatientSchedule(BaseModel):
    """Everything the scheduler remembers about one patient (a table value)."""

    patient_id: str
    clinic_id: str | None = None
    timezone: str | None = None
    enrolled: bool = False
    discharged: bool = False
    sms_consent: bool = True
    email_consent: bool = False
    treatments: dict[str, date] = Field(default_factory=dict)
    current_treatment_id: str | None = None
    cycle: int = 0
    pending: list[Timer] = Field(default_factory=list)
    held: list[TreatmentRecorded] = Field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return not self.discharged and (self.sms_consent or self.email_consent)

    def next_fire_at(self) -> datetime | None:
        return min((t.fire_at for t in self.pending), default=None)


class Outcome(BaseModel):
    """What a decision changed: the new state, and the events to publish (topic, event)."""

    schedule: PatientSchedule
    emit: list[tuple[str, Event]] = Field(default_factory=list)
    skipped: list[Timer] = Field(default_factory=list)


# --- placing moments in the patient's day ------------------------------------------


def local_moment(day: date, at: time, tz: str) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz`` as UTC; a time skipped by a DST jump moves
    forward by the gap, an ambiguous one takes its first occurrence."""
    zone = ZoneInfo(tz)
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=zone, fold=0)
    roundtrip = aware.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
    if roundtrip != naive:  # inside a spring-forward gap
        aware = naive.replace(tzinfo=zone, fold=1)
    return aware.astimezone(timezone.utc)


def in_window(moment: datetime, tz: str, rules: ClinicRules) -> bool:
    local = moment.astimezone(ZoneInfo(tz)).time()
    return rules.send_window_start <= local <= rules.send_window_end


def next_allowed(moment: datetime, tz: str, rules: ClinicRules) -> datetime:
    """``moment`` itself when inside the clinic's window, else the next window opening."""
    if in_window(moment, tz, rules):
        return moment
    local = moment.astimezone(ZoneInfo(tz))
    day = local.date() if local.time() < rules.send_window_start else local.date() + timedelta(days=1)
    return local_moment(day, rules.send_window_start, tz)


# --- planning a cycle -------------------------------------------------------------


def cycle_moments(rules: ClinicRules) -> list[tuple[int, EventType, str | None]]:
    moments: list[tuple[int, EventType, str | None]] = []
    moments += [(d, "checkin.due", "side_effects") for d in rules.side_effect_checkin_days]
    moments += [(d, "checkin.due", "headache_frequency") for d in rules.headache_checkin_days]
    moments += [(d, "reminder.due", "booking") for d in rules.booking_reminder_days]
    moments.append((rules.overdue_day, "cycle.overdue", None))
    return moments


def make_timer(
    treatment: TreatmentRecorded, cycle: int, day: int, event_type: EventType, kind: str | None,
    tz: str, rules: ClinicRules,
) -> Timer:
    when = local_moment(treatment.administered_on + timedelta(days=day), rules.send_time, tz)
    if event_type != "cycle.overdue":
        when = next_allowed(when, tz, rules)
    checkin_id = deterministic_id(treatment.treatment_id, kind, day) if event_type == "checkin.due" else None
    return Timer(
        timer_id=deterministic_id(treatment.treatment_id, event_type, kind, day),
        event_type=event_type,
        kind=kind,
        day=day,
        fire_at=when,
        treatment_id=treatment.treatment_id,
        cycle=cycle,
        checkin_id=checkin_id,
    )


def plan_cycle(
    treatment: TreatmentRecorded, cycle: int, tz: str, rules: ClinicRules, now: datetime
) -> tuple[list[Timer], list[Timer]]:
    """The timers of a new cycle, and those skipped as stale (a backdated treatment)."""
    timers = [make_timer(treatment, cycle, d, e, k, tz, rules) for d, e, k in cycle_moments(rules)]
    stale = [t for t in timers if t.patient_facing and t.fire_at < now - STALE_AFTER]
    return [t for t in timers if t not in stale], stale


def expiry_timer(fired: Timer, rules: ClinicRules) -> Timer:
    return fired.model_copy(
        update={
            "timer_id": deterministic_id(fired.timer_id, "expiry"),
            "event_type": "checkin.expired",
            "fire_at": fired.fire_at + timedelta(hours=rules.checkin_expiry_hours),
        }
    )


# --- reacting to events -----------------------------------------------------------


def on_patient(schedule: PatientSchedule, event: PatientSnapshot, rules: ClinicRules, now: datetime) -> Outcome:
    moved_zone = schedule.timezone not in (None, event.timezone)
    updated = schedule.model_copy(
        update={
            "clinic_id": event.clinic_id,
            "timezone": event.timezone,
            "enrolled": True,
            "sms_consent": event.sms_consent,
            "email_consent": event.email_consent,
        }
    )
    if moved_zone:
        updated = _replace_in_zone(updated, rules)
    outcome = Outcome(schedule=updated)
    for held in updated.held:
        outcome = _merge(outcome, on_treatment(outcome.schedule, held, rules, now))
    outcome.schedule = outcome.schedule.model_copy(update={"held": []})
    return outcome


def _replace_in_zone(schedule: PatientSchedule, rules: ClinicRules) -> PatientSchedule:
    """Re-place pending patient moments at the same local time in the new timezone."""
    start = schedule.treatments.get(schedule.current_treatment_id or "")
    if start is None:
        return schedule
    moved = []
    for timer in schedule.pending:
        if timer.event_type in ("checkin.due", "reminder.due"):
            when = local_moment(start + timedelta(days=timer.day), rules.send_time, schedule.timezone or "UTC")
            timer = timer.model_copy(update={"fire_at": next_allowed(when, schedule.timezone or "UTC", rules)})
        moved.append(timer)
    return schedule.model_copy(update={"pending": moved})


def on_discharged(schedule: PatientSchedule, event: PatientDischarged) -> Outcome:
    return Outcome(schedule=schedule.model_copy(update={"discharged": True, "pending": [], "held": []}))


def on_consent(schedule: PatientSchedule, event: ConsentChanged) -> Outcome:
    update: dict[str, bool] = {}
    if event.channel in ("sms", "all"):
        update["sms_consent"] = event.granted
    if event.channel in ("email", "all"):
        update["email_consent"] = event.granted
    return Outcome(schedule=schedule.model_copy(update=update))


def on_treatment(
    schedule: PatientSchedule, treatment: TreatmentRecorded, rules: ClinicRules, now: datetime
) -> Outcome:
    if treatment.treatment_id in schedule.treatments or schedule.discharged:
        return Outcome(schedule=schedule)
    if not schedule.enrolled or schedule.timezone is None:
        return Outcome(schedule=schedule.model_copy(update={"held": [*schedule.held, treatment]}))
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    if treatment.administered_on > today:
        raise InvalidTreatment(f"administered_on {treatment.administered_on} is in the future")
    seen = {**schedule.treatments, treatment.treatment_id: treatment.administered_on}
    current = schedule.treatments.get(schedule.current_treatment_id or "")
    if current is not None and treatment.administered_on <= current:
        # an older treatment recorded late: part of the history, not a new cycle
        return Outcome(schedule=schedule.model_copy(update={"treatments": seen}))
    cycle = schedule.cycle + 1
    timers, stale = plan_cycle(treatment, cycle, schedule.timezone, rules, now)
    under_way = [t for t in schedule.pending if t.event_type == "checkin.expired"]
    updated = schedule.model_copy(
        update={
            "treatments": seen,
            "current_treatment_id": treatment.treatment_id,
            "cycle": cycle,
            "pending": under_way + timers,
        }
    )
    emit = [("due", _skipped_event(schedule.patient_id, updated.clinic_id or "", t)) for t in stale]
    return Outcome(schedule=updated, emit=emit, skipped=stale)


def fire_due(schedule: PatientSchedule, rules: ClinicRules, now: datetime) -> Outcome:
    """Fire every pending timer whose moment has come."""
    outcome = Outcome(schedule=schedule)
    keep: list[Timer] = []
    for timer in sorted(schedule.pending, key=lambda t: t.fire_at):
        if timer.fire_at > now:
            keep.append(timer)
        elif timer.patient_facing and not in_window(now, schedule.timezone or "UTC", rules):
            keep.append(timer.model_copy(update={"fire_at": next_allowed(now, schedule.timezone or "UTC", rules)}))
        elif timer.patient_facing and not schedule.reachable:
            outcome.skipped.append(timer)
            outcome.emit.append(("due", _skipped_event(schedule.patient_id, schedule.clinic_id or "", timer, "no consent")))
        else:
            outcome.emit.extend(_fired(schedule, timer, now))
            if timer.event_type == "checkin.due":
                keep.append(expiry_timer(timer, rules))
    outcome.schedule = schedule.model_copy(update={"pending": keep})
    return outcome


def _fired(schedule: PatientSchedule, timer: Timer, now: datetime) -> list[tuple[str, Event]]:
    common = dict(
        event_id=timer.timer_id,
        occurred_at=now,
        patient_id=schedule.patient_id,
        clinic_id=schedule.clinic_id or "",
        treatment_id=timer.treatment_id,
        cycle=timer.cycle,
        due_at=timer.fire_at,
        day=timer.day,
    )
    if timer.event_type == "checkin.due":
        return [("due", CheckinDue(kind=timer.kind, checkin_id=timer.checkin_id, **common))]
    if timer.event_type == "checkin.expired":
        return [("due", CheckinExpired(checkin_id=timer.checkin_id or "", **common))]
    if timer.event_type == "reminder.due":
        return [("due", ReminderDue(**common))]
    alert = ClinicianAlert(
        alert_id=deterministic_id("cycle_overdue", timer.timer_id),
        patient_id=schedule.patient_id,
        clinic_id=schedule.clinic_id or "",
        severity="routine",
        reasons=["cycle_overdue"],
        summary=f"No new treatment recorded {timer.day} days after the last one (cycle {timer.cycle}).",
        raised_at=now,
        evidence={"treatment_id": timer.treatment_id, "day": timer.day},
    )
    return [("due", CycleOverdue(**common)), ("alerts", alert)]


def _skipped_event(patient_id: str, clinic_id: str, timer: Timer, reason: str = "stale") -> DueEvent:
    return TimerSkipped(
        event_id=deterministic_id(timer.timer_id, "skipped"),
        patient_id=patient_id,
        clinic_id=clinic_id,
        treatment_id=timer.treatment_id,
        cycle=timer.cycle,
        due_at=timer.fire_at,
        day=timer.day,
        skipped_type=timer.event_type,
        kind=timer.kind,
        reason=reason,
    )


def _merge(first: Outcome, second: Outcome) -> Outcome:
    return Outcome(
        schedule=second.schedule, emit=first.emit + second.emit, skipped=first.skipped + second.skipped
    )
