"""The scheduler's rules: which moments a treatment cycle has and when each is due.

Pure functions over pydantic models; ``now`` is always an argument. The Faust wiring in
``app.py`` stores one :class:`PatientSchedule` per patient and calls these functions.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from pydantic import BaseModel, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from shared.clinics import ClinicRules
from shared.failures import ContractViolation
from shared.events import (
    CHANNELS,
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
# The earliest local date on Earth is UTC+14: a date later than that is in the future everywhere.
EARLIEST_OFFSET = timedelta(hours=14)


class InvalidTreatment(ContractViolation):
    """A treatment that can never be scheduled (dated in the future, say)."""


class Timer(msgspec.Struct, frozen=True, array_like=True):
    """One moment of a patient's cycle. A msgspec Struct rather than a pydantic model: the
    scheduler makes nine per treatment and loads them from its own table, trusted data that
    needs no validation (a fifth of the cost to build); stored, it is an array of its fields in
    this order (STORED_TIMER_FIELDS), frozen for the stored form's version."""

    timer_id: str
    event_type: EventType
    kind: str | None  # the check-in kind, or "booking"
    day: int
    fire_at: datetime
    treatment_id: str
    cycle: int
    checkin_id: str | None

    @property
    def patient_facing(self) -> bool:
        return self.event_type in ("checkin.due", "reminder.due")

    def replace(self, **changes: Any) -> Timer:
        return msgspec.structs.replace(self, **changes)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Inside pydantic models (PatientSchedule, Outcome): a Timer is kept as it is; the
        older stored forms' timers (named fields, or arrays) are converted with their types
        checked; dumped, a timer has named fields, as before."""
        return core_schema.no_info_plain_validator_function(
            _as_timer, serialization=core_schema.plain_serializer_function_ser_schema(msgspec.structs.asdict))


def _as_timer(value: Any) -> Timer:
    if isinstance(value, Timer):
        return value
    if isinstance(value, dict):
        value = [value.get(name) for name in STORED_TIMER_FIELDS]
    return msgspec.convert(value, Timer)  # a msgspec.ValidationError is a ValueError: pydantic reports it


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
    held_until: datetime | None = None  # when held treatments of a never-enrolled patient are given up

    @property
    def reachable(self) -> bool:
        return not self.discharged and (self.sms_consent or self.email_consent)

    @property
    def rules_clinic(self) -> str | None:
        """The clinic whose rules apply: the patient's, or that of a held treatment."""
        return self.clinic_id or next((t.clinic_id for t in self.held), None)

    @property
    def timer_count(self) -> int:
        """Timers the schedule holds, pending and held (the pending-timers figure)."""
        return len(self.pending) + len(self.held)

    def next_fire_at(self) -> datetime | None:
        moments = [t.fire_at for t in self.pending]
        if self.held and self.held_until is not None:
            moments.append(self.held_until)
        return min(moments, default=None)


# --- the stored form ---------------------------------------------------------------
# A schedule in the table is JSON bytes in the small schema below (version 3, written and
# read by msgspec): the fields of PatientSchedule with its timers as arrays in the order of
# STORED_TIMER_FIELDS (a third of the bytes of named fields), the form's version "v", and
# the next moment, the timer count and the partition, so that rebuilding the timer index
# after a rebalance reads four fields per patient. The scheduler wrote it itself, so it
# loads without pydantic's validation (msgspec checks each type as it decodes: twice as
# fast to load as version 2, four times to write; bench/scheduler/planning.py); validation
# stays at the edges (Kafka input, HTTP, CSV). Older forms still load: version 2 (the same
# fields, a JSON object serialised by Faust) and a value without "v" (named fields, before
# the form was versioned) go through pydantic as before.

STORED_VERSION = 3
# Frozen for versions 2 and 3: a new Timer field needs a new version (a test checks they match).
STORED_TIMER_FIELDS = ("timer_id", "event_type", "kind", "day", "fire_at", "treatment_id", "cycle", "checkin_id")


class StoredSchedule(msgspec.Struct, tag_field="v", tag=STORED_VERSION):
    """A :class:`PatientSchedule` in the stored form, with what the timer index reads."""

    patient_id: str
    clinic_id: str | None
    timezone: str | None
    enrolled: bool
    discharged: bool
    sms_consent: bool
    email_consent: bool
    treatments: dict[str, date]
    current_treatment_id: str | None
    cycle: int
    pending: list[Timer]
    held: list[dict[str, Any]]  # TreatmentRecorded as JSON: validated when loaded (rare: never-enrolled patients)
    held_until: datetime | None
    next: datetime | None
    timers: int
    p: int | None  # the partition where the schedule is kept


