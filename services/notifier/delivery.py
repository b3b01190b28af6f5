"""What to do after a provider answered: the notifier's delivery rules, pure.

* ``sent``: record it.
* ``retry_later``: try again with exponential backoff capped at ``MAX_WAIT`` (5 min). A
  routine message keeps trying for ``ROUTINE_ATTEMPTS`` attempts (at least 24 h of
  outage: every capped wait is at least half the cap); an urgent one never gives up while
  the outage lasts. Nothing turns into ``message.failed`` because a provider was down.
* ``credentials_rejected``: halt the channel for ``HALT_SECONDS`` and try the message
  again after the halt (not counted as an attempt).
* ``recipient_opted_out``: the message fails and the patient is opted out of SMS.
* ``recipient_unreachable``: the message fails and the clinic hears the patient's phone
  cannot be reached.
* ``rejected``: the message fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.events import ClinicianAlert, deterministic_id
from services.notifier.adapters.ports import (
    CredentialsRejected,
    Outcome,
    RecipientOptedOut,
    RecipientUnreachable,
    RetryLater,
    Sent,
)

MAX_WAIT = 300.0
HALT_SECONDS = 60.0
ROUTINE_ATTEMPTS = 600  # 600 waits of >= 150 s once capped: more than 24 h of outage


@dataclass(frozen=True)
class Record:
    provider_id: str


@dataclass(frozen=True)
class Retry:
    attempt: int
    wait: float


@dataclass(frozen=True)
class Halt:
    wait: float


@dataclass(frozen=True)
class Fail:
    error: str
    code: str | None
    opt_out: bool = False
    unreachable: bool = False


Action = Record | Retry | Halt | Fail


def backoff(attempt: int, key: str) -> timedelta:
    """Exponential backoff with deterministic jitter (so a redelivered retry waits the same)."""
    jitter = int(key[:4], 16) / 0xFFFF if _is_hex(key[:4]) else 0.5
    return timedelta(seconds=min(MAX_WAIT, 2.0 ** min(attempt, 30)) * (0.5 + jitter / 2))  # no float overflow


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def after(outcome: Outcome, *, attempt: int, key: str, urgent: bool, to_patient: bool) -> Action:
    """The one decision after a provider's answer to attempt ``attempt`` (0 is the first)."""
    if isinstance(outcome, Sent):
        return Record(outcome.provider_id)
    if isinstance(outcome, RetryLater):
        if urgent or attempt + 1 < ROUTINE_ATTEMPTS:
            wait = max(backoff(attempt, key).total_seconds(), min(outcome.after or 0.0, MAX_WAIT))
            return Retry(attempt + 1, wait)
        return Fail(f"gave up after {ROUTINE_ATTEMPTS} attempts: {outcome.reason}", outcome.code)
    if isinstance(outcome, CredentialsRejected):
        return Halt(HALT_SECONDS)
    if isinstance(outcome, RecipientOptedOut):
        return Fail(outcome.reason, outcome.code, opt_out=to_patient)
    if isinstance(outcome, RecipientUnreachable):
        return Fail(outcome.reason, outcome.code, unreachable=to_patient)
    return Fail(outcome.reason, outcome.code)


def unreachable_alert(patient_id: str, clinic_id: str, cause: str, summary: str, evidence: dict[str, Any],
                      now: datetime) -> ClinicianAlert:
    """The clinic hears that messages to a patient's phone do not arrive: the provider
    said so when sending, or receipts said so several times in a row (``cause`` tells them
    apart, so the same cause gives the same alert id)."""
    return ClinicianAlert(
        alert_id=deterministic_id("unreachable", patient_id, cause), patient_id=patient_id, clinic_id=clinic_id,
        severity="routine", reasons=["unreachable"], summary=summary, raised_at=now, evidence=evidence,
    )
