"""One alert's lifecycle, as every service that acts on alerts sees it (DESIGN.md: alert lifecycle).

An alert is open until acknowledged, and acknowledged until resolved. Actions can arrive
twice or out of order (at-least-once delivery, several channels): the earliest
acknowledgement and the earliest resolution count, a later one changes nothing, and a
resolution without an acknowledgement also ends the alert. ``AlertState`` is a pure value:
``apply`` returns the next state, ``allows`` says whether an action would change anything
(the HTTP API answers 409 when it would not).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert

Status = Literal["open", "acknowledged", "resolved"]
AlertAction = AlertAcknowledged | AlertResolved | AlertEscalated


@dataclass(frozen=True)
class AlertState:
    alert_id: str
    patient_id: str
    clinic_id: str
    severity: str
    raised_at: datetime
    summary: str = ""
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome: str | None = None
    escalations: tuple[tuple[int, int], ...] = ()  # (level, repeat) pages already sent
    paged: tuple[str, ...] = ()  # clinician ids paged so far, in order

    @classmethod
    def raised(cls, alert: ClinicianAlert) -> "AlertState":
        return cls(alert_id=alert.alert_id, patient_id=alert.patient_id, clinic_id=alert.clinic_id,
                   severity=alert.severity, raised_at=alert.raised_at, summary=alert.summary)

    @property
    def status(self) -> Status:
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acknowledged_at is not None else "open"

    def allows(self, action: Literal["ack", "resolve"]) -> bool:
        """Would this action move the alert on? Acknowledging twice, or after resolution, would not."""
        if action == "ack":
            return self.status == "open"
        return self.status != "resolved"

    def apply(self, action: AlertAction) -> "AlertState":
        if isinstance(action, AlertAcknowledged):
            if self.acknowledged_at is not None and self.acknowledged_at <= action.acknowledged_at:
                return self
            return replace(self, acknowledged_by=action.by, acknowledged_via=action.via,
                           acknowledged_at=action.acknowledged_at)
        if isinstance(action, AlertResolved):
            if self.resolved_at is not None and self.resolved_at <= action.resolved_at:
                return self
            return replace(self, resolved_by=action.by, resolved_at=action.resolved_at, outcome=action.outcome)
        step = (action.level, action.repeat)
        if step in self.escalations:
            return self
        paged = self.paged + tuple(c for c in action.notified if c not in self.paged)
        return replace(self, escalations=tuple(sorted((*self.escalations, step))), paged=paged)

    def time_to_acknowledge(self) -> float | None:
        """Seconds from the alert being raised to its first acknowledgement."""
        if self.acknowledged_at is None:
            return None
        return max(0.0, (self.acknowledged_at - self.raised_at).total_seconds())
