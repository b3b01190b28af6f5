"""Faust wiring of the scheduler: events in, the pure rules of ``domain``, events out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import faust

from shared import metrics
from shared.clinics import ClinicRules, Directory, UnknownClinic
from shared.clock import Clock
from shared.codec import dead_letter, encode
from shared.config import Settings
from shared.failures import describe
from shared.events import ConsentChanged, Event, PatientDischarged, PatientSnapshot, TimerSkipped, TreatmentRecorded
from shared.scheduler_events import TimerFire
from shared.streaming import PartitionedTable, Runtime
from services.scheduler import domain
from services.scheduler.adapters.alerts_api import add_alert_routes
from services.scheduler.adapters.fhir_api import add_fhir_routes
from services.scheduler.adapters.ingest_api import add_ingest_routes
from services.scheduler.alerts import add_alert_escalation
from services.scheduler.batch import Batch, Write
from services.scheduler.timerwheel import TimerWheel

log = logging.getLogger(__name__)


# A batch is what the broker has ready, up to BATCH_MAX records, waited for at most
# BATCH_WITHIN seconds: one load and one table write per patient, one wait for the broker.
# (An idle agent wakes every BATCH_WITHIN: 50 ms cost 3% of a core more than 200 ms.)
BATCH_MAX = 1000
BATCH_WITHIN = 0.2
# Patients with a fire command sent and not answered yet, at most: a catch-up goes out a
# slice at a time as answers arrive, rather than 100,000 at once. More in flight than a
# worker answers within the retry delay would all be sent twice. Two batches' worth: the
# agent plans one while the next one's commands arrive.
FIRE_COMMANDS_IN_FLIGHT = 16_000
# Patients one fire command names (at most FIRE_GROUP_MAX): a batch of BATCH_MAX commands is
# then 8,000 patients, so a catch-up fills its batches and never waits BATCH_WITHIN for more.
# (Measured at 100,000: 4 a command 33.9-37.6 s, 8 31.9-32.1 s, 16 with 32,000 in flight
# 37.0 s, the worker waiting a quarter of the time on the broker's answers to larger batches.)
FIRE_GROUP = 8
# A fire command not answered within 20 ticks, and never sooner than this many seconds, is
# sent again. With the 0.2 s ticks of tests and benchmarks, 20 ticks (4 s) are less than a
# worker takes to answer the commands in flight (16,000 in about 5 s, 20 s at the slowest
# pace seen): only a loop too busy to tick while a batch was planned and written kept each
# slice from going out twice.
UNANSWERED_AFTER_MIN_SECONDS = 30.0

SKIP_REASONS = {"stale": "more than 24 h past when the treatment was recorded", "no consent": "the patient opted out"}


def skipped_line(event: TimerSkipped) -> str:
    """Which patient's moment was not sent and why (ids only: no phone, no text)."""
    what = f"{event.skipped_type} ({event.kind})" if event.kind else event.skipped_type
    why = SKIP_REASONS.get(event.reason, event.reason)
    return f"skipped {what} day {event.day} of cycle {event.cycle} for patient {event.patient_id}: {why}"


@dataclass
class Deps:
    """Everything the handlers use, made once in :func:`build`."""

    rt: Runtime
    clinics: Directory
    clock: Clock
    schedules: PartitionedTable  # patient id -> domain.PatientSchedule in its stored form (bytes)
    wheel: TimerWheel  # each patient's next moment, rebuilt from the table after a (re)assignment
    unanswered_after: timedelta  # a fire command not answered by then is sent again
    needs_rebuild: bool = True
    indexed: int = -1  # how many schedules the wheel has seen; the changelog replay can add more

    def rules_for(self, clinic_id: str | None) -> ClinicRules:
        return self.clinics.require(clinic_id).rules

    def load(self, patient_id: str) -> domain.PatientSchedule:
        stored = self.schedules.get(patient_id)
        return domain.from_stored(stored) if stored else domain.PatientSchedule(patient_id=patient_id)

    def arm(self, schedule: domain.PatientSchedule, partition: int) -> None:
        self.wheel.set(schedule.patient_id, schedule.next_fire_at(), schedule.timer_count, partition)


# --- planning: each handler applies one event to the batch's schedules (no I/O) ----------


def on_patient(d: Deps, batch: Batch, event: Event) -> None:
    if isinstance(event, PatientDischarged):
        batch.apply(domain.on_discharged(batch.schedule(event.patient_id), event))
    elif isinstance(event, PatientSnapshot):
        rules = d.rules_for(event.clinic_id)
        batch.apply(domain.on_patient(batch.schedule(event.patient_id), event, rules, d.clock.now()))


def on_treatment(d: Deps, batch: Batch, event: Event) -> None:
    if isinstance(event, TreatmentRecorded):
        d.rules_for(event.clinic_id)
        schedule = batch.schedule(event.patient_id)
        rules = d.rules_for(schedule.rules_clinic or event.clinic_id)
        batch.apply(domain.on_treatment(schedule, event, rules, d.clock.now()))


