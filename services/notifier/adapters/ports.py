"""The notifier's outbound ports and what a provider can answer.

Real adapters, console adapters and the in-process fakes all implement these. An adapter
translates its provider's answers (HTTP statuses, Twilio error numbers, SMTP replies) into
one :data:`Outcome`; nothing outside ``adapters/`` knows a provider's error number.
An outcome's ``code`` is opaque outside: a metric label and ``message.failed.error_code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sent:
    provider_id: str


@dataclass(frozen=True)
class RetryLater:
    """A passing fault (429, 5xx, network, timeout): worth trying again. ``after``: the
    provider's hint in seconds (Retry-After), or ``None`` for our own backoff."""

    reason: str
    code: str | None = None
    after: float | None = None


@dataclass(frozen=True)
class RecipientOptedOut:
    """The recipient unsubscribed at the provider (STOP): no message may go there."""

    reason: str
    code: str | None = None


@dataclass(frozen=True)
class RecipientUnreachable:
    """The address can never receive (not a mobile, invalid, landline...)."""

    reason: str
    code: str | None = None


@dataclass(frozen=True)
class CredentialsRejected:
    """The provider refused our credentials: nothing will go until an operator fixes them."""

    reason: str
    code: str | None = None


@dataclass(frozen=True)
class Rejected:
    """This message can never be sent as it is (bad body, bad sender...)."""

    reason: str
    code: str | None = None


Outcome = Sent | RetryLater | RecipientOptedOut | RecipientUnreachable | CredentialsRejected | Rejected


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str, idempotency_key: str, tags: Mapping[str, str] | None = None) -> Outcome:
        """Send one SMS. ``tags`` come back with its delivery receipt (they must name no
        phone number and no text). Never raises for a provider's answer: returns it."""


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, text: str, html: str | None, idempotency_key: str) -> Outcome:
        """Send one email; a :class:`Sent` carries its Message-ID."""
