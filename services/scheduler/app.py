"""Faust wiring of the scheduler: events in, the pure rules of ``domain``, events out."""

from __future__ import annotations

import logging
from datetime import timedelta
from collections.abc import Callable

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


def build(settings: Settings, clock: Clock, clinics: Directory) -> Runtime:
    rt = Runtime("scheduler", settings)
    schedules = rt.table("schedules")
    wheel = TimerWheel(max_asked=FIRE_COMMANDS_IN_FLIGHT)
    needs_rebuild = [True]
    indexed = [-1]  # how many schedules the wheel has seen; the changelog replay can add more
    topics = rt.topics
    # a fire command not answered within 20 ticks (on the scheduler's clock) is sent again
    unanswered_after = timedelta(seconds=20 * settings.tick_seconds * settings.clock_speed)

    def rules_for(clinic_id: str | None) -> ClinicRules:
        return clinics.require(clinic_id).rules

    def load(patient_id: str) -> domain.PatientSchedule:
        stored = schedules.get(patient_id)
        if stored is None:
            return domain.PatientSchedule(patient_id=patient_id)
        return domain.PatientSchedule.model_validate(stored)

    async def apply(outcome: domain.Outcome) -> None:
        schedule = outcome.schedule
        # Events first, on the broker, then the table: a crash in between fires again with
        # the same ids instead of remembering a moment as fired that nobody heard of.
        for event in outcome.emit:
            await rt.emit(schedule.patient_id, event, wait=True)
        schedules[schedule.patient_id] = schedule.model_dump(mode="json")
        indexed[0] = len(schedules)
        wheel.set(schedule.patient_id, schedule.next_fire_at(), len(schedule.pending) + len(schedule.held))
        for event in outcome.emit:
            if isinstance(event, TimerSkipped):
                log.info("%s", skipped_line(event))
        for rejected in outcome.rejected:
            await reject(rejected)

    async def reject(rejected: domain.Rejected) -> None:
        """A treatment given up after it was consumed: to the DLQ, re-encoded, with the reason."""
        treatment = rejected.treatment
        log.warning("rejected treatment %s: %s", treatment.treatment_id, rejected.reason)
        metrics.FAILED.labels(rt.service, topics.treatments).inc()
        record = dead_letter(encode(treatment), topic=topics.treatments, partition=-1, offset=-1,
                             error=f"InvalidTreatment: {rejected.reason}", service=rt.service)
        await rt.topic(topics.dlq).send(key=treatment.patient_id.encode(), value=record)

    async def on_patient(key: str, event: Event) -> None:
        if isinstance(event, PatientDischarged):
            await apply(domain.on_discharged(load(event.patient_id), event))
        elif isinstance(event, PatientSnapshot):
            rules = rules_for(event.clinic_id)
            await apply(domain.on_patient(load(event.patient_id), event, rules, clock.now()))

    async def on_treatment(key: str, event: Event) -> None:
        if isinstance(event, TreatmentRecorded):
            rules_for(event.clinic_id)
            schedule = load(event.patient_id)
            rules = rules_for(schedule.rules_clinic or event.clinic_id)
            await apply(domain.on_treatment(schedule, event, rules, clock.now()))

    async def on_consent(key: str, event: Event) -> None:
        if isinstance(event, ConsentChanged):
            await apply(domain.on_consent(load(event.patient_id), event))

    async def on_command(key: str, event: Event) -> None:
        if isinstance(event, TimerFire):
            schedule = load(event.patient_id)
            if schedule.next_fire_at() is None:
                wheel.set(schedule.patient_id, None)
                return
            outcome = domain.fire_due(schedule, rules_for(schedule.rules_clinic), clock.now())
            if outcome.emit or outcome.skipped or outcome.schedule != schedule:
                await apply(outcome)
            else:  # a late copy of a command already answered: only re-arm the wheel
                wheel.set(schedule.patient_id, schedule.next_fire_at(), len(schedule.pending) + len(schedule.held))

    handlers: dict[str, Callable] = {
        topics.patients: on_patient,
        topics.treatments: on_treatment,
        topics.consent: on_consent,
        topics.scheduler_commands: on_command,
    }
    for topic, handler in handlers.items():
        rt.agent(topic, handler, name=f"scheduler_{handler.__name__}")

    @rt.app.on_partitions_assigned.connect
    async def _assigned(app, assigned, **kwargs) -> None:  # noqa: ANN001
        needs_rebuild[0] = True

    @schedules.on_recover
    async def _recovered() -> None:
        # Assignment comes before the changelog is replayed: index the table again once
        # it holds every assigned partition, or patients restored late would never fire.
        needs_rebuild[0] = True

    @rt.app.timer(settings.tick_seconds)
    async def tick() -> None:
        if not rt.ready():
            return
        now = clock.now()
        if needs_rebuild[0] or indexed[0] != len(schedules):
            needs_rebuild[0] = False
            indexed[0] = len(schedules)
            wheel.clear()
            for patient_id, stored in list(schedules.items()):
                timers = len(stored.get("pending", ())) + len(stored.get("held", ()))
                wheel.set(patient_id, domain.stored_next_fire_at(stored), timers)
        metrics.TIMERS_PENDING.set(wheel.timers)
        metrics.TIMERS_OVERDUE.set(wheel.overdue(now))
        for patient_id in wheel.pop_due(now, retry_at=now + unanswered_after):
            await rt.emit(patient_id, TimerFire(patient_id=patient_id, at=now))

    add_ingest_routes(rt, clinics)
    add_fhir_routes(rt, clinics, clock)
    add_alert_routes(rt, clinics, add_alert_escalation(rt, settings, clock, clinics), clock)
    return rt