class StoredSummary(msgspec.Struct):
    """The fields of a stored schedule (version 2 or later) that the timer index reads."""

    v: int | None = None
    next: datetime | None = None
    timers: int = 0
    p: int | None = None


# the fields PatientSchedule and StoredSchedule share as they are (the rest are converted)
_SAME_FIELDS = tuple(name for name in StoredSchedule.__struct_fields__
                     if name not in ("pending", "held", "next", "timers", "p"))
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredSchedule).decode
_decode_summary = msgspec.json.Decoder(StoredSummary).decode


class UnknownStoredForm(Exception):
    """A stored schedule this scheduler cannot read (a form written by a newer one, or
    damaged). Not poison: the record that needed it is retried, its partition reported
    stuck with this cause, rather than dead-lettered for a fault of the scheduler's own state."""


def to_stored(schedule: PatientSchedule, partition: int | None = None) -> bytes:
    """The stored form; ``partition`` is where it is kept (the partition of the patient's
    records), so that fire commands after a restart go straight there."""
    return _encode(StoredSchedule(
        **{name: getattr(schedule, name) for name in _SAME_FIELDS},
        pending=schedule.pending,
        held=[treatment.model_dump(mode="json") for treatment in schedule.held],
        next=schedule.next_fire_at(), timers=schedule.timer_count, p=partition,
    ))


def from_stored(stored: bytes | dict) -> PatientSchedule:
    """A schedule from the table (bytes), or from its JSON already parsed (a dict: how a
    changelog reader sees it, or how Faust kept version 2)."""
    if isinstance(stored, dict):
        return _from_object(stored)
    try:
        return _loaded(_decode(stored))
    except msgspec.MsgspecError:  # an older form, or a damaged one (not JSON, say): read what it says it is
        return _from_object(_json_object(stored))


def _loaded(stored: StoredSchedule) -> PatientSchedule:
    """Trusted data, written by this scheduler: built without validating it again."""
    return PatientSchedule.model_construct(
        **{name: getattr(stored, name) for name in _SAME_FIELDS},
        pending=stored.pending,
        held=[TreatmentRecorded.model_validate(treatment) for treatment in stored.held],
    )


