"""Email adapters: SMTP (aiosmtplib) and the console."""

from __future__ import annotations

import sys
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from services.notifier.adapters.ports import Outcome, Rejected, RetryLater, Sent


def build_message(sender: str, to: str, subject: str, text: str, html: str | None, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(idstring=key[:32], domain="cyclecare")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


class SmtpEmailSender:
    def __init__(
        self, host: str, port: int, *, sender: str, username: str | None = None, password: str | None = None,
        starttls: bool = False, timeout: float = 15.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout

    async def send_email(self, to: str, subject: str, text: str, html: str | None, idempotency_key: str) -> Outcome:
        message = build_message(self._sender, to, subject, text, html, idempotency_key)
        try:
            await aiosmtplib.send(
                message, hostname=self._host, port=self._port, username=self._username,
                password=self._password, start_tls=self._starttls, timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.code)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return RetryLater(f"smtp: {type(exc).__name__}", "network")
        return Sent(message["Message-ID"])


def smtp_outcome(code: int) -> Outcome:
    """4xx: a passing fault; 5xx: never as it is."""
    if 400 <= code < 500:
        return RetryLater(f"smtp {code}", str(code))
    return Rejected(f"smtp {code}", str(code))


class ConsoleEmailSender:
    def __init__(self, stream=None) -> None:  # noqa: ANN001
        self._stream = stream or sys.stdout

    async def send_email(self, to: str, subject: str, text: str, html: str | None, idempotency_key: str) -> Outcome:
        print(f"[email to {to.split('@')[-1]}] {subject}\n{text}\n", file=self._stream, flush=True)
        return Sent(f"<console-{idempotency_key[:16]}@cyclecare>")
