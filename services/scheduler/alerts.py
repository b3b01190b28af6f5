"""Faust wiring of the alert lifecycle in the scheduler: escalation timers for alerts nobody
acknowledges (the rules are in :mod:`services.scheduler.escalation`).

Flow:

    cyclecare.alerts, cyclecare.alert-actions (keyed by patient)
        -> forward, re-keyed by alert_id -> scheduler-alerts (internal)
        -> the ``alerts`` table (keyed by alert_id), the wheel of deadlines
    tick: a deadline passed -> AlertDeadline on scheduler-alerts
        -> alert.escalated on cyclecare.alert-actions, then the table

Keying the state by ``alert_id`` serialises everything about one alert (its actions and its
deadlines) in one partition, and lets any worker find which worker holds an alert: the
owner of that key's partition of ``scheduler-alerts`` (the HTTP API forwards to it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta

from shared import metrics
from shared.clinics import Directory
from shared.clock import Clock
from shared.config import Settings
from shared.alert_state import AlertAction
from shared.events import ALERT_ACTIONS, AlertEscalated, ClinicianAlert, Event
from shared.scheduler_events import AlertDeadline
from shared.streaming import Runtime
from services.scheduler import escalation
from services.scheduler.escalation import Tracked
from services.scheduler.timerwheel import TimerWheel

log = logging.getLogger(__name__)


class AlertBook:
    """The ``alerts`` table of this worker's partitions, with the in-memory indexes built
    from it: the wheel of escalation deadlines and the open urgent alerts (for the gauges)."""

    def __init__(self, table: MutableMapping[str, dict], clinics: Directory) -> None:
        self.table = table
        self.clinics = clinics
        self.wheel = TimerWheel()
        self.open_urgent: dict[str, datetime] = {}  # alert_id -> raised_at
        self.needs_rebuild = True
        self.indexed = -1  # table size the indexes have seen; a changelog replay can add more

    def get(self, alert_id: str) -> Tracked:
        return escalation.load(self.table.get(alert_id))

    def save(self, alert_id: str, before: Tracked, after: Tracked) -> None:
        """Write ``after`` (inside stream processing only) and update the indexes and metrics."""
        self.table[alert_id] = escalation.dump(after)
        self.indexed = len(self.table)
        self.rearm(alert_id, after)
        if after.state is not None and after.state.acknowledged_at is not None and (
                before.state is None or before.state.acknowledged_at is None):
            metrics.ALERT_TIME_TO_ACK.labels(after.state.severity).observe(after.state.time_to_acknowledge() or 0.0)

    def rearm(self, alert_id: str, tracked: Tracked) -> None:
        """Index ``tracked``: its next deadline in the wheel, and whether it is an open urgent alert."""
        state = tracked.state
        if state is None or state.status != "open":
            self.wheel.set(alert_id, None)
            self.open_urgent.pop(alert_id, None)
            return
        if state.severity == "urgent":
            self.open_urgent[alert_id] = state.raised_at
        clinic = self.clinics.get(state.clinic_id)
        step = escalation.next_step(state, clinic) if clinic else None
        self.wheel.set(alert_id, step.due_at if step else None)

    def rebuild_if_needed(self) -> None:
        if not self.needs_rebuild and self.indexed == len(self.table):
            return
        self.needs_rebuild = False
        self.indexed = len(self.table)
        self.wheel.clear()
        self.open_urgent.clear()
        for alert_id, stored in list(self.table.items()):
            self.rearm(alert_id, escalation.load(stored))

    def report(self, now: datetime) -> None:
        metrics.URGENT_ALERTS_OPEN.set(len(self.open_urgent))
        oldest = min(self.open_urgent.values(), default=None)
        metrics.URGENT_ALERT_OLDEST_OPEN.set(0 if oldest is None else max(0.0, (now - oldest).total_seconds()))


Publish = Callable[[str, str, Event], Awaitable[None]]  # (topic, key, event), returns once on the broker


class AlertLifecycle:
    """What the scheduler does with each record of ``scheduler-alerts``: keep the alert's
    state, and page when a deadline passed. ``publish`` is the port to the broker."""

    def __init__(self, book: AlertBook, clinics: Directory, clock: Clock, publish: Publish, actions_topic: str) -> None:
        self.book = book
        self.clinics = clinics
        self.clock = clock
        self.publish = publish
        self.actions_topic = actions_topic

    async def handle(self, key: str, event: Event) -> None:
        if isinstance(event, AlertDeadline):
            await self.on_deadline(event.alert_id)
        elif isinstance(event, (ClinicianAlert, *ALERT_ACTIONS)):
            self.on_alert_or_action(event)

    def on_alert_or_action(self, event: ClinicianAlert | AlertAction) -> None:
        before = self.book.get(event.alert_id)
        if isinstance(event, ClinicianAlert):
            after = before.raised(event)
        else:
            clinic = self.clinics.require(before.state.clinic_id if before.state else event.clinic_id)
            after = before.acted(event, clinic)
            if after == before and not isinstance(event, AlertEscalated):
                log.info("%s of alert %s by %r changed nothing", event.type, event.alert_id, event.by)
        if after != before:
            self.book.save(event.alert_id, before, after)

    async def on_deadline(self, alert_id: str) -> None:
        tracked, now = self.book.get(alert_id), self.clock.now()
        state = tracked.state
        clinic = self.clinics.require(state.clinic_id) if state else None
        step = escalation.due_step(state, clinic, now) if state and clinic else None
        if state is None or clinic is None or step is None:  # acknowledged meanwhile, or a late copy of a command
            self.book.rearm(alert_id, tracked)
            return
        page = escalation.escalated(state, clinic, step, now)
        # Events first, on the broker, then the table: a crash in between pages again with the
        # same event id (the notifier sends it once) instead of recording a page nobody heard of.
        await self.publish(self.actions_topic, state.patient_id, page)
        metrics.ALERT_ESCALATIONS.labels(str(step.level)).inc()
        log.info("escalated alert %s of patient %s to level %d (repeat %d): %d clinicians paged",
                 alert_id, state.patient_id, step.level, step.repeat, len(page.notified))
        self.book.save(alert_id, tracked, Tracked(state=state.apply(page)))


def add_alert_escalation(rt: Runtime, settings: Settings, clock: Clock, clinics: Directory) -> AlertBook:
    """Consume the alerts and their actions, keep each alert's state, page on time."""
    topics = rt.topics
    book = AlertBook(rt.table("alerts"), clinics)

    async def published(topic: str, key: str, event: Event) -> None:
        await rt.publish(topic, key, event, wait=True)

    lifecycle = AlertLifecycle(book, clinics, clock, published, topics.alert_actions)
    # a deadline command not answered within 20 ticks (on the scheduler's clock) is sent again
    unanswered_after = timedelta(seconds=20 * settings.tick_seconds * settings.clock_speed)

    async def forward(key: str, event: Event) -> None:
        """An alert or an action, from the patient's partition to the alert's."""
        if isinstance(event, (ClinicianAlert, *ALERT_ACTIONS)):
            clinics.require(event.clinic_id)
            await rt.publish(topics.scheduler_alerts, event.alert_id, event)

    rt.agent(topics.alerts, forward, name="scheduler_alerts_in")
    rt.agent(topics.alert_actions, forward, name="scheduler_alert_actions_in")
    rt.agent(topics.scheduler_alerts, lifecycle.handle, name="scheduler_alert_lifecycle")

    @rt.app.on_partitions_assigned.connect
    async def _assigned(app, assigned, **kwargs) -> None:  # noqa: ANN001
        book.needs_rebuild = True

    @book.table.on_recover
    async def _recovered() -> None:
        book.needs_rebuild = True

    @rt.app.timer(settings.tick_seconds)
    async def alert_tick() -> None:
        if not rt.ready():
            return
        now = clock.now()
        book.rebuild_if_needed()
        book.report(now)
        for alert_id in book.wheel.pop_due(now, retry_at=now + unanswered_after):
            await rt.publish(topics.scheduler_alerts, alert_id, AlertDeadline(alert_id=alert_id, at=now))

    return book