def on_consent(d: Deps, batch: Batch, event: Event) -> None:
    if isinstance(event, ConsentChanged):
        batch.apply(domain.on_consent(batch.schedule(event.patient_id), event))


def on_command(d: Deps, batch: Batch, event: Event) -> None:
    if isinstance(event, TimerFire):
        for patient_id in (event.patient_id, *event.also):
            try:
                fire(d, batch, patient_id)
            except UnknownClinic as exc:  # one patient's clinic gone from the file must not hold up the others
                log.warning("cannot fire the moments of patient %s: %s", patient_id, describe(exc))
                metrics.FAILED.labels(d.rt.service, d.rt.topics.scheduler_commands).inc()


def fire(d: Deps, batch: Batch, patient_id: str) -> None:
    schedule = batch.schedule(patient_id)
    if schedule.next_fire_at() is None:
        batch.unchanged(patient_id)
        return
    outcome = domain.fire_due(schedule, d.rules_for(schedule.rules_clinic), d.clock.now())
    if outcome.emit or outcome.skipped or outcome.schedule != schedule:
        batch.apply(outcome)
    else:  # a late copy of a command already answered: only re-arm the wheel
        batch.unchanged(patient_id)


# topic attribute -> handler: what the scheduler reacts to, on one screen
HANDLERS: dict[str, Callable[[Deps, Batch, Event], None]] = {
    "patients": on_patient, "treatments": on_treatment, "consent": on_consent, "scheduler_commands": on_command,
}


# --- acting: a batch's events, then its table writes, then its offsets --------------------


async def flush(d: Deps, batch: Batch) -> None:
    """Every event of the batch is sent at once (the producer batches them) and acknowledged
    by the broker; only then is each changed schedule written, once, into its patient's
    changelog partition (the caller then acknowledges the records). A crash in between fires
    again with the same ids instead of remembering a moment as fired that nobody heard of."""
    acks = await d.rt.send_all([(d.rt.topics.of(event), patient_id.encode(), encode(event), None)
                                for patient_id, event in batch.emit])
    acks += [await reject(d, rejected) for rejected in batch.rejected]
    await asyncio.gather(*acks)
    for event in batch.skipped():
        log.info("%s", skipped_line(event))
    batch.published()
    await asyncio.gather(*await store(d, batch.writes()))
    for schedule, partition in batch.armed():
        d.arm(schedule, partition)


async def store(d: Deps, writes: list[Write]) -> list[Awaitable[Any]]:
    """Write the changed schedules into their changelog partitions; returns the
    acknowledgements to await. New patients count as indexed at once (the wheel learns them
    when the flush ends): the tick, running while the flush waits for the broker, must not
    take the batch's own writes for schedules recovered behind the wheel's back and rebuild
    the index, every patient, every tick."""
    new = sum(write.patient_id not in d.schedules for write in writes)
    acks = await d.schedules.put_all([(write.partition, write.patient_id, domain.to_stored(write.schedule, write.partition))
                                      for write in writes])
    d.indexed += new
    return acks


async def reject(d: Deps, rejected: domain.Rejected) -> Awaitable[Any]:
    """A treatment given up after it was consumed: to the DLQ, re-encoded, with the reason
    (returns the broker's acknowledgement to wait for)."""
    treatment, topics = rejected.treatment, d.rt.topics
    log.warning("rejected treatment %s: %s", treatment.treatment_id, rejected.reason)
    metrics.FAILED.labels(d.rt.service, topics.treatments).inc()
    record = dead_letter(encode(treatment), topic=topics.treatments, partition=-1, offset=-1,
                         error=f"InvalidTreatment: {rejected.reason}", service=d.rt.service)
    return await d.rt.send(topics.dlq, treatment.patient_id.encode(), record)


async def plan(d: Deps, batch: Batch, record: Any, handler: Callable[[Deps, Batch, Event], None]) -> None:
    """Decode, dead-letter or retry one record as every agent does (``Runtime.handle``)."""
    batch.partition = record.message.partition

    async def planned(key: str, event: Event) -> None:
        handler(d, batch, event)

    await d.rt.handle(record, planned, f"scheduler_{handler.__name__}")


def add_batch_agent(d: Deps) -> None:
    """One agent over the scheduler's four topics, a batch at a time: a patient's enrolment
    and treatment in one batch cost one load and one write, and no other batch can plan on a
    schedule between this one's load and its write. Records are acknowledged only after the
    batch is flushed; a flush that fails is retried without acknowledging, like any handler."""
    rt = d.rt
    handlers = {getattr(rt.topics, attribute): handler for attribute, handler in HANDLERS.items()}
    channel = rt.app.topic(*handlers, key_type=bytes, value_type=bytes, key_serializer="raw",
                           value_serializer="raw", partitions=rt.settings.partitions)

    async def scheduler_batches(stream: faust.StreamT) -> None:
        async for records in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN):
            batch = Batch(d.load)
            for record in records:
                await plan(d, batch, record, handlers[record.message.topic])
            await rt.until_handled(records[-1], lambda: flush(d, batch))
            for record in records:
                await stream.ack(record)
            if any(record.message.topic == rt.topics.scheduler_commands for record in records):
                await ask_again(d)

    scheduler_batches.__qualname__ = f"{rt.service}.scheduler_batches"
    rt.app.agent(channel, name="scheduler_batches", concurrency=1)(scheduler_batches)


