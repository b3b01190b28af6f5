"""The notifier's outbound ports. Real adapters, console adapters and test fakes all
implement these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class ProviderError(Exception):
    """A provider refused or failed a message.

    ``retryable``: worth trying again later (429, 5xx, network). ``code``: the provider's
    error code when it gave one (Twilio 21610, 21211, ...).
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable


AUTH_ERRORS = frozenset({"20003", "20404"})


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str, idempotency_key: str, tags: Mapping[str, str] | None = None) -> str:
        """Send one SMS; return the provider's message id. ``tags`` come back with its
        delivery receipt (they must name no phone number and no text)."""


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, text: str, html: str | None, idempotency_key: str) -> str:
        """Send one email; return its Message-ID."""
