"""The public events of cyclecare (DESIGN.md, "Contract"): what other systems may read and
write. Change only by adding optional fields, or by a new ``version``.

Every event is a frozen pydantic model sharing the envelope of :mod:`shared.envelope`
(re-exported here). Unknown fields are ignored so that producers may add optional fields
without breaking consumers. Each service's internal events live in ``shared/*_events.py``;
bytes <-> model conversion lives in :mod:`shared.codec`, nowhere else. Each event's topic
is in :data:`shared.topics.TOPIC_OF`.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from shared.envelope import (  # noqa: F401  (re-exported: the envelope and field types)
    CHANNELS, E164, SCHEMA_VERSION, AwareDatetime, Channel, CheckinKind, Code, Event, Id, Language, RequiredId, Severity,
    SmsBody, Text, TimeZoneName, deterministic_id, new_event_id, utcnow,
)
from shared.limits import MAX_EMAIL, MAX_LIST_ITEMS, MAX_NAME

# --- cyclecare.patients -------------------------------------------------------------


class PatientSnapshot(Event):
    patient_id: RequiredId
    clinic_id: RequiredId
    first_name: str = Field(min_length=1, max_length=MAX_NAME)
    phone: E164
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    timezone: TimeZoneName
    language: Language = "en"
    sms_consent: bool
    email_consent: bool = False
    baseline_headache_days: int | None = Field(default=None, ge=0, le=31)


class PatientEnrolled(PatientSnapshot):
    type: Literal["patient.enrolled"] = "patient.enrolled"


class PatientUpdated(PatientSnapshot):
    type: Literal["patient.updated"] = "patient.updated"


class PatientDischarged(Event):
    type: Literal["patient.discharged"] = "patient.discharged"
    patient_id: RequiredId
    clinic_id: RequiredId
    reason: Text | None = None


# --- cyclecare.treatments -----------------------------------------------------------


class TreatmentRecorded(Event):
    type: Literal["treatment.recorded"] = "treatment.recorded"
    treatment_id: RequiredId
    patient_id: RequiredId
    clinic_id: RequiredId
    administered_on: date
    units: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    interval_weeks: int = Field(default=12, ge=1, le=52)


# --- cyclecare.due ------------------------------------------------------------------

class DueEvent(Event):
    """Emitted by the scheduler when a durable timer fires."""

    patient_id: Id
    clinic_id: Id
    treatment_id: Id
    cycle: int = Field(ge=1)
    due_at: AwareDatetime
    day: int


class ReminderDue(DueEvent):
    type: Literal["reminder.due"] = "reminder.due"
    kind: Literal["booking"] = "booking"


class CheckinDue(DueEvent):
    type: Literal["checkin.due"] = "checkin.due"
    kind: CheckinKind
    checkin_id: Id


class CheckinExpired(DueEvent):
    type: Literal["checkin.expired"] = "checkin.expired"
    checkin_id: Id


class CycleOverdue(DueEvent):
    type: Literal["cycle.overdue"] = "cycle.overdue"


class TimerSkipped(DueEvent):
    """A moment the scheduler decided not to fire (stale after backdating, no consent)."""

    type: Literal["timer.skipped"] = "timer.skipped"
    skipped_type: Code
    kind: Code | None = None
    reason: Text


# --- cyclecare.consent --------------------------------------------------------------


class ConsentChanged(Event):
    type: Literal["consent.changed"] = "consent.changed"
    patient_id: Id
    clinic_id: Id
    channel: Channel | Literal["all"] = "sms"
    granted: bool
    source: Code  # "sms_keyword", "ehr", "provider_<code>" (the SMS provider's own opt-out code), ...

    def covers(self, channel: Channel) -> bool:
        """Whether this change applies to ``channel`` (``all`` covers every channel)."""
        return self.channel in (channel, "all")


# --- cyclecare.checkins -------------------------------------------------------------


class CheckinCompleted(Event):
    type: Literal["checkin.completed"] = "checkin.completed"
    patient_id: Id
    clinic_id: Id
    checkin_id: Id
    kind: CheckinKind
    treatment_id: Id | None = None
    cycle: int | None = None
    answers: dict[str, Any]
    raw_replies: list[SmsBody] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


# --- cyclecare.alerts ---------------------------------------------------------------


class ClinicianAlert(Event):
    type: Literal["clinician.alert"] = "clinician.alert"
    alert_id: Id
    patient_id: Id
    clinic_id: Id
    severity: Severity
    reasons: list[Code] = Field(min_length=1, max_length=MAX_LIST_ITEMS)
    summary: Text
    raised_at: AwareDatetime
    evidence: dict[str, Any] = Field(default_factory=dict)


# --- cyclecare.deliveries -----------------------------------------------------------


class Delivery(Event):
    message_key: Id  # the idempotency key of the cause
    patient_id: Id | None = None
    clinic_id: Id | None = None
    channel: Channel
    kind: Code
    provider_id: Id | None = None


class MessageSent(Delivery):
    type: Literal["message.sent"] = "message.sent"


class MessageDelivered(Delivery):
    type: Literal["message.delivered"] = "message.delivered"


class MessageFailed(Delivery):
    type: Literal["message.failed"] = "message.failed"
    error: Text
    error_code: Code | None = None


class MessageSuppressed(Delivery):
    type: Literal["message.suppressed"] = "message.suppressed"
    reason: Text


# --- cyclecare.alert-actions: the alert lifecycle ----------------------------------
# An alert is open until acknowledged, and acknowledged until resolved; a repeated or
# out-of-order action changes nothing. Written by the portal (web), the survey (SMS "ACK"),
# the scheduler (escalation) and the HTTP API.

ActionVia = Literal["web", "sms", "api"]
Outcome = Literal["contacted_patient", "advised_emergency_care", "appointment_booked", "no_action_needed", "other"]


class AlertAcknowledged(Event):
    type: Literal["alert.acknowledged"] = "alert.acknowledged"
    alert_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    by: str = Field(min_length=1)  # clinician id
    via: ActionVia
    acknowledged_at: AwareDatetime


class AlertResolved(Event):
    type: Literal["alert.resolved"] = "alert.resolved"
    alert_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    by: str = Field(min_length=1)
    via: ActionVia
    outcome: Outcome
    note: str | None = None  # clinical text: never logged
    resolved_at: AwareDatetime


class AlertEscalated(Event):
    type: Literal["alert.escalated"] = "alert.escalated"
    alert_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    level: int = Field(ge=2)
    repeat: int = Field(default=0, ge=0)
    notified: list[str] = Field(default_factory=list)  # clinician ids
    reason: str = "ack_timeout"
    escalated_at: AwareDatetime



ALERT_ACTIONS = (AlertAcknowledged, AlertResolved, AlertEscalated)
CONTRACT_EVENTS: tuple[type[Event], ...] = (
    PatientEnrolled, PatientUpdated, PatientDischarged, TreatmentRecorded,
    ReminderDue, CheckinDue, CheckinExpired, CycleOverdue, TimerSkipped,
    ConsentChanged, CheckinCompleted, ClinicianAlert,
    MessageSent, MessageDelivered, MessageFailed, MessageSuppressed,
    *ALERT_ACTIONS,
)
