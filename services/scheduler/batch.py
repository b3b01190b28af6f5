"""A batch of the scheduler's records, planned in memory before anything is published.

Each patient's schedule is loaded once per batch and every record of the batch applies to
the result of the one before; each changed schedule is written once, in the changelog
partition of the record that last changed it (a patient's records all share one partition).
Pure: no Faust, no broker; ``app.py`` publishes what a batch decided, then writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.events import Event, TimerSkipped
from services.scheduler import domain


@dataclass(frozen=True)
class Write:
    """One table write: a patient's schedule, into the changelog partition of its records."""

    patient_id: str
    partition: int
    schedule: domain.PatientSchedule


@dataclass
class Batch:
    load: Callable[[str], domain.PatientSchedule]
    partition: int = -1  # the partition of the record being planned
    schedules: dict[str, domain.PatientSchedule] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # patient -> partition of its last change
    rearm: dict[str, int] = field(default_factory=dict)  # answered fire commands that changed nothing
    emit: list[tuple[str, Event]] = field(default_factory=list)  # (patient, event), in order
    rejected: list[domain.Rejected] = field(default_factory=list)

    def schedule(self, patient_id: str) -> domain.PatientSchedule:
        """The patient's schedule as this batch has left it so far (loaded on first use)."""
        if patient_id not in self.schedules:
            self.schedules[patient_id] = self.load(patient_id)
        return self.schedules[patient_id]

    def apply(self, outcome: domain.Outcome) -> None:
        patient_id = outcome.schedule.patient_id
        self.schedules[patient_id] = outcome.schedule
        self.changed[patient_id] = self.partition
        self.emit.extend((patient_id, event) for event in outcome.emit)
        self.rejected.extend(outcome.rejected)

    def writes(self) -> list[Write]:
        return [Write(p, partition, self.schedules[p]) for p, partition in self.changed.items()]

    def unchanged(self, patient_id: str) -> None:
        """A fire command answered with nothing to change: the timer index still learns so."""
        self.rearm[patient_id] = self.partition

    def armed(self) -> list[tuple[domain.PatientSchedule, int]]:
        """Every schedule whose next moment the timer index must learn after the flush, with
        the partition where it is kept."""
        return [(self.schedules[p], partition) for p, partition in (self.rearm | self.changed).items()]

    def skipped(self) -> list[TimerSkipped]:
        return [event for _, event in self.emit if isinstance(event, TimerSkipped)]

    def published(self) -> None:
        """The events and rejections are on the broker: a flush retried after a failed table
        write must not send them again."""
        self.emit.clear()
        self.rejected.clear()
