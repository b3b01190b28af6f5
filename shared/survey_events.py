"""The survey's internal events (internal topics ``inbound`` and ``survey-replies``): part
of no contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.envelope import AwareDatetime, Event, Id, Severity, SmsBody, Text
from shared.limits import MAX_ID, MAX_LIST_ITEMS, MAX_NAME, MAX_PHONE


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


class AlertNoted(Event):
    """An urgent or high alert, re-keyed by the phone of each clinician of its clinic (topic
    ``survey-clinician-alerts``), with what the clinician's confirmation names (the patient's
    initial) and who the alert itself went to (``alerted``: clinician ids)."""

    type: Literal["survey.alert_noted"] = "survey.alert_noted"
    alert_id: str = Field(min_length=1, max_length=MAX_ID)
    patient_id: Id
    clinic_id: Id
    severity: Severity
    summary: Text = ""
    raised_at: AwareDatetime
    initial: Annotated[str, Field(max_length=MAX_NAME)]
    alerted: list[Id] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


EVENTS: tuple[type[Event], ...] = (InboundSms, ReplyReceived, AlertNoted)
