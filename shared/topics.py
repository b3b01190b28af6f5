"""Every topic cyclecare uses, in one place.

The contract names are ``cyclecare.<name>``. ``CYCLECARE_TOPIC_NAMESPACE`` replaces the
``cyclecare`` prefix, so that test runs and staging environments can share a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC = ("patients", "treatments", "due", "consent", "checkins", "alerts", "deliveries", "dlq", "alert-actions")
# Internal topics: part of no contract, free to change.
INTERNAL = ("inbound", "outbound", "scheduler-commands", "notifier-retry", "survey-phones", "survey-replies",
            "scheduler-alerts")


@dataclass(frozen=True)
class Topics:
    namespace: str = "cyclecare"

    def name(self, short: str) -> str:
        return f"{self.namespace}.{short}"

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

    def all(self) -> list[str]:
        return [self.name(t) for t in PUBLIC + INTERNAL]
