"""The daily digest: routine and review alerts, and expired check-ins, collected per clinic
and mailed to the clinic's clinicians once a day at the clinic's ``digest_hour``.

Pure: lines in, decisions out. The app keeps the pending lines of a clinic in a table
keyed by clinic id (every line is re-keyed by clinic on the notifier's internal topic, so
one worker owns a clinic's digest) and asks :func:`due_day` on a timer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.clinics import Clinic
from shared.events import ClinicianAlert, deterministic_id
from shared.notifier_events import DigestItemAdded
from services.notifier.domain import Contact, Outgoing, clinic_time

DIGEST_SEVERITIES = ("routine", "review")


def due_day(clinic: Clinic, now: datetime) -> date | None:
    """The clinic's local date once its digest hour has come that day, else ``None``."""
    local = now.astimezone(ZoneInfo(clinic.timezone))
    return local.date() if local.hour >= clinic.rules.digest_hour else None


def _line_key(alert: ClinicianAlert) -> str:
    return f"alert:{alert.alert_id}"


def line_for_alert(alert: ClinicianAlert, contact: Contact | None, clinic: Clinic) -> DigestItemAdded | None:
    if alert.severity not in DIGEST_SEVERITIES:
        return None
    item = {
        "severity": alert.severity, "patient_ref": alert.patient_id,
        "first_name": contact.first_name if contact else "(unknown)",
        "summary": alert.summary, "raised_at": clinic_time(alert.raised_at, clinic),
    }
    return DigestItemAdded(event_id=deterministic_id("digest", alert.event_id), clinic_id=clinic.id,
                           item_key=_line_key(alert), item=item)


def digest_messages(clinic: Clinic, day: date, lines: dict[str, dict[str, Any]]) -> list[Outgoing]:
    """One email per clinician with an address; nothing when there is nothing to report."""
    if not lines:
        return []
    alerts = sorted(lines.values(), key=lambda line: str(line.get("raised_at")))
    context = {"clinic_name": clinic.name, "date": day.isoformat(), "alerts": alerts}
    return [
        Outgoing(
            message_key=deterministic_id("digest", clinic.id, day.isoformat(), clinician.email),
            channel="email", to=clinician.email, kind="digest", language="en", audience="clinician",
            clinic_id=clinic.id, context=context | {"recipient": clinician.name},  # two clinicians' copies differ visibly
        )
        for clinician in clinic.clinicians if clinician.email
    ]
