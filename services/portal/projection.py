"""What each contract event becomes in the read model: plain functions, no database.

``rows_for(event)`` says which rows an event adds or changes; :mod:`services.portal.store`
writes them. ``lifecycle(actions)`` derives an alert's state from every action seen for it,
so that a repeated or out-of-order action changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Iterable
from typing import Any, Callable

from shared.events import (
    CHANNELS,
    AlertAcknowledged, AlertEscalated, AlertResolved, CheckinCompleted, CheckinDue, CheckinExpired,
    ClinicianAlert, ConsentChanged, CycleOverdue, Delivery, Event, MessageDelivered, MessageFailed,
    MessageSent, MessageSuppressed, PatientDischarged, PatientEnrolled, PatientSnapshot, ReminderDue,
    TimerSkipped, TreatmentRecorded,
)
from services.portal.fhir.ids import adverse_event_keys, fhir_id

SEVERITY_RANK = {"urgent": 0, "high": 1, "routine": 2, "review": 3}
KIND_LABEL = {"side_effects": "side effects", "headache_frequency": "headache days"}
EFFECTS = {1: "neck pain or stiffness", 2: "drooping eyelid", 3: "injection-site pain",
           4: "headache worse than usual", 5: "neck or face weakness"}


@dataclass
class Rows:
    """The writes one event (or a batch) asks for, grouped by kind of write."""

    known_patients: list[dict] = field(default_factory=list)  # insert if missing (a placeholder)
    snapshots: list[dict] = field(default_factory=list)  # upsert, the latest occurred_at wins
    discharges: list[str] = field(default_factory=list)
    consents: list[dict] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)  # the latest delivery outcome per patient
    treatments: list[dict] = field(default_factory=list)
    checkins: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)  # to and from patients, the latest status wins
    outbox: list[dict] = field(default_factory=list)  # FHIR resources for the push sink (insert if missing)

    @property
    def touched_alerts(self) -> set[str]:
        return {a["alert_id"] for a in self.alerts} | {a["alert_id"] for a in self.actions}


def rows_for(event: Event) -> Rows:
    return rows_for_all([event])


def rows_for_all(events: Iterable[Event]) -> Rows:
    """The writes for a batch, filled into one :class:`Rows` (none per event to merge)."""
    rows = Rows()
    for event in events:
        _add(event, rows)
    return rows


def _add(event: Event, rows: Rows) -> None:
    patient_id, clinic_id = getattr(event, "patient_id", None), getattr(event, "clinic_id", None)
    if not patient_id or not clinic_id:
        return  # nothing about a patient (an unknown sender's message, say): only remembered as seen (by the store)
    rows.known_patients.append({"patient_id": patient_id, "clinic_id": clinic_id, "first_name": patient_id})
    project = _PROJECTORS.get(type(event))
    if project is None and isinstance(event, Delivery):
        project = _delivery
    if project is not None:
        project(event, rows)


def _line(event: Event, at: datetime, title: str, detail: str | None = None, key: str | None = None) -> dict:
    """A timeline line; ``key`` names its cause when the contract dedupes by it (a treatment
    recorded twice, the same alert raised again), so that it is listed once."""
    return {"event_id": key or event.event_id, "patient_id": event.patient_id, "clinic_id": event.clinic_id,  # type: ignore[attr-defined]
            "at": at, "kind": event.type, "title": title[:300], "detail": detail}


def _snapshot(event: PatientSnapshot, rows: Rows) -> None:
    rows.snapshots.append({
        "patient_id": event.patient_id, "clinic_id": event.clinic_id, "first_name": event.first_name,
        "timezone": event.timezone, "language": event.language, "sms_consent": event.sms_consent,
        "email_consent": event.email_consent, "has_email": bool(event.email),
        "baseline_headache_days": event.baseline_headache_days, "snapshot_at": event.occurred_at,
        "discharged": False,
    })
    title = "Enrolled" if isinstance(event, PatientEnrolled) else "Details updated"
    rows.timeline.append(_line(event, event.occurred_at, title))


def _discharged(event: PatientDischarged, rows: Rows) -> None:
    rows.discharges.append(event.patient_id)
    rows.timeline.append(_line(event, event.occurred_at, "Discharged" + (f": {event.reason}" if event.reason else "")))


def _treatment(event: TreatmentRecorded, rows: Rows) -> None:
    rows.treatments.append({
        "treatment_id": event.treatment_id, "patient_id": event.patient_id, "clinic_id": event.clinic_id,
        "administered_on": event.administered_on, "units": event.units, "interval_weeks": event.interval_weeks,
    })
    units = f", {event.units:g} units" if event.units is not None else ""
    rows.timeline.append(_line(event, event.occurred_at, f"Treatment on {event.administered_on.isoformat()}{units}",
                               key=f"treatment:{event.treatment_id}"))


def _due(event: Event, rows: Rows) -> None:
    day = getattr(event, "day", None)
    if isinstance(event, CheckinDue):
        title = f"Check-in asked: {KIND_LABEL.get(event.kind, event.kind)} (day {day})"
    elif isinstance(event, CheckinExpired):
        title = f"Check-in went unanswered (day {day})"
    elif isinstance(event, ReminderDue):
        title = f"Booking reminder due (day {day})"
    elif isinstance(event, CycleOverdue):
        title = f"Cycle overdue: no treatment recorded by day {day}"
    elif isinstance(event, TimerSkipped):
        title = f"Skipped {event.kind or event.skipped_type} (day {day}): {event.reason}"
    else:
        return
    # a check-in asked is listed once per check-in: the clinic's response rate counts these
    key = f"asked:{event.checkin_id}" if isinstance(event, CheckinDue) else None
    rows.timeline.append(_line(event, event.due_at, title, key=key))  # type: ignore[attr-defined]


def _consent(event: ConsentChanged, rows: Rows) -> None:
    rows.consents.append({"patient_id": event.patient_id, "channels": [c for c in CHANNELS if event.covers(c)],
                          "granted": event.granted})
    channel = "all channels" if event.channel == "all" else event.channel.upper()
    verb = "given" if event.granted else "withdrawn"
    rows.timeline.append(_line(event, event.occurred_at, f"Consent {verb} for {channel} ({event.source})"))


def effects_text(effects: list[dict[str, Any]]) -> str:
    if not effects:
        return "none"
    return ", ".join(
        EFFECTS.get(int(e.get("code", 0)), str(e.get("reason") or e.get("code"))) + (f" ({e['severity']})" if e.get("severity") else "")
        for e in effects
    )


def answers_text(event: CheckinCompleted) -> str:
    answers = event.answers
    if event.kind == "side_effects":
        flags = "RED FLAGS: " + ", ".join(answers.get("red_flag_reasons") or []) if answers.get("red_flags") else "no red flags"
        return f"{flags}; effects: {effects_text(answers.get('effects') or [])}"
    parts = [f"{label} {answers[key]}" for key, label in (("headache_days", "headache days"), ("medication_days", "medication days")) if answers.get(key) is not None]
    return "; ".join(parts) or "no figures given"


def _checkin(event: CheckinCompleted, rows: Rows) -> None:
    answers = event.answers
    rows.checkins.append({
        "checkin_id": event.checkin_id, "patient_id": event.patient_id, "clinic_id": event.clinic_id,
        "kind": event.kind, "treatment_id": event.treatment_id, "cycle": event.cycle,
        "headache_days": answers.get("headache_days"), "medication_days": answers.get("medication_days"),
        "red_flags": answers.get("red_flags"), "effects": json.dumps(answers.get("effects") or []),
        "completed_at": event.occurred_at, "red_flag_reasons": json.dumps(answers.get("red_flag_reasons") or []),
        "raw_replies": json.dumps(event.raw_replies),
    })
    rows.messages += [_message(event, f"{event.checkin_id}-r{n}", "in", "sms", "reply", "received", event.occurred_at, body=reply)
                      for n, reply in enumerate(event.raw_replies, start=1)]
    rows.outbox += outbox_for_checkin(event)
    replies = " / ".join(f"“{r}”" for r in event.raw_replies)
    title = f"Check-in answered: {KIND_LABEL.get(event.kind, event.kind)}: {answers_text(event)}"
    rows.timeline.append(_line(event, event.occurred_at, title, replies or None, key=f"checkin:{event.checkin_id}"))


def _alert(event: ClinicianAlert, rows: Rows) -> None:
    rows.alerts.append({
        "alert_id": event.alert_id, "patient_id": event.patient_id, "clinic_id": event.clinic_id,
        "severity": event.severity, "severity_rank": SEVERITY_RANK[event.severity],
        "reasons": json.dumps(event.reasons), "summary": event.summary,
        "evidence": json.dumps(event.evidence, default=str), "raised_at": event.raised_at, "status": "open", "paged": "[]",
    })
    rows.outbox.append(outbox_row("Flag", event.alert_id, fhir_id(event.alert_id), "create"))
    reply = event.evidence.get("reply") or event.evidence.get("reply_text") or event.evidence.get("text")
    rows.timeline.append(_line(event, event.raised_at, f"{event.severity.upper()} alert: {event.summary}",
                               str(reply) if reply else None, key=f"alert:{event.alert_id}"))


def _action(event: AlertAcknowledged | AlertResolved | AlertEscalated, rows: Rows) -> None:
    at = action_time(event)
    rows.actions.append({"event_id": event.event_id, "alert_id": event.alert_id, "type": event.type, "at": at,
                         "body": event.model_dump_json()})
    if isinstance(event, AlertAcknowledged):
        rows.timeline.append(_line(event, at, f"Alert acknowledged by {event.by} ({event.via})"))
    elif isinstance(event, AlertResolved):
        rows.timeline.append(_line(event, at, f"Alert resolved by {event.by}: {event.outcome.replace('_', ' ')}", event.note))
    else:
        paged = ", ".join(event.notified) or "nobody"
        rows.timeline.append(_line(event, at, f"Alert escalated to level {event.level}: paged {paged}"))


def _delivery(event: Delivery, rows: Rows) -> None:
    status = {MessageSent: "sent", MessageDelivered: "delivered", MessageFailed: "failed",
              MessageSuppressed: "suppressed"}.get(type(event), event.type)
    reason = event.error if isinstance(event, MessageFailed) else event.reason if isinstance(event, MessageSuppressed) else None
    if event.kind != "alert":  # a clinician's copy of an alert says nothing about reaching the patient
        rows.deliveries.append({"patient_id": event.patient_id, "status": status, "reason": reason, "at": event.occurred_at})
        rows.messages.append(_message(event, event.message_key, "out", event.channel, event.kind, status, event.occurred_at, reason=reason))
    what = "clinician alert" if event.kind == "alert" else event.kind.replace("_", " ")
    rows.timeline.append(_line(event, event.occurred_at, f"{event.channel.upper()} {status}: {what}", reason))


def _message(event: Event, message_id: str, direction: str, channel: str, kind: str, status: str, at: datetime,
             *, reason: str | None = None, body: str | None = None) -> dict:
    return {"message_id": message_id, "patient_id": event.patient_id, "clinic_id": event.clinic_id,  # type: ignore[attr-defined]
            "direction": direction, "channel": channel, "kind": kind, "status": status, "reason": (reason or None) and reason[:300],
            "body": body, "at": at, "updated_at": at}


def outbox_row(resource_type: str, source_id: str, resource_id: str, change: str) -> dict:
    """A FHIR resource the push sink is to send; its key makes a replayed event add nothing."""
    return {"outbox_key": f"{resource_type}/{resource_id}/{change}", "resource_type": resource_type,
            "source_id": source_id, "resource_id": resource_id, "change": change}


def outbox_for_checkin(event: CheckinCompleted) -> list[dict]:
    """The QuestionnaireResponse, and for side effects an AdverseEvent for each one reported."""
    found = [outbox_row("QuestionnaireResponse", event.checkin_id, fhir_id(event.checkin_id), "create")]
    if event.kind == "side_effects":
        keys = adverse_event_keys(event.checkin_id, event.answers.get("red_flags"), event.answers.get("effects") or [])
        found += [outbox_row("AdverseEvent", event.checkin_id, fhir_id(key), "create") for key in keys]
    return found


_PROJECTORS: dict[type, Callable[[Any, Rows], None]] = {
    PatientEnrolled: _snapshot,
    **{cls: _snapshot for cls in PatientSnapshot.__subclasses__()},
    PatientDischarged: _discharged,
    TreatmentRecorded: _treatment,
    ReminderDue: _due, CheckinDue: _due, CheckinExpired: _due, CycleOverdue: _due, TimerSkipped: _due,
    ConsentChanged: _consent,
    CheckinCompleted: _checkin,
    ClinicianAlert: _alert,
    AlertAcknowledged: _action, AlertResolved: _action, AlertEscalated: _action,
}


def action_time(event: AlertAcknowledged | AlertResolved | AlertEscalated) -> datetime:
    if isinstance(event, AlertAcknowledged):
        return event.acknowledged_at
    if isinstance(event, AlertResolved):
        return event.resolved_at
    return event.escalated_at


def lifecycle(actions: list[AlertAcknowledged | AlertResolved | AlertEscalated]) -> dict[str, Any]:
    """An alert's state from every action on it, whatever order they came in: the first
    acknowledgement and the first resolution count, later ones change nothing."""
    ordered = sorted(actions, key=action_time)
    ack = next((a for a in ordered if isinstance(a, AlertAcknowledged)), None)
    resolved = next((a for a in ordered if isinstance(a, AlertResolved)), None)
    paged = [{"level": a.level, "repeat": a.repeat, "notified": a.notified, "at": a.escalated_at.isoformat()}
             for a in ordered if isinstance(a, AlertEscalated)]
    state: dict[str, Any] = {"status": "resolved" if resolved else "acknowledged" if ack else "open", "paged": json.dumps(paged),
                             "acknowledged_by": None, "acknowledged_via": None, "acknowledged_at": None,
                             "resolved_by": None, "resolved_at": None, "outcome": None, "note": None}
    if ack:
        state |= {"acknowledged_by": ack.by, "acknowledged_via": ack.via, "acknowledged_at": ack.acknowledged_at}
    if resolved:
        state |= {"resolved_by": resolved.by, "resolved_at": resolved.resolved_at, "outcome": resolved.outcome, "note": resolved.note}
    return state
