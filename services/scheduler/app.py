"""Faust wiring of the scheduler: events in, the pure rules of ``domain``, events out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from shared import metrics
from shared.clinics import ClinicRules, Directory
from shared.clock import Clock
from shared.codec import dead_letter, encode
from shared.config import Settings
from shared.events import ConsentChanged, Event, PatientDischarged, PatientSnapshot, TimerSkipped, TreatmentRecorded
from shared.scheduler_events import TimerFire
from shared.streaming import Runtime
from services.scheduler import domain
from services.scheduler.adapters.alerts_api import add_alert_routes
from services.scheduler.adapters.fhir_api import add_fhir_routes
from services.scheduler.adapters.ingest_api import add_ingest_routes
from services.scheduler.alerts import add_alert_escalation
from services.scheduler.timerwheel import TimerWheel

log = logging.getLogger(__name__)


# Fire commands sent by the tick and not answered yet, at most: a catch-up goes out a slice at
# a time as answers arrive, rather than 100,000 commands at once (and all again after the retry delay).
FIRE_COMMANDS_IN_FLIGHT = 5000

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
    schedules: MutableMapping[str, Any]  # patient id -> domain.PatientSchedule (stored form)
    wheel: TimerWheel  # each patient's next moment, rebuilt from the table after a (re)assignment
    unanswered_after: timedelta  # a fire command not answered by then is sent again
    needs_rebuild: bool = True
    indexed: int = -1  # how many schedules the wheel has seen; the changelog replay can add more

    def rules_for(self, clinic_id: str | None) -> ClinicRules:
        return self.clinics.require(clinic_id).rules

    def load(self, patient_id: str) -> domain.PatientSchedule:
        stored = self.schedules.get(patient_id)
        return domain.PatientSchedule.model_validate(stored) if stored else domain.PatientSchedule(patient_id=patient_id)

    def arm(self, schedule: domain.PatientSchedule) -> None:
        self.wheel.set(schedule.patient_id, schedule.next_fire_at(), len(schedule.pending) + len(schedule.held))


async def apply(d: Deps, outcome: domain.Outcome) -> None:
    schedule = outcome.schedule
    # Events first, on the broker, then the table: a crash in between fires again with
    # the same ids instead of remembering a moment as fired that nobody heard of.
    for event in outcome.emit:
        await d.rt.emit(schedule.patient_id, event, wait=True)
    d.schedules[schedule.patient_id] = schedule.model_dump(mode="json")
    d.indexed = len(d.schedules)
    d.arm(schedule)
    for event in outcome.emit:
        if isinstance(event, TimerSkipped):
            log.info("%s", skipped_line(event))
    for rejected in outcome.rejected:
        await reject(d, rejected)


async def reject(d: Deps, rejected: domain.Rejected) -> None:
    """A treatment given up after it was consumed: to the DLQ, re-encoded, with the reason."""
    treatment, topics = rejected.treatment, d.rt.topics
    log.warning("rejected treatment %s: %s", treatment.treatment_id, rejected.reason)
    metrics.FAILED.labels(d.rt.service, topics.treatments).inc()
    record = dead_letter(encode(treatment), topic=topics.treatments, partition=-1, offset=-1,
                         error=f"InvalidTreatment: {rejected.reason}", service=d.rt.service)
    await d.rt.topic(topics.dlq).send(key=treatment.patient_id.encode(), value=record)


async def on_patient(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, PatientDischarged):
        await apply(d, domain.on_discharged(d.load(event.patient_id), event))
    elif isinstance(event, PatientSnapshot):
        rules = d.rules_for(event.clinic_id)
        await apply(d, domain.on_patient(d.load(event.patient_id), event, rules, d.clock.now()))


async def on_treatment(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, TreatmentRecorded):
        d.rules_for(event.clinic_id)
        schedule = d.load(event.patient_id)
        rules = d.rules_for(schedule.rules_clinic or event.clinic_id)
        await apply(d, domain.on_treatment(schedule, event, rules, d.clock.now()))


async def on_consent(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ConsentChanged):
        await apply(d, domain.on_consent(d.load(event.patient_id), event))


async def on_command(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, TimerFire):
        schedule = d.load(event.patient_id)
        if schedule.next_fire_at() is None:
            d.wheel.set(schedule.patient_id, None)
            return
        outcome = domain.fire_due(schedule, d.rules_for(schedule.rules_clinic), d.clock.now())
        if outcome.emit or outcome.skipped or outcome.schedule != schedule:
            await apply(d, outcome)
        else:  # a late copy of a command already answered: only re-arm the wheel
            d.arm(schedule)


async def tick(d: Deps) -> None:
    """Send a fire command for every patient with a moment due (the command agent fires it)."""
    if not d.rt.ready():
        return
    now = d.clock.now()
    if d.needs_rebuild or d.indexed != len(d.schedules):
        reindex(d)
    metrics.TIMERS_PENDING.set(d.wheel.timers)
    metrics.TIMERS_OVERDUE.set(d.wheel.overdue(now))
    for patient_id in d.wheel.pop_due(now, retry_at=now + d.unanswered_after):
        await d.rt.emit(patient_id, TimerFire(patient_id=patient_id, at=now))


def reindex(d: Deps) -> None:
    d.needs_rebuild, d.indexed = False, len(d.schedules)
    d.wheel.clear()
    for patient_id, stored in list(d.schedules.items()):
        timers = len(stored.get("pending", ())) + len(stored.get("held", ()))
        d.wheel.set(patient_id, domain.stored_next_fire_at(stored), timers)


# topic attribute -> handler: what the scheduler reacts to, on one screen
HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "patients": on_patient, "treatments": on_treatment, "consent": on_consent, "scheduler_commands": on_command,
}


def build(settings: Settings, clock: Clock, clinics: Directory) -> Runtime:
    """Make the dependencies once, wire each handler of :data:`HANDLERS` to its topic, the
    tick, and the HTTP APIs (ingest, FHIR in, alert actions with their escalation timers)."""
    rt = Runtime("scheduler", settings)
    schedules = rt.table("schedules")
    # a fire command not answered within 20 ticks (on the scheduler's clock) is sent again
    deps = Deps(rt, clinics, clock, schedules, TimerWheel(max_asked=FIRE_COMMANDS_IN_FLIGHT),
                timedelta(seconds=20 * settings.tick_seconds * settings.clock_speed))
    for attribute, handler in HANDLERS.items():
        rt.agent(getattr(rt.topics, attribute), partial(handler, deps), name=f"scheduler_{handler.__name__}")

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
