"""The notifier's contact table, and a wait for a record another agent is about to write.

The patients topic is read by another agent, so an enrolment and a due event sent together
can arrive in either order: :meth:`Contacts.soon` waits for the write itself (woken by
:meth:`Contacts.save`), up to a deadline, instead of polling the table. :class:`Waits` is
that wait, shared with the alert book (an escalation can overtake its alert the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from services.notifier import domain

CONTACT_WAIT_SECONDS = 5.0
T = TypeVar("T")


class Waits:
    """Waiters for the first write of a key, woken by :meth:`written`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._written: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}  # waiters per key: the last one to give up forgets the event

    def written(self, key: str) -> None:
        if (event := self._written.pop(key, None)) is not None:
            event.set()

    async def until(self, key: str | None, read: Callable[[], T | None]) -> T | None:
        """``read()``, waiting up to the deadline for the key's first write when it finds
        nothing. The wait is this record's own; other records flow on."""
        if (found := read()) is not None or not key:
            return found
        written = self._written.setdefault(key, asyncio.Event())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await asyncio.wait_for(written.wait(), self.seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                if self._written.get(key) is written:
                    del self._written[key]
        return read()


class Contacts:
    def __init__(self, table: MutableMapping[str, Any], wait_seconds: float = CONTACT_WAIT_SECONDS) -> None:
        self._table = table
        self._waits = Waits(wait_seconds)

    def get(self, patient_id: str | None) -> domain.Contact | None:
        stored = self._table.get(patient_id) if patient_id else None
        return domain.Contact.model_validate(stored) if stored else None

    def save(self, contact: domain.Contact) -> None:
        self._table[contact.patient_id] = contact.model_dump(mode="json")
        self._waits.written(contact.patient_id)

    async def soon(self, patient_id: str | None) -> domain.Contact | None:
        """The patient's contact, waiting up to the deadline for its first write."""
        return await self._waits.until(patient_id, lambda: self.get(patient_id))
