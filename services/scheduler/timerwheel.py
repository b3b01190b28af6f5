"""An in-memory index of when each patient's next timer fires.

The durable truth is the ``schedules`` table; this index only makes a tick cost
proportional to the timers that are due (a heap pop each), not to the patients held.
It is rebuilt from the table after every rebalance.
"""

from __future__ import annotations

import heapq
from datetime import datetime


class TimerWheel:
    """``max_asked`` bounds the fire commands in flight: a catch-up of 100,000 patients sends
    them a slice at a time as answers come back, instead of all at once (and all again when
    the first ones are not answered within the retry delay)."""

    def __init__(self, max_asked: int | None = None) -> None:
        self._heap: list[tuple[float, str]] = []
        self._earliest: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._partitions: dict[str, int] = {}  # where each patient's schedule is kept, when known
        self._asked: set[str] = set()  # patients with a fire command sent and not yet answered
        self.max_asked = max_asked
        self.timers = 0  # timers held by the patients in the wheel (a patient has several)

    def __len__(self) -> int:
        return len(self._earliest)

    def set(self, patient_id: str, when: datetime | None, timers: int = 1, partition: int | None = None) -> None:
        """Make ``when`` the next moment of ``patient_id`` (``None``: nothing pending);
        ``timers`` is how many timers the patient holds, for the pending-timers figure;
        ``partition`` where the patient's schedule is kept, if known (fire commands go there).
        This is also the answer to a fire command for the patient."""
        self._asked.discard(patient_id)
        if partition is not None:
            self._partitions[patient_id] = partition
        self.timers += (timers if when is not None else 0) - self._counts.pop(patient_id, 0)
        if when is None:
            self._earliest.pop(patient_id, None)
            self._partitions.pop(patient_id, None)
            return
        self._counts[patient_id] = timers
        stamp = when.timestamp()
        if self._earliest.get(patient_id) == stamp:
            return
        self._earliest[patient_id] = stamp
        heapq.heappush(self._heap, (stamp, patient_id))
        if len(self._heap) > 2 * len(self._earliest) + 1024:
            self._compact()

    @property
    def asked(self) -> int:
        """Fire commands sent and not answered yet."""
        return len(self._asked)

    def pop_due(self, now: datetime, retry_at: datetime) -> list[str]:
        """Patients with a timer due at ``now``, each once, earliest first, while fewer than
        ``max_asked`` are waiting for an answer. Each stays in the wheel due again at
        ``retry_at``, so a fire command that is never answered is sent again; the answer
        (a ``set`` with the patient's next moment) replaces that entry."""
        limit, retry, due = now.timestamp(), retry_at.timestamp(), []
        while self._heap and self._heap[0][0] <= limit:
            stamp, patient_id = self._heap[0]
            if self._earliest.get(patient_id) != stamp:  # an entry replaced since
                heapq.heappop(self._heap)
                continue
            if self._full() and patient_id not in self._asked:
                break
            heapq.heappop(self._heap)
            self._earliest[patient_id] = retry
            self._asked.add(patient_id)
            due.append(patient_id)
        for patient_id in due:
            heapq.heappush(self._heap, (retry, patient_id))
        return due

    def by_partition(self, patients: list[str]) -> dict[int | None, list[str]]:
        """``patients`` grouped by the partition of their schedules (``None``: not known)."""
        groups: dict[int | None, list[str]] = {}
        for patient_id in patients:
            groups.setdefault(self._partitions.get(patient_id), []).append(patient_id)
        return groups

    def overdue(self, now: datetime) -> int:
        limit = now.timestamp()
        return sum(1 for stamp, _ in self._heap[:64] if stamp <= limit)

    def has_room(self) -> bool:
        """Fewer fire commands wait for an answer than ``max_asked``: a tick would send more."""
        return not self._full()

    def _full(self) -> bool:
        return self.max_asked is not None and len(self._asked) >= self.max_asked

    def clear(self) -> None:
        self._asked.clear()
        self._heap.clear()
        self._earliest.clear()
        self._counts.clear()
        self._partitions.clear()
        self.timers = 0

    def _compact(self) -> None:
        """Drop heap entries superseded by a later ``set`` (they would only be skipped)."""
        self._heap = [(stamp, patient_id) for patient_id, stamp in self._earliest.items()]
        heapq.heapify(self._heap)
