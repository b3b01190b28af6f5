"""The public events of cyclecare (DESIGN.md, "Contract").

Every event is a frozen pydantic model sharing one envelope. Unknown fields are ignored
so that producers may add optional fields without breaking consumers. Bytes <-> model
conversion lives in :mod:`shared.codec`, nowhere else.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal, Union, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1


def new_event_id() -> str:
    return uuid.uuid4().hex


def deterministic_id(*parts: object) -> str:
    """An id that is the same every time the same cause is seen (idempotency keys)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset (RFC 3339)")
    return value


def _e164(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not an E.164 phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _iana(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
E164 = Annotated[str, AfterValidator(_e164)]
TimeZoneName = Annotated[str, AfterValidator(_iana)]
Language = Literal["en", "es"]
Severity = Literal["urgent", "high", "routine", "review"]
Channel = Literal["sms", "email"]


class Event(BaseModel):
    """The envelope every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id, min_length=1)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)


# --- cyclecare.patients -------------------------------------------------------------


class PatientSnapshot(Event):
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    first_name: str = Field(min_length=1)
    phone: E164
    email: str | None = None
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
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    reason: str | None = None


# --- cyclecare.treatments -----------------------------------------------------------


class TreatmentRecorded(Event):
    type: Literal["treatment.recorded"] = "treatment.recorded"
    treatment_id: str = Field(min_length=1)
    patient_id: str = Field(min_length=1)
    clinic_id: str = Field(min_length=1)
    administered_on: date
    units: float | None = Field(default=None, ge=0)
    interval_weeks: int = Field(default=12, ge=1, le=52)


# --- cyclecare.due ------------------------------------------------------------------

CheckinKind = Literal["side_effects", "headache_frequency"]


class DueEvent(Event):
    """Emitted by the scheduler when a durable timer fires."""

    patient_id: str
    clinic_id: str
    treatment_id: str
    cycle: int = Field(ge=1)
    due_at: AwareDatetime
    day: int


class ReminderDue(DueEvent):
    type: Literal["reminder.due"] = "reminder.due"
    kind: Literal["booking"] = "booking"


class CheckinDue(DueEvent):
    type: Literal["checkin.due"] = "checkin.due"
    kind: CheckinKind
    checkin_id: str


class CheckinExpired(DueEvent):
    type: Literal["checkin.expired"] = "checkin.expired"
    checkin_id: str


class CycleOverdue(DueEvent):
    type: Literal["cycle.overdue"] = "cycle.overdue"


class TimerSkipped(DueEvent):
    """A moment the scheduler decided not to fire (stale after backdating, no consent)."""

    type: Literal["timer.skipped"] = "timer.skipped"
    skipped_type: str
    kind: str | None = None
    reason: str


# --- cyclecare.consent --------------------------------------------------------------


class ConsentChanged(Event):
    type: Literal["consent.changed"] = "consent.changed"
    patient_id: str
    clinic_id: str
    channel: Channel | Literal["all"] = "sms"
    granted: bool
    source: str  # "sms_keyword", "provider_21610", "ehr", ...


# --- cyclecare.checkins -------------------------------------------------------------


class CheckinCompleted(Event):
    type: Literal["checkin.completed"] = "checkin.completed"
    patient_id: str
    clinic_id: str
    checkin_id: str
    kind: CheckinKind
    treatment_id: str | None = None
    cycle: int | None = None
    answers: dict[str, Any]
    raw_replies: list[str] = Field(default_factory=list)


# --- cyclecare.alerts ---------------------------------------------------------------


class ClinicianAlert(Event):
    type: Literal["clinician.alert"] = "clinician.alert"
    alert_id: str
    patient_id: str
    clinic_id: str
    severity: Severity
    reasons: list[str] = Field(min_length=1)
    summary: str
    raised_at: AwareDatetime
    evidence: dict[str, Any] = Field(default_factory=dict)


# --- cyclecare.deliveries -----------------------------------------------------------


class Delivery(Event):
    message_key: str  # the idempotency key of the cause
    patient_id: str | None = None
    clinic_id: str | None = None
    channel: Channel
    kind: str
    provider_id: str | None = None


class MessageSent(Delivery):
    type: Literal["message.sent"] = "message.sent"


class MessageDelivered(Delivery):
    type: Literal["message.delivered"] = "message.delivered"


class MessageFailed(Delivery):
    type: Literal["message.failed"] = "message.failed"
    error: str
    error_code: str | None = None


class MessageSuppressed(Delivery):
    type: Literal["message.suppressed"] = "message.suppressed"
    reason: str


# --- internal: outbound messages the survey asks the notifier to send ---------------


class OutboundRequested(Event):
    """A message another service asks the notifier to deliver (questions, safety replies)."""

    type: Literal["outbound.requested"] = "outbound.requested"
    message_key: str
    patient_id: str | None
    clinic_id: str
    to_phone: E164 | None = None
    kind: str
    language: Language = "en"
    urgent: bool = False
    context: dict[str, Any] = Field(default_factory=dict)


class InboundSms(Event):
    """A patient's SMS as the webhook received it, before any interpretation."""

    type: Literal["sms.received"] = "sms.received"
    message_sid: str
    from_phone: str
    to_phone: str
    body: str
    received_at: AwareDatetime


class ReplyReceived(Event):
    """Survey-internal: an inbound SMS matched to a patient (keyed by patient)."""

    type: Literal["survey.reply"] = "survey.reply"
    patient_id: str
    clinic_id: str
    message_sid: str
    body: str
    received_at: AwareDatetime


class RetryScheduled(Event):
    """Notifier-internal: try an outgoing message again, not before ``not_before``."""

    type: Literal["notifier.retry"] = "notifier.retry"
    outgoing: dict[str, Any]
    attempt: int = Field(ge=1)
    not_before: AwareDatetime


class DigestItemAdded(Event):
    """Notifier-internal: one line for a clinic's daily digest (keyed by clinic)."""

    type: Literal["notifier.digest_item"] = "notifier.digest_item"
    clinic_id: str
    item_key: str  # the same cause gives the same key, so a line is listed once
    item: dict[str, Any]


class DigestDue(Event):
    """Notifier-internal command: send a clinic's digest for its local ``day`` (keyed by clinic)."""

    type: Literal["notifier.digest_due"] = "notifier.digest_due"
    clinic_id: str
    day: date


class TimerFire(Event):
    """Scheduler-internal command: fire the due timers of one patient (keyed by patient)."""

    type: Literal["scheduler.fire"] = "scheduler.fire"
    patient_id: str
    at: AwareDatetime


AnyEvent = Annotated[
    Union[
        PatientEnrolled,
        PatientUpdated,
        PatientDischarged,
        TreatmentRecorded,
        ReminderDue,
        CheckinDue,
        CheckinExpired,
        CycleOverdue,
        TimerSkipped,
        ConsentChanged,
        CheckinCompleted,
        ClinicianAlert,
        MessageSent,
        MessageDelivered,
        MessageFailed,
        MessageSuppressed,
        OutboundRequested,
        InboundSms,
        TimerFire,
        RetryScheduled,
        ReplyReceived,
        DigestItemAdded,
        DigestDue,
    ],
    Field(discriminator="type"),
]

ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)


# --- cyclecare.alert-actions: the alert lifecycle (keyed by patient) -------------------
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
AnyEvent = Annotated[  # type: ignore[misc]  # the union above, with the alert lifecycle added
    Union[(*get_args(get_args(AnyEvent)[0]), *ALERT_ACTIONS)],  # type: ignore[valid-type]
    Field(discriminator="type"),
]
ANY_EVENT = TypeAdapter(AnyEvent)
