"""Every topic cyclecare uses, in one place.

The contract names are ``cyclecare.<name>``. ``CYCLECARE_TOPIC_NAMESPACE`` replaces the
``cyclecare`` prefix, so that test runs and staging environments can share a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PUBLIC = ("patients", "treatments", "due", "consent", "checkins", "alerts", "deliveries", "dlq", "alert-actions")
# Internal topics: part of no contract, free to change.
INTERNAL = ("inbound", "outbound", "scheduler-commands", "notifier-retry", "survey-phones", "survey-replies",
            "survey-clinician-alerts", "scheduler-alerts")

# Route by event type: the one table of which topic each event is published to. Domain
# outcomes name events; :meth:`Topics.of` finds their topic (a re-keying, such as the
# survey's phone index, and the DLQ name their topic themselves).
TOPIC_OF: dict[str, str] = {
    **dict.fromkeys(("patient.enrolled", "patient.updated", "patient.discharged"), "patients"),
    "treatment.recorded": "treatments",
    **dict.fromkeys(("reminder.due", "checkin.due", "checkin.expired", "cycle.overdue", "timer.skipped"), "due"),
    "consent.changed": "consent",
    "checkin.completed": "checkins",
    "clinician.alert": "alerts",
    **dict.fromkeys(("message.sent", "message.delivered", "message.failed", "message.suppressed"), "deliveries"),
    **dict.fromkeys(("alert.acknowledged", "alert.resolved", "alert.escalated"), "alert-actions"),
    "sms.received": "inbound",
    "outbound.requested": "outbound",
    "survey.reply": "survey-replies",
    "survey.alert_noted": "survey-clinician-alerts",
    "scheduler.fire": "scheduler-commands",
    "scheduler.alert_deadline": "scheduler-alerts",
    **dict.fromkeys(("notifier.retry", "notifier.digest_item", "notifier.digest_due"), "notifier-retry"),
}


class Typed(Protocol):
    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class Topics:
    namespace: str = "cyclecare"

    def name(self, short: str) -> str:
        return f"{self.namespace}.{short}"

    def of(self, event: Typed) -> str:
        """The topic an event is published to (:data:`TOPIC_OF`)."""
        return self.name(TOPIC_OF[event.type])

    @property
    def patients(self) -> str:
        return self.name("patients")

    @property
    def treatments(self) -> str:
        return self.name("treatments")

    @property
    def due(self) -> str:
        return self.name("due")

    @property
    def consent(self) -> str:
        return self.name("consent")

    @property
    def checkins(self) -> str:
        return self.name("checkins")

    @property
    def alerts(self) -> str:
        return self.name("alerts")

    @property
    def deliveries(self) -> str:
        return self.name("deliveries")

    @property
    def alert_actions(self) -> str:
        return self.name("alert-actions")

    @property
    def dlq(self) -> str:
        return self.name("dlq")

    @property
    def inbound(self) -> str:
        return self.name("inbound")

    @property
    def outbound(self) -> str:
        return self.name("outbound")

    @property
    def scheduler_commands(self) -> str:
        return self.name("scheduler-commands")

    @property
    def scheduler_alerts(self) -> str:
        """Alerts and their actions re-keyed by ``alert_id``, and the escalation deadlines."""
        return self.name("scheduler-alerts")

    @property
    def notifier_retry(self) -> str:
        return self.name("notifier-retry")

    @property
    def survey_phones(self) -> str:
        return self.name("survey-phones")

    @property
    def survey_replies(self) -> str:
        return self.name("survey-replies")

    @property
    def survey_clinician_alerts(self) -> str:
        """Urgent and high alerts and their actions, re-keyed by the phone of each clinician of the clinic."""
        return self.name("survey-clinician-alerts")

    def all(self) -> list[str]:
        return [self.name(t) for t in PUBLIC + INTERNAL]
