"""The envelope every cyclecare event shares, and the field types events are made of.

The families of events are in their own modules: the public contract in
:mod:`shared.events`, each service's internal events in ``shared/*_events.py``. Bytes <->
model conversion lives in :mod:`shared.codec`, nowhere else.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.phones import e164
from shared.limits import MAX_ID, MAX_PHONE, MAX_SMS_BODY, MAX_TEXT, MAX_TIMEZONE, MAX_TYPE

SCHEMA_VERSION = 1


def new_event_id() -> str:
    return uuid.uuid4().hex


def deterministic_id(*parts: object) -> str:
    """An id that is the same every time the same cause is seen (idempotency keys)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset (RFC 3339)")
    return value


def _iana(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# The length limits (shared.limits) are checked before the validators run, so no validator
# ever sees an unbounded string.
E164 = Annotated[str, Field(max_length=MAX_PHONE), AfterValidator(e164)]
TimeZoneName = Annotated[str, Field(max_length=MAX_TIMEZONE), AfterValidator(_iana)]
Id = Annotated[str, Field(max_length=MAX_ID)]
RequiredId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Code = Annotated[str, Field(max_length=MAX_TYPE)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
SmsBody = Annotated[str, Field(max_length=MAX_SMS_BODY)]
Language = Literal["en", "es"]
Severity = Literal["urgent", "high", "routine", "review"]
Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")
CheckinKind = Literal["side_effects", "headache_frequency"]


class Event(BaseModel):
    """The envelope every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Code
    version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_ID)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)


