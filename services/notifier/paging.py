"""Escalation pages and the alerts the notifier remembers for them, pure.

The notifier keeps every clinician alert it sent (a :class:`KnownAlert`, in a table keyed
by patient like the alerts and alert-actions topics, so both land in one partition) with
its lifecycle (:class:`shared.alert_state.AlertState`, the one owner of that rule). An
``alert.escalated`` then becomes one SMS and one email per clinician named in ``notified``
(plus an SMS to the clinic's ``escalation_phone`` from level 3), saying what the alert is,
how old it is, the level, and who has already been paged, and ending with the alert's
ACK code. Pages are urgent: they go at any hour and ahead of routine messages at the rate
limiter. Each goes once per (alert, level, repeat, channel, recipient): its message key.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.ack_codes import ack_code
from shared.alert_state import AlertAction, AlertState
from shared.clinics import Clinic
from shared.codec import ANY_EVENT
from shared.events import AlertEscalated, ClinicianAlert, deterministic_id
from services.notifier.domain import Contact, Decision, Outgoing, Suppressed

log = logging.getLogger(__name__)
ESCALATION_PHONE_FROM_LEVEL = 3  # DESIGN.md: the clinic's escalation_phone is paged from level 3
ALERTS_KEPT_PER_PATIENT = 20  # the newest; older ones are no longer paged (unknown alerts still are)
PENDING = "~pending"  # the book's entry for actions that arrived before their alert
UNKNOWN_SUMMARY = "(not received yet: see the clinic's alert list)"


class KnownAlert(BaseModel):
    """What the notifier needs of an alert to page about it later."""

    model_config = ConfigDict(frozen=True)

    alert: ClinicianAlert
    first_name: str
    alerted: tuple[str, ...]  # clinician ids the alert itself went to
    state: AlertState

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id


def known_from(alert: ClinicianAlert, contact: Contact | None, clinic: Clinic) -> KnownAlert:
    alerted = tuple(c.id for c in clinic.on_call) if alert.severity in ("urgent", "high") else ()
    return KnownAlert(alert=alert, first_name=contact.first_name if contact else "(unknown)", alerted=alerted,
                      state=AlertState.raised(alert))


def with_action(known: KnownAlert, action: AlertAction) -> KnownAlert:
    return known.model_copy(update={"state": known.state.apply(action)})


def remember(book: dict[str, Any], known: KnownAlert) -> dict[str, Any]:
    """A patient's book (alert id -> stored alert) with ``known`` in it, the newest kept."""
    entries = {k: v for k, v in book.items() if k not in (known.alert_id, PENDING)}
    entries[known.alert_id] = known.model_dump(mode="json")
    kept = dict(list(entries.items())[-ALERTS_KEPT_PER_PATIENT:])
    pending = {k: v for k, v in book.get(PENDING, {}).items() if k != known.alert_id}
    return kept | ({PENDING: pending} if pending else {})


def recall(book: dict[str, Any] | None, alert_id: str) -> KnownAlert | None:
    stored = (book or {}).get(alert_id) if alert_id != PENDING else None
    return KnownAlert.model_validate(stored) if stored else None


def hold(book: dict[str, Any], action: AlertAction) -> dict[str, Any]:
    """The book with an action whose alert has not arrived yet kept for it (the two topics
    are read by different agents: after a restart the actions can run ahead)."""
    pending = dict(book.get(PENDING, {}))
    pending[action.alert_id] = [*pending.get(action.alert_id, []), action.model_dump(mode="json")][-10:]
    return book | {PENDING: dict(list(pending.items())[-ALERTS_KEPT_PER_PATIENT:])}


def with_held(book: dict[str, Any], known: KnownAlert) -> KnownAlert:
    """``known`` with the actions held for it applied."""
    for stored in book.get(PENDING, {}).get(known.alert_id, []):
        known = with_action(known, ANY_EVENT.validate_python(stored))
    return known


def already_paged(known: KnownAlert, clinic: Clinic) -> list[str]:
    """The names of everybody who has had this alert so far, in the order they got it."""
    ids = list(dict.fromkeys((*known.alerted, *known.state.paged)))
    return [person.name for cid in ids if (person := clinic.clinician(cid))]


def page_context(event: AlertEscalated, known: KnownAlert | None, clinic: Clinic,
                 contact: Contact | None = None) -> dict[str, Any]:
    """What a page says; the patient's name as the notifier knows it now (the alert may
    have come before the enrolment)."""
    alert = known.alert if known else None
    raised_at = alert.raised_at if alert else event.escalated_at
    return {
        "clinic_name": clinic.name,
        "severity": alert.severity if alert else "urgent",
        "patient_ref": event.patient_id,
        "first_name": contact.first_name if contact else known.first_name if known else "(unknown)",
        "summary": alert.summary if alert else UNKNOWN_SUMMARY,
        "age_minutes": minutes_between(raised_at, event.escalated_at),
        "level": event.level,
        "repeat": event.repeat,
        "paged": already_paged(known, clinic) if known else [],
        "ack_code": ack_code(event.alert_id),
    }


def minutes_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def recipients(event: AlertEscalated, clinic: Clinic) -> list[tuple[str, str]]:
    """(channel, address) of every page of this step: each named clinician's phone and
    email, then the clinic's escalation phone from level 3. A clinician id the clinics file
    does not know is skipped (and logged by id): the others are paged all the same."""
    found: list[tuple[str, str]] = []
    for clinician_id in dict.fromkeys(event.notified):
        person = clinic.clinician(clinician_id)
        if person is None:
            log.warning("page for alert %s names clinician %r, who is not in clinic %s", event.alert_id[:12],
                        clinician_id, clinic.id)
            continue
        found += [(channel, to) for channel, to in (("sms", person.phone), ("email", person.email)) if to]
    if event.level >= ESCALATION_PHONE_FROM_LEVEL and clinic.escalation_phone:
        found.append(("sms", clinic.escalation_phone))
    return list(dict.fromkeys(found))


def page_key(event: AlertEscalated, channel: str, to: str) -> str:
    return deterministic_id("page", event.alert_id, event.level, event.repeat, channel, to)


def pages(event: AlertEscalated, known: KnownAlert | None, clinic: Clinic, contact: Contact | None = None) -> list[Decision]:
    """The pages of one escalation step; none (recorded as suppressed) once somebody has
    taken or closed the alert: an acknowledgement that crossed the step on the wire."""
    context = page_context(event, known, clinic, contact)
    closed = known is not None and known.state.status != "open"
    decisions: list[Decision] = []
    for channel, to in recipients(event, clinic):
        key = page_key(event, channel, to)
        if closed:
            decisions.append(Suppressed(message_key=key, kind="page", channel=channel,  # type: ignore[arg-type]
                                        patient_id=event.patient_id, clinic_id=event.clinic_id,
                                        reason=f"alert already {known.state.status}"))  # type: ignore[union-attr]
            continue
        decisions.append(Outgoing(
            message_key=key, channel=channel, to=to, kind="page", language="en",  # type: ignore[arg-type]
            audience="clinician", urgent=True, patient_id=event.patient_id, clinic_id=event.clinic_id,
            context=context,
        ))
    return decisions