def _json_object(stored: bytes) -> dict:
    try:
        data = msgspec.json.decode(stored)
    except msgspec.DecodeError as exc:
        raise UnknownStoredForm(f"a stored schedule is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UnknownStoredForm(f"a stored schedule is a JSON {type(data).__name__}, not an object")
    return data


def _from_object(stored: dict) -> PatientSchedule:
    version = stored.get("v")
    if version is None:
        return PatientSchedule.model_validate(stored)
    if version not in (2, STORED_VERSION):
        raise UnknownStoredForm(f"schedule of patient {stored.get('patient_id')!r} is stored in form {version!r}; "
                                f"this scheduler reads forms {STORED_VERSION}, 2 and unversioned")
    try:
        if version == STORED_VERSION:
            return _loaded(msgspec.convert(stored, StoredSchedule, strict=False))
        pending = [dict(zip(STORED_TIMER_FIELDS, timer, strict=True)) for timer in stored["pending"]]
        return PatientSchedule.model_validate({**stored, "pending": pending})
    except (ValueError, KeyError, TypeError, msgspec.ValidationError) as exc:  # pydantic's ValidationError is a ValueError
        raise UnknownStoredForm(f"schedule of patient {stored.get('patient_id')!r} in form {version} cannot be read "
                                f"({type(exc).__name__})") from exc


def stored_summary(stored: bytes | dict) -> StoredSummary:
    """The next moment, timer count and partition of a stored schedule without loading all
    of it: rebuilding the timer index after a rebalance touches every patient, so it must
    be cheap (msgspec skips the other fields)."""
    if not isinstance(stored, dict):
        try:
            summary = _decode_summary(stored)
        except msgspec.MsgspecError as exc:
            raise UnknownStoredForm(f"a stored schedule cannot be read ({type(exc).__name__})") from exc
        if summary.v is not None:
            return summary
        stored = _json_object(stored)
    if stored.get("v") is not None:
        following = stored["next"]
        return StoredSummary(stored["v"], datetime.fromisoformat(following) if following else None,
                             stored["timers"], stored.get("p"))
    moments = [t["fire_at"] for t in stored.get("pending", ())]
    if stored.get("held") and stored.get("held_until"):
        moments.append(stored["held_until"])
    return StoredSummary(None, min((datetime.fromisoformat(m) for m in moments), default=None),
                         len(stored.get("pending", ())) + len(stored.get("held", ())), None)


class Rejected(BaseModel):
    """An input the scheduler gives up on, for the dead-letter topic with the reason."""

    treatment: TreatmentRecorded
    reason: str


class Outcome(BaseModel):
    """What a decision changed: the new state, and the events to publish (topic, event)."""

    schedule: PatientSchedule
    emit: list[Event] = Field(default_factory=list)  # each to its type's topic (shared.topics)
    skipped: list[Timer] = Field(default_factory=list)
    rejected: list[Rejected] = Field(default_factory=list)


# --- placing moments in the patient's day ------------------------------------------


def local_moment(day: date, at: time, tz: str) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz`` as UTC; a time skipped by a DST jump moves
    forward by the gap, an ambiguous one takes its first occurrence."""
    # PEP 495: with fold=0 a wall time inside a gap takes the offset in force before the
    # jump, which lands it after the gap (02:30 -> 03:30); an ambiguous one is its first
    # occurrence. (fold=1 would move a gap time backwards, to 01:30.)
    return datetime.combine(day, at).replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(timezone.utc)


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


def cycle_moments(rules: ClinicRules, interval_weeks: int | None = None) -> list[tuple[int, EventType, str | None]]:
    """Every moment of a cycle as (day, event type, kind). The booking and overdue days are
    set for the clinic's interval; a treatment prescribed at another interval moves them
    by the difference (a 10-week interval books two weeks earlier)."""
    shift = 7 * ((interval_weeks or rules.cycle_interval_weeks) - rules.cycle_interval_weeks)
    moments: list[tuple[int, EventType, str | None]] = []
    moments += [(d, "checkin.due", "side_effects") for d in rules.side_effect_checkin_days]
    moments += [(d, "checkin.due", "headache_frequency") for d in rules.headache_checkin_days]
    moments += [(d + shift, "reminder.due", "booking") for d in rules.booking_reminder_days]
    moments.append((rules.overdue_day + shift, "cycle.overdue", None))
    return moments


def place(start: date, day: int, event_type: str, tz: str, rules: ClinicRules) -> datetime:
    """The moment of ``day`` after ``start``: the clinic's send time, local to the patient,
    moved into the allowed window when it is patient-facing."""
    when = local_moment(start + timedelta(days=day), rules.send_time, tz)
    return when if event_type == "cycle.overdue" else next_allowed(when, tz, rules)


@lru_cache(maxsize=4096)
def cycle_calendar(
    start: date, tz: str, rules: ClinicRules, interval_weeks: int | None
) -> tuple[tuple[int, EventType, str | None, datetime], ...]:
    """Every moment of a cycle begun on ``start`` as (day, event type, kind, when). Patients
    treated on the same day in the same timezone under the same rules share one calendar, so
    it is kept (placing moments in local time was a third of planning a treatment; issue 16)."""
    return tuple((d, e, k, place(start, d, e, tz, rules)) for d, e, k in cycle_moments(rules, interval_weeks))


def make_timer(
    treatment: TreatmentRecorded, cycle: int, day: int, event_type: EventType, kind: str | None, when: datetime
) -> Timer:
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
    calendar = cycle_calendar(treatment.administered_on, tz, rules, treatment.interval_weeks)
    timers = [make_timer(treatment, cycle, d, e, k, when) for d, e, k, when in calendar]
    stale = [t for t in timers if t.patient_facing and t.fire_at < now - STALE_AFTER]
    return [t for t in timers if t not in stale], stale


def expiry_timer(fired: Timer, rules: ClinicRules, now: datetime) -> Timer:
    """The check-in closes ``checkin_expiry_hours`` after the question actually went out
    (a check-in fired late on catch-up still gets its full time to answer)."""
    return fired.replace(
        timer_id=deterministic_id(fired.timer_id, "expiry"),
        event_type="checkin.expired",
        fire_at=max(fired.fire_at, now) + timedelta(hours=rules.checkin_expiry_hours),
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
    outcome = Outcome(schedule=updated.model_copy(update={"held": [], "held_until": None}))
    for held in sorted(updated.held, key=lambda t: t.administered_on):
        try:
            outcome = _merge(outcome, on_treatment(outcome.schedule, held, rules, now))
        except InvalidTreatment as exc:  # one bad held treatment must not lose the enrolment
            outcome.rejected.append(Rejected(treatment=held, reason=str(exc)))
    return outcome


def _replace_in_zone(schedule: PatientSchedule, rules: ClinicRules) -> PatientSchedule:
    """Re-place pending moments at the same local time in the new timezone (check-in
    expiries keep their moment: they count hours from when the question went out)."""
    tz = schedule.timezone or "UTC"
    moved = []
    for timer in schedule.pending:
        start = schedule.treatments.get(timer.treatment_id)
        if start is not None and timer.event_type != "checkin.expired":
            timer = timer.replace(fire_at=place(start, timer.day, timer.event_type, tz, rules))
        moved.append(timer)
    return schedule.model_copy(update={"pending": moved})


def on_discharged(schedule: PatientSchedule, event: PatientDischarged) -> Outcome:
    return Outcome(schedule=schedule.model_copy(update={"discharged": True, "pending": [], "held": []}))


def on_consent(schedule: PatientSchedule, event: ConsentChanged) -> Outcome:
    update = {f"{c}_consent": event.granted for c in CHANNELS if event.covers(c)}
    return Outcome(schedule=schedule.model_copy(update=update))


def on_treatment(
    schedule: PatientSchedule, treatment: TreatmentRecorded, rules: ClinicRules, now: datetime
) -> Outcome:
    if treatment.treatment_id in schedule.treatments or schedule.discharged:
        return Outcome(schedule=schedule)
    if treatment.administered_on > (now + EARLIEST_OFFSET).date():
        raise InvalidTreatment(f"administered_on {treatment.administered_on} is in the future")
    if not schedule.enrolled or schedule.timezone is None:
        return Outcome(schedule=_hold(schedule, treatment, rules, now))
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
    emit: list[Event] = [_skipped_event(schedule.patient_id, updated.clinic_id or "", t, now) for t in stale]
    return Outcome(schedule=updated, emit=emit, skipped=stale)


def _hold(schedule: PatientSchedule, treatment: TreatmentRecorded, rules: ClinicRules, now: datetime) -> PatientSchedule:
    """Keep a treatment of a patient not enrolled yet, until the patient arrives or the bound passes."""
    if any(t.treatment_id == treatment.treatment_id for t in schedule.held):
        return schedule
    held_until = schedule.held_until or (None if schedule.held else now + timedelta(days=rules.hold_unknown_patient_days))
    return schedule.model_copy(update={"held": [*schedule.held, treatment], "held_until": held_until})


def report_held(schedule: PatientSchedule, rules: ClinicRules, now: datetime) -> Outcome:
    """Held treatments whose patient is still not enrolled after the bound are reported to
    the dead-letter topic, once, and kept: an enrolment that comes later (a slow EHR, or the
    backlog a restarted worker has yet to read) still schedules them."""
    if not schedule.held or schedule.held_until is None or schedule.held_until > now:
        return Outcome(schedule=schedule)
    reason = (f"patient {schedule.patient_id!r} was not enrolled within {rules.hold_unknown_patient_days} days; "
              "the treatment stays held and is scheduled if the patient is enrolled")
    rejected = [Rejected(treatment=t, reason=reason) for t in schedule.held]
    return Outcome(schedule=schedule.model_copy(update={"held_until": None}), rejected=rejected)


def fire_due(schedule: PatientSchedule, rules: ClinicRules, now: datetime) -> Outcome:
    """Fire every pending timer whose moment has come (and report treatments held too long)."""
    outcome = report_held(schedule, rules, now)
    schedule = outcome.schedule
    keep: list[Timer] = []
    for timer in sorted(schedule.pending, key=lambda t: t.fire_at):
        if timer.fire_at > now:
            keep.append(timer)
        elif timer.patient_facing and not in_window(now, schedule.timezone or "UTC", rules):
            keep.append(timer.replace(fire_at=next_allowed(now, schedule.timezone or "UTC", rules)))
        elif timer.patient_facing and not schedule.reachable:
            outcome.skipped.append(timer)
            outcome.emit.append(_skipped_event(schedule.patient_id, schedule.clinic_id or "", timer, now, "no consent"))
        else:
            outcome.emit.extend(_fired(schedule, timer, now))
            if timer.event_type == "checkin.due":
                keep.append(expiry_timer(timer, rules, now))
    outcome.schedule = schedule.model_copy(update={"pending": keep})
    return outcome


def _fired(schedule: PatientSchedule, timer: Timer, now: datetime) -> list[Event]:
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
        return [CheckinDue(kind=timer.kind, checkin_id=timer.checkin_id, **common)]
    if timer.event_type == "checkin.expired":
        return [CheckinExpired(checkin_id=timer.checkin_id or "", **common)]
    if timer.event_type == "reminder.due":
        return [ReminderDue(**common)]
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
    return [CycleOverdue(**common), alert]


def _skipped_event(patient_id: str, clinic_id: str, timer: Timer, now: datetime, reason: str = "stale") -> DueEvent:
    return TimerSkipped(
        event_id=deterministic_id(timer.timer_id, "skipped"),
        occurred_at=now,
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
        schedule=second.schedule,
        emit=first.emit + second.emit,
        skipped=first.skipped + second.skipped,
        rejected=first.rejected + second.rejected,
    )
