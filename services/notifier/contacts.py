"""The notifier's contact table, and a wait for a contact another agent is about to write.

The patients topic is read by another agent, so an enrolment and a due event sent together
can arrive in either order: :meth:`Contacts.soon` waits for the write itself (woken by
:meth:`Contacts.save`), up to a deadline, instead of polling the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from services.notifier import domain

CONTACT_WAIT_SECONDS = 5.0


class Contacts:
    def __init__(self, table: MutableMapping[str, Any], wait_seconds: float = CONTACT_WAIT_SECONDS) -> None:
        self._table = table
        self._wait_seconds = wait_seconds
        self._written: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}  # waiters per patient: the last one to give up forgets the event

    def get(self, patient_id: str | None) -> domain.Contact | None:
        stored = self._table.get(patient_id) if patient_id else None
        return domain.Contact.model_validate(stored) if stored else None

    def save(self, contact: domain.Contact) -> None:
        self._table[contact.patient_id] = contact.model_dump(mode="json")
        if (written := self._written.pop(contact.patient_id, None)) is not None:
            written.set()

    async def soon(self, patient_id: str | None) -> domain.Contact | None:
        """The patient's contact, waiting up to the deadline for its first write. The wait
        is this record's own; other records flow on."""
        if (found := self.get(patient_id)) is not None or not patient_id:
            return found
        written = self._written.setdefault(patient_id, asyncio.Event())
        self._waiting[patient_id] = self._waiting.get(patient_id, 0) + 1
        try:
            await asyncio.wait_for(written.wait(), self._wait_seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiting[patient_id] -= 1
            if not self._waiting[patient_id]:
                del self._waiting[patient_id]
                if self._written.get(patient_id) is written:
                    del self._written[patient_id]
        return self.get(patient_id)
