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

from shared.limits import (
    MAX_EMAIL, MAX_ID, MAX_LIST_ITEMS, MAX_NAME, MAX_PHONE, MAX_SMS_BODY, MAX_TEXT, MAX_TIMEZONE, MAX_TYPE,
)

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
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# The length limits (shared.limits) are checked before the validators run, so no validator
# ever sees an unbounded string.
E164 = Annotated[str, Field(max_length=MAX_PHONE), AfterValidator(_e164)]
TimeZoneName = Annotated[str, Field(max_length=MAX_TIMEZONE), AfterValidator(_iana)]
Id = Annotated[str, Field(max_length=MAX_ID)]
RequiredId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Code = Annotated[str, Field(max_length=MAX_TYPE)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
SmsBody = Annotated[str, Field(max_length=MAX_SMS_BODY)]
Language = Literal["en", "es"]
Severity = Literal["urgent", "high", "routine", "review"]
Channel = Literal["sms", "email"]


class Event(BaseModel):
    """The envelope every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Code
    version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_ID)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)


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

CheckinKind = Literal["side_effects", "headache_frequency"]


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
    source: Code  # "sms_keyword", "provider_21610", "ehr", ...


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


# --- internal: outbound messages the survey asks the notifier to send ---------------


class OutboundRequested(Event):
    """A message another service asks the notifier to deliver (questions, safety replies)."""

    type: Literal["outbound.requested"] = "outbound.requested"
    message_key: Id
    patient_id: Id | None
    clinic_id: Id
    to_phone: E164 | None = None
    kind: Code
    language: Language = "en"
    urgent: bool = False
    context: dict[str, Any] = Field(default_factory=dict)


class InboundSms(Event):
    """A patient's SMS as the webhook received it, before any interpretation."""

    type: Literal["sms.received"] = "sms.received"
    message_sid: Id
    from_phone: Annotated[str, Field(max_length=MAX_PHONE)]
    to_phone: Annotated[str, Field(max_length=MAX_PHONE)]
    body: SmsBody
    received_at: AwareDatetime


class ReplyReceived(Event):
    """Survey-internal: an inbound SMS matched to a patient (keyed by patient)."""

    type: Literal["survey.reply"] = "survey.reply"
    patient_id: Id
    clinic_id: Id
    message_sid: Id
    body: SmsBody
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
    clinic_id: Id
    item_key: Id  # the same cause gives the same key, so a line is listed once
    item: dict[str, Any]


class DigestDue(Event):
    """Notifier-internal command: send a clinic's digest for its local ``day`` (keyed by clinic)."""

    type: Literal["notifier.digest_due"] = "notifier.digest_due"
    clinic_id: Id
    day: date


class TimerFire(Event):
    """Scheduler-internal command: fire the due timers of one patient (keyed by patient)."""

    type: Literal["scheduler.fire"] = "scheduler.fire"
    patient_id: Id
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


class AlertDeadline(Event):
    """Scheduler-internal command: an escalation deadline of one alert has passed (keyed by alert)."""

    type: Literal["scheduler.alert_deadline"] = "scheduler.alert_deadline"
    alert_id: RequiredId
    at: AwareDatetime


ALERT_ACTIONS = (AlertAcknowledged, AlertResolved, AlertEscalated)
AnyEvent = Annotated[  # type: ignore[misc]  # the union above, with the alert lifecycle added
    Union[(*get_args(get_args(AnyEvent)[0]), *ALERT_ACTIONS, AlertDeadline)],  # type: ignore[valid-type]
    Field(discriminator="type"),
]
ANY_EVENT = TypeAdapter(AnyEvent)
