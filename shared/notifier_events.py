"""The notifier's internal events (internal topics ``outbound`` and ``notifier-retry``):
part of no contract, free to change. Bytes <-> model: :mod:`shared.codec`."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from shared.envelope import E164, AwareDatetime, Code, Event, Id, Language


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


class RetryScheduled(Event):
    """Try an outgoing message again, not before ``not_before``."""

    type: Literal["notifier.retry"] = "notifier.retry"
    outgoing: dict[str, Any]
    attempt: int = Field(ge=0)  # failed attempts so far; 0: a first try put off by a halt
    not_before: AwareDatetime


class DigestItemAdded(Event):
    """One line for a clinic's daily digest (keyed by clinic)."""

    type: Literal["notifier.digest_item"] = "notifier.digest_item"
    clinic_id: Id
    item_key: Id  # the same cause gives the same key, so a line is listed once
    item: dict[str, Any]


class DigestDue(Event):
    """Command: send a clinic's digest for its local ``day`` (keyed by clinic)."""

    type: Literal["notifier.digest_due"] = "notifier.digest_due"
    clinic_id: Id
    day: date


EVENTS: tuple[type[Event], ...] = (OutboundRequested, RetryScheduled, DigestItemAdded, DigestDue)
