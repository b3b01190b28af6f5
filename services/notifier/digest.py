"""The daily digest: routine and review alerts, and expired check-ins, collected per clinic
and mailed to the clinic's clinicians once a day at the clinic's ``digest_hour``; with the
urgent and high alerts and their lifecycle: who acknowledged each and how long it took, who
resolved it and how. An urgent or high alert not yet resolved is listed again every day.

Pure: lines in, decisions out. The app keeps the pending lines of a clinic in a table
keyed by clinic id (every line is re-keyed by clinic on the notifier's internal topic, so
one worker owns a clinic's digest) and asks :func:`due_day` on a timer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.ack_codes import ACK_SEVERITIES
from shared.clinics import Clinic
from shared.events import ClinicianAlert, Event, deterministic_id
from shared.notifier_events import DigestItemAdded
from services.notifier.domain import Contact, Outgoing, clinic_time
from services.notifier.paging import KnownAlert

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


def line_for_lifecycle(known: KnownAlert, cause: Event, clinic: Clinic) -> DigestItemAdded | None:
    """The digest line of an urgent or high alert as it stands after ``cause`` (its raising or
    an action on it): open, or taken by whom after how long, or resolved by whom and how."""
    alert, state = known.alert, known.state
    if alert.severity not in ACK_SEVERITIES:
        return None
    item = {
        "severity": alert.severity, "patient_ref": alert.patient_id, "first_name": known.first_name,
        "summary": alert.summary, "raised_at": clinic_time(alert.raised_at, clinic), "status": state.status,
        "acknowledged_by": _name(clinic, state.acknowledged_by), "acknowledged_via": state.acknowledged_via,
        "ack_minutes": None if (seconds := state.time_to_acknowledge()) is None else int(seconds // 60),
        "resolved_by": _name(clinic, state.resolved_by), "outcome": state.outcome,
    }
    return DigestItemAdded(event_id=deterministic_id("digest", cause.event_id), clinic_id=clinic.id,
                           item_key=_line_key(alert), item=item)


def _name(clinic: Clinic, clinician_id: str | None) -> str | None:
    person = clinic.clinician(clinician_id) if clinician_id else None
    return person.name if person else clinician_id


def carried_over(item: dict[str, Any]) -> bool:
    """Still news tomorrow: an urgent or high alert nobody has resolved."""
    return item.get("status") in ("open", "acknowledged")


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
