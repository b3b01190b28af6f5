"""The notifier's rules: who gets which message, on which channel, under which key.

Pure: no sending, no rendering. The app renders each :class:`Outgoing` and hands it to
a channel adapter; the ledger keyed by ``message_key`` makes every cause send once.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.ack_codes import ack_code, carries_code
from shared.clinics import Clinic
from shared.events import CHANNELS, ClinicianAlert, ConsentChanged, Event, PatientSnapshot, ReminderDue, deterministic_id
from shared.notifier_events import OutboundRequested
from shared.phones import region_of

# Messages a patient gets even after opting out: the one confirmation, and help.
ALWAYS_ALLOWED = {"opt_out_confirmation", "opt_in_confirmation", "help", "safety_reply", "unknown_sender"}
EMERGENCY_NUMBER = {"US": "911", "CA": "911", "ES": "112", "MX": "911", "GB": "999"}


class Contact(BaseModel):
    """What the notifier knows of a patient (a table value)."""

    patient_id: str
    clinic_id: str
    first_name: str
    phone: str | None = None
    email: str | None = None
    language: str = "en"
    sms_consent: bool = False
    email_consent: bool = False
    sms_opted_out: bool = False
    email_opted_out: bool = False
    discharged: bool = False
    welcomed: bool = False

    def can_sms(self) -> bool:
        return bool(self.phone) and self.sms_consent and not self.sms_opted_out and not self.discharged

    def can_email(self) -> bool:
        return bool(self.email) and self.email_consent and not self.email_opted_out and not self.discharged


class Outgoing(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_key: str
    channel: Literal["sms", "email"]
    to: str
    kind: str
    language: str = "en"
    audience: Literal["patient", "clinician"] = "patient"
    urgent: bool = False
    patient_id: str | None = None
    clinic_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def welcomes(self) -> bool:
        """The patient's first message: once sent, their contact is marked welcomed (and stays so)."""
        return self.audience == "patient" and bool(self.context.get("first_message"))


class _NotSent(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_key: str
    kind: str
    channel: Literal["sms", "email"] = "sms"
    patient_id: str | None
    clinic_id: str | None


class Suppressed(_NotSent):
    """A message the patient's consent or status rules out (``message.suppressed``)."""

    reason: str


class Refused(_NotSent):
    """A message that cannot be sent at all (``message.failed``), e.g. for an unknown patient."""

    error: str


Decision = Outgoing | Suppressed | Refused


def contact_from(snapshot: PatientSnapshot, previous: Contact | None) -> Contact:
    kept = previous.model_dump(include={"sms_opted_out", "email_opted_out", "welcomed"}) if previous else {}
    return Contact(
        patient_id=snapshot.patient_id,
        clinic_id=snapshot.clinic_id,
        first_name=snapshot.first_name,
        phone=snapshot.phone,
        email=snapshot.email,
        language=snapshot.language,
        sms_consent=snapshot.sms_consent,
        email_consent=snapshot.email_consent,
        **kept,
    )


def with_consent(contact: Contact, event: ConsentChanged) -> Contact:
    return contact.model_copy(update={f"{c}_opted_out": not event.granted for c in CHANNELS if event.covers(c)})


def patient_context(contact: Contact, clinic: Clinic) -> dict[str, Any]:
    return {
        "first_name": contact.first_name,
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "first_message": not contact.welcomed,
        "emergency_number": emergency_number(clinic.phone),
    }


@lru_cache(maxsize=1024)  # one per clinic phone; parsing it in every message cost a fifth of a render
def emergency_number(phone: str) -> str:
    return EMERGENCY_NUMBER.get(region_of(phone) or "", "911")


def for_patient(
    key: str, kind: str, contact: Contact | None, clinic: Clinic, *, urgent: bool = False,
    extra: dict[str, Any] | None = None, sms_only: bool = False, patient_id: str | None = None,
) -> Decision:
    """One message to a patient on the channel their consent allows."""
    if contact is None:
        return Refused(message_key=key, kind=kind, patient_id=patient_id, clinic_id=clinic.id,
                       error="unknown patient: no patient.enrolled has been seen for this patient_id")
    context = patient_context(contact, clinic) | (extra or {})
    common = dict(
        message_key=key, kind=kind, language=contact.language, urgent=urgent,
        patient_id=contact.patient_id, clinic_id=contact.clinic_id, context=context,
    )
    allowed = kind in ALWAYS_ALLOWED and not contact.discharged and contact.phone
    if contact.can_sms() or allowed:
        return Outgoing(channel="sms", to=contact.phone or "", **common)
    if not sms_only and contact.can_email():
        return Outgoing(channel="email", to=contact.email or "", **common)
    reason = "discharged" if contact.discharged else "no consent for any channel"
    return Suppressed(message_key=key, kind=kind, patient_id=contact.patient_id, clinic_id=contact.clinic_id, reason=reason)


def on_due(event: Event, contact: Contact | None, clinic: Clinic) -> list[Decision]:
    """Booking reminders (a check-in's questions are the survey's: they come as outbound requests)."""
    if isinstance(event, ReminderDue):
        extra = {"days_since": event.day}
        return [for_patient(f"{event.event_id}:booking_reminder", "booking_reminder", contact, clinic, extra=extra,
                            patient_id=event.patient_id)]
    return []


def on_outbound(event: OutboundRequested, contact: Contact | None, clinic: Clinic | None) -> list[Decision]:
    if event.patient_id is None or clinic is None:  # somebody the clinic does not know: a neutral reply only
        return [
            Outgoing(
                message_key=event.message_key, channel="sms", to=event.to_phone or "", kind=event.kind,
                language=event.language, urgent=event.urgent, context=dict(event.context),
            )
        ]
    return [for_patient(event.message_key, event.kind, contact, clinic, urgent=event.urgent, extra=event.context,
                        sms_only=True, patient_id=event.patient_id)]


def clinic_time(moment: datetime, clinic: Clinic) -> str:
    """A moment as the clinic's staff read it: their local time and zone (2026-03-10 08:41 PDT)."""
    return moment.astimezone(ZoneInfo(clinic.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def on_alert(alert: ClinicianAlert, contact: Contact | None, clinic: Clinic) -> list[Decision]:
    """Urgent: SMS and email to the on-call clinicians at once; high: email at once.
    Routine and review wait for the daily digest (returned as nothing here)."""
    if alert.severity not in ("urgent", "high"):
        return []
    context = {
        "clinic_name": clinic.name,
        "severity": alert.severity,
        "patient_ref": alert.patient_id,
        "first_name": contact.first_name if contact else "(unknown)",
        "summary": alert.summary,
        "reasons": list(alert.reasons),
        "raised_at": clinic_time(alert.raised_at, clinic),
        "evidence": [f"{k}: {v}" for k, v in alert.evidence.items()],
        "ack_code": ack_code(alert.alert_id) if carries_code(alert.severity) else None,  # "Reply ACK 48 to take this"
    }
    channels = ["sms", "email"] if alert.severity == "urgent" else ["email"]
    decisions: list[Decision] = []
    for clinician in clinic.on_call:
        for channel in channels:
            to = clinician.phone if channel == "sms" else clinician.email
            if not to:
                continue
            decisions.append(
                Outgoing(
                    message_key=deterministic_id(alert.alert_id, channel, to),
                    channel=channel, to=to, kind="alert", language="en", audience="clinician",
                    urgent=alert.severity == "urgent", patient_id=alert.patient_id,
                    clinic_id=alert.clinic_id, context=context,
                )
            )
    return decisions
