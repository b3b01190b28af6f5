"""In-process fakes of the senders: same ports, no network. A test scripts the next
answers with :meth:`answer_next` (provider-neutral outcomes) and reads what was sent."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.notifier.adapters.ports import Outcome, Sent


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    key: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str | None
    key: str


@dataclass
class _Scripted:
    _next: list[Outcome] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def answer_next(self, *outcomes: Outcome) -> None:
        """The next sends get these answers (and send nothing), in order."""
        self._next.extend(outcomes)

    def _answer(self) -> Outcome | None:
        return self._next.pop(0) if self._next else None


@dataclass
class FakeSmsSender(_Scripted):
    sent: list[Sms] = field(default_factory=list)

    async def send_sms(self, to: str, body: str, idempotency_key: str, tags: Mapping[str, str] | None = None) -> Outcome:
        if (scripted := self._answer()) is not None:
            return scripted
        self.sent.append(Sms(to, body, idempotency_key, dict(tags or {})))
        return Sent(f"fake-sms-{next(self._ids)}")


@dataclass
class FakeEmailSender(_Scripted):
    sent: list[Email] = field(default_factory=list)

    async def send_email(self, to: str, subject: str, text: str, html: str | None, idempotency_key: str) -> Outcome:
        if (scripted := self._answer()) is not None:
            return scripted
        self.sent.append(Email(to, subject, text, html, idempotency_key))
        return Sent(f"<fake-{next(self._ids)}@cyclecare>")
