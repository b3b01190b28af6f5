"""The short code a clinician replies with to take an alert ("Reply ACK 48 to take this").

A code is derived from the alert id alone (so the notifier that prints it and the survey
that reads the reply agree without talking to each other), and it is only ever looked up
among the few alerts of the replying clinician's own clinics. Two digits are easy to type
on a phone at 2 a.m.; two alerts of one clinic may share them, so a code is the start of a
longer digit string of the alert: when a reply's code fits several alerts, the clinician is
asked to pick with the shortest longer codes that tell them apart (:func:`distinguishing`),
never given a guess.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SHORT_LENGTH = 2  # the digits an alert's message shows
FULL_LENGTH = 12  # the digits an alert has: enough to tell any two alerts of a clinic apart
ACK_SEVERITIES = ("urgent", "high")  # alerts whose messages carry a code and may be taken by SMS


def ack_digits(alert_id: str) -> str:
    """The alert's whole digit string; never starts with 0 ("ACK 07" typed as "ACK 7")."""
    number = int.from_bytes(hashlib.sha256(f"ack|{alert_id}".encode()).digest()[:8], "big")
    return str(10 ** (FULL_LENGTH - 1) + number % (9 * 10 ** (FULL_LENGTH - 1)))


def ack_code(alert_id: str) -> str:
    """The code an alert's SMS, email and pages print."""
    return ack_digits(alert_id)[:SHORT_LENGTH]


def carries_code(severity: str) -> bool:
    return severity in ACK_SEVERITIES


def matching(code: str, alert_ids: Iterable[str]) -> list[str]:
    """The alerts a typed code can mean: those whose digits start with it (at least the
    short code's length: a single digit means nothing)."""
    if len(code) < SHORT_LENGTH or not code.isdigit():
        return []
    return [alert_id for alert_id in alert_ids if ack_digits(alert_id).startswith(code)]


def distinguishing(alert_ids: Iterable[str]) -> dict[str, str]:
    """The shortest codes (at least the short length) that tell these alerts apart, by alert id.

    Alerts whose digits are wholly equal cannot be told apart by code: each gets its full
    digit string and :func:`matching` will still find both."""
    ids = list(dict.fromkeys(alert_ids))
    digits = {alert_id: ack_digits(alert_id) for alert_id in ids}
    for length in range(SHORT_LENGTH, FULL_LENGTH + 1):
        prefixes = [d[:length] for d in digits.values()]
        if len(set(prefixes)) == len(prefixes):
            return {alert_id: d[:length] for alert_id, d in digits.items()}
    return digits
