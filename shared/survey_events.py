"""The survey's internal events (internal topics ``inbound`` and ``survey-replies``): part
of no contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.envelope import AwareDatetime, Event, Id, SmsBody
from shared.limits import MAX_PHONE


class InboundSms(Event):
    """A patient's SMS as the webhook received it, before any interpretation (keyed by phone)."""

    type: Literal["sms.received"] = "sms.received"
    message_sid: Id
    from_phone: Annotated[str, Field(max_length=MAX_PHONE)]
    to_phone: Annotated[str, Field(max_length=MAX_PHONE)]
    body: SmsBody
    received_at: AwareDatetime


class ReplyReceived(Event):
    """An inbound SMS matched to a patient (keyed by patient)."""

    type: Literal["survey.reply"] = "survey.reply"
    patient_id: Id
    clinic_id: Id
    message_sid: Id
    body: SmsBody
    received_at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (InboundSms, ReplyReceived)
