"""Delivery receipts: Twilio status callbacks -> ``message.delivered`` / ``message.failed``,
and the rule that repeated undelivered messages to one patient make them ``unreachable``.

Pure: the webhook adapter hands in the form and the tags the notifier put on the
callback URL when it sent the message; the app keeps the per-patient streak in a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.events import ClinicianAlert, MessageDelivered, MessageFailed, deterministic_id
from services.notifier.delivery import unreachable_alert as alert_unreachable

FAILED_STATUSES = {"undelivered", "failed"}
UNDELIVERED_LIMIT = 3  # consecutive undelivered messages to one patient before the clinic hears of it
TAGS = ("m", "p", "c", "k", "a")  # message key, patient, clinic, kind, audience (p = patient, c = clinician)


def receipt_event(form: Mapping[str, str], tags: Mapping[str, str]) -> MessageDelivered | MessageFailed | None:
    """The delivery event a status callback stands for; ``None`` for interim statuses."""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    common = dict(
        event_id=deterministic_id("receipt", sid, status), message_key=tags.get("m") or sid,
        patient_id=tags.get("p") or None, clinic_id=tags.get("c") or None, channel="sms",
        kind=tags.get("k") or "unknown", provider_id=sid or None,
    )
    if status == "delivered":
        return MessageDelivered(**common)
    if status in FAILED_STATUSES:
        code = form.get("ErrorCode") or None
        return MessageFailed(error=f"{status} (provider code {code or 'none'})", error_code=code, **common)
    return None


class Streak(BaseModel):
    """Undelivered messages in a row to one patient (a table value)."""

    model_config = ConfigDict(frozen=True)

    count: int = 0
    sids: tuple[str, ...] = ()
    first_key: str | None = None


def after_receipt(streak: Streak, event: MessageDelivered | MessageFailed) -> Streak:
    if isinstance(event, MessageDelivered):
        return Streak()
    sid = event.provider_id or event.message_key
    if sid in streak.sids:  # Twilio repeats callbacks: count each message once
        return streak
    return Streak(count=streak.count + 1, sids=(streak.sids + (sid,))[-UNDELIVERED_LIMIT:],
                  first_key=streak.first_key or event.message_key)


def unreachable_alert(streak: Streak, event: MessageFailed, now: datetime) -> ClinicianAlert | None:
    """Raised once per streak, when it reaches the limit."""
    if streak.count != UNDELIVERED_LIMIT or not event.patient_id:
        return None
    return alert_unreachable(
        event.patient_id, event.clinic_id or "", str(streak.first_key),
        f"The last {streak.count} text messages to this patient were not delivered.",
        {"undelivered": streak.count, "last_error_code": event.error_code}, now,
    )