# --- the tick ---------------------------------------------------------------------------


async def tick(d: Deps) -> None:
    """Send a fire command for every patient with a moment due (the batch agent fires it)."""
    if not d.rt.ready():
        return
    now = d.clock.now()
    if index_stale(d):
        reindex(d)
    metrics.TIMERS_PENDING.set(d.wheel.timers)
    metrics.TIMERS_OVERDUE.set(d.wheel.overdue(now))
    await ask(d, now)


async def ask_again(d: Deps) -> None:
    """After a batch answered fire commands: the next slice of a catch-up goes out now,
    not at the next tick (the wheel's bound in flight still holds)."""
    if d.wheel.has_room() and d.rt.ready() and not index_stale(d):
        await ask(d, d.clock.now())


async def ask(d: Deps, now: datetime) -> None:
    due = d.wheel.pop_due(now, retry_at=now + d.unanswered_after)
    await d.rt.send_all([(d.rt.topics.scheduler_commands, command.patient_id.encode(), encode(command), partition)
                         for partition, command in fire_commands(d.wheel.by_partition(due), now)])


def fire_commands(groups: dict[int | None, list[str]], now: datetime) -> list[tuple[int | None, TimerFire]]:
    """One command per FIRE_GROUP patients kept in the same partition, sent there; one per
    patient, keyed by patient, where the partition is not known (a schedule stored before
    the stored form named it)."""
    commands: list[tuple[int | None, TimerFire]] = []
    for partition, patients in groups.items():
        if partition is None:
            commands += [(None, TimerFire(patient_id=patient_id, at=now)) for patient_id in patients]
            continue
        for start in range(0, len(patients), FIRE_GROUP):
            first, *also = patients[start:start + FIRE_GROUP]
            commands.append((partition, TimerFire(patient_id=first, also=also, at=now)))
    return commands


def unanswered_after(tick_seconds: float, clock_speed: float) -> timedelta:
    """How long (on the scheduler's clock) a fire command waits for its answer before it is
    sent again: 20 ticks, and at least :data:`UNANSWERED_AFTER_MIN_SECONDS`."""
    return timedelta(seconds=max(20 * tick_seconds, UNANSWERED_AFTER_MIN_SECONDS) * clock_speed)


def index_stale(d: Deps) -> bool:
    """The timer index may miss schedules: partitions were (re)assigned or recovered, or the
    table holds another number of schedules than were indexed (the tick rebuilds it)."""
    return d.needs_rebuild or d.indexed != len(d.schedules)


def reindex(d: Deps) -> None:
    d.needs_rebuild, d.indexed = False, len(d.schedules)
    d.wheel.clear()
    for patient_id, stored in list(d.schedules.items()):
        try:
            summary = domain.stored_summary(stored)  # one read of the stored bytes per patient
        except domain.UnknownStoredForm as exc:  # that patient's records retry and say so; the others still fire
            log.error("cannot index the schedule of patient %s: %s", patient_id, exc)
            continue
        d.wheel.set(patient_id, summary.next, summary.timers, summary.p)


def build(settings: Settings, clock: Clock, clinics: Directory) -> Runtime:
    """Make the dependencies once, wire :data:`HANDLERS` to one batch agent over their topics,
    the tick, and the HTTP APIs (ingest, FHIR in, alert actions with their escalation timers)."""
    rt = Runtime("scheduler", settings)
    schedules = rt.table("schedules", partitioned=True, raw_values=True)  # domain.to_stored's bytes
    deps = Deps(rt, clinics, clock, schedules, TimerWheel(max_asked=FIRE_COMMANDS_IN_FLIGHT),
                unanswered_after(settings.tick_seconds, settings.clock_speed))
    add_batch_agent(deps)

    @rt.app.on_partitions_assigned.connect
    async def _assigned(app, assigned, **kwargs) -> None:  # noqa: ANN001
        deps.needs_rebuild = True

    @schedules.on_recover
    async def _recovered() -> None:
        # Assignment comes before the changelog is replayed: index the table again once it
        # holds every assigned partition too, or patients restored late would never fire.
        deps.needs_rebuild = True

    @rt.app.timer(settings.tick_seconds)
    async def scheduler_tick() -> None:
        await tick(deps)
    add_ingest_routes(rt, clinics)
    add_fhir_routes(rt, clinics, clock)
    add_alert_routes(rt, clinics, add_alert_escalation(rt, settings, clock, clinics), clock)
    return rt
