"""The alerts the notifier has sent, kept for their escalation pages and the digest.

A table keyed by patient (alerts and alert-actions are keyed by patient too, so a patient's
alerts and their actions are handled by the worker that owns this entry). Every change is
read and written without an await in between: the alerts and the alert-actions agents
share the entry.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from shared.alert_state import AlertAction
from services.notifier import paging
from services.notifier.contacts import Waits
from services.notifier.paging import KnownAlert

ALERT_WAIT_SECONDS = 5.0  # an escalation that overtook its alert (both read at once after a restart)


class AlertBook:
    def __init__(self, table: MutableMapping[str, Any], wait_seconds: float = ALERT_WAIT_SECONDS) -> None:
        self._table = table
        self._waits = Waits(wait_seconds)

    def get(self, patient_id: str, alert_id: str) -> KnownAlert | None:
        return paging.recall(self._table.get(patient_id), alert_id)

    def save(self, known: KnownAlert) -> None:
        """Store ``known``, with any action that arrived before it applied."""
        patient_id = known.alert.patient_id
        book = self._table.get(patient_id) or {}
        self._table[patient_id] = paging.remember(book, paging.with_held(book, known))
        self._waits.written(f"{patient_id}|{known.alert_id}")

    def apply(self, action: AlertAction) -> tuple[KnownAlert | None, KnownAlert | None]:
        """The alert before and after ``action``; both None for an alert not seen yet, for
        which the action is held until it arrives."""
        before = self.get(action.patient_id, action.alert_id)
        if before is None:
            self._table[action.patient_id] = paging.hold(self._table.get(action.patient_id) or {}, action)
            return None, None
        after = paging.with_action(before, action)
        if after != before:
            self.save(after)
        return before, after

    async def soon(self, patient_id: str, alert_id: str) -> KnownAlert | None:
        return await self._waits.until(f"{patient_id}|{alert_id}", lambda: self.get(patient_id, alert_id))
