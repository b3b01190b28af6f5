"""Faust wiring of the notifier: decide (domain), render (rendering), send (adapters),
record (ledger), report (deliveries).

Flow control, in one place:

* The agents that send (due, alerts, outbound, the internal topic) are *pipelined*: each
  record is handled in its own task, up to ``CYCLECARE_NOTIFIER_IN_FLIGHT`` at a time per
  agent, and acknowledged when its task ends, so the committed offset never passes a
  message that is still waiting. A crash redelivers it; the ledger makes that harmless.
* Every SMS waits at one :class:`PriorityGate` (the sender's token bucket). Urgent messages
  (clinician alerts, safety replies) are granted tokens before any waiting routine one.
* What happens after a provider's answer is decided in :mod:`services.notifier.delivery`
  (pure) and performed by :class:`services.notifier.deliverer.Deliverer`: a passing fault
  publishes ``notifier.retry`` on the internal topic (its task waits until ``not_before``
  without holding up other records of that topic) and keeps being retried through an
  outage; refused credentials halt SMS for ``HALT_SECONDS`` (loud log, gauge), messages
  that arrive meanwhile are re-queued for after the halt, nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import faust
from mode import Service

from shared import metrics
from shared.clinics import Clinic, Directory
from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.events import (
    AlertAcknowledged,
    AlertEscalated,
    AlertResolved,
    ClinicianAlert,
    ConsentChanged,
    Event,
    MessageDelivered,
    MessageFailed,
    PatientDischarged,
    PatientSnapshot,
    ReminderDue,
    deterministic_id,
)
from shared.notifier_events import DigestDue, DigestItemAdded, OutboundRequested, RetryScheduled
from shared.streaming import Runtime
from services.notifier import digest, domain, paging
from services.notifier.alert_book import AlertBook
from services.notifier.adapters.ports import EmailSender, SmsSender
from services.notifier.adapters.status_webhook import add_status_webhook
from services.notifier.contacts import Contacts
from services.notifier.deliverer import Deliverer
from services.notifier.throttle import PriorityGate

log = logging.getLogger(__name__)
DIGEST_CHECK_SECONDS = 1.0
PRODUCER_LINGER_SECONDS = 0.005
Handler = Callable[[str, Event], Awaitable[None]]


def sms_gate(settings: Settings) -> PriorityGate:
    rate = settings.sms_rate_per_second
    return PriorityGate(rate, settings.sms_burst or max(1.0, rate / 10))


@dataclass
class Deps:
    """Everything the handlers use, made once in :func:`build`."""

    rt: Runtime
    clinics: Directory
    contacts: Contacts
    deliverer: Deliverer
    digests: MutableMapping[str, Any]
    clock: Clock
    wall: Clock
    alerts: AlertBook
    digests_asked: set[tuple[str, date]] = field(default_factory=set)


# --- handlers, one per topic -------------------------------------------------------


async def on_patient(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, PatientSnapshot):
        d.clinics.require(event.clinic_id)
        d.contacts.save(domain.contact_from(event, d.contacts.get(event.patient_id)))
    elif isinstance(event, PatientDischarged) and (c := d.contacts.get(event.patient_id)):
        d.contacts.save(c.model_copy(update={"discharged": True}))


async def on_consent(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ConsentChanged) and (c := d.contacts.get(event.patient_id)):
        d.contacts.save(domain.with_consent(c, event))


async def on_due(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ReminderDue):
        clinic = d.clinics.require(event.clinic_id)
        await d.deliverer.execute(domain.on_due(event, await d.contacts.soon(event.patient_id), clinic))


async def on_alert(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ClinicianAlert):
        metrics.ALERTS.labels(event.severity).inc()
        clinic, patient = d.clinics.require(event.clinic_id), d.contacts.get(event.patient_id)
        if d.alerts.get(event.patient_id, event.alert_id) is None:  # a redelivered alert keeps its lifecycle
            d.alerts.save(paging.known_from(event, patient, clinic))
        await d.deliverer.execute(domain.on_alert(event, patient, clinic))
        known = d.alerts.get(event.patient_id, event.alert_id)
        for line in (digest.line_for_alert(event, patient, clinic), known and digest.line_for_lifecycle(known, event, clinic)):
            if line is not None:
                await d.rt.emit(line.clinic_id, line)


async def on_outbound(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, OutboundRequested):
        clinic = d.clinics.require(event.clinic_id) if event.patient_id else None
        await d.deliverer.execute(domain.on_outbound(event, await d.contacts.soon(event.patient_id), clinic))


async def on_alert_action(d: Deps, key: str, event: Event) -> None:
    """Escalation steps become pages; every action updates the alert the pages and the digest read."""
    if isinstance(event, AlertEscalated):
        clinic = d.clinics.require(event.clinic_id)
        known = await d.alerts.soon(event.patient_id, event.alert_id)
        d.alerts.apply(event)  # before the first await below: the paged list moves on at once
        await d.deliverer.execute(paging.pages(event, known, clinic, d.contacts.get(event.patient_id)))
    elif isinstance(event, (AlertAcknowledged, AlertResolved)):
        clinic = d.clinics.require(event.clinic_id)
        _, after = d.alerts.apply(event)
        if after is not None and (line := digest.line_for_lifecycle(after, event, clinic)):  # the line is idempotent
            await d.rt.emit(line.clinic_id, line)


async def on_internal(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, RetryScheduled):
        wait = (event.not_before - d.wall.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # this record's own task: other records flow on
        await d.deliverer.deliver(domain.Outgoing.model_validate(event.outgoing), event.attempt)
    elif isinstance(event, DigestItemAdded):
        entry = d.digests.get(event.clinic_id) or {"lines": {}, "sent_on": None}
        d.digests[event.clinic_id] = entry | {"lines": entry["lines"] | {event.item_key: event.item}}
    elif isinstance(event, DigestDue):
        await send_digest(d, d.clinics.require(event.clinic_id), event.day)
    elif isinstance(event, (MessageDelivered, MessageFailed)):  # a receipt, from the status webhook
        await on_receipt(d, key, event)


async def send_digest(d: Deps, clinic: Clinic, day: date) -> None:
    entry = d.digests.get(clinic.id) or {"lines": {}, "sent_on": None}
    if entry["sent_on"] and date.fromisoformat(entry["sent_on"]) >= day:
        return
    lines: dict[str, Any] = dict(entry["lines"])
    for out in digest.digest_messages(clinic, day, lines):
        await d.deliverer.deliver(out)
    latest = d.digests.get(clinic.id) or entry  # lines added while the mail went out wait for tomorrow
    remaining = {k: v for k, v in latest["lines"].items() if k not in lines or digest.carried_over(v)}
    d.digests[clinic.id] = {"lines": remaining, "sent_on": day.isoformat()}


async def on_receipt(d: Deps, key: str, event: MessageDelivered | MessageFailed) -> None:
    """Receipts for patients' SMS count toward their streak; a clinician's phone (alerts,
    digests) is not the patient's."""
    if event.provider_id and event.kind not in ("alert", "digest"):
        await d.deliverer.receipt(event)


async def digest_clock(d: Deps) -> None:
    """Every worker asks; the clinic's partition owner sends once (``sent_on``)."""
    now = d.clock.now()
    for clinic in d.clinics:
        day = digest.due_day(clinic, now)
        if day is not None and (clinic.id, day) not in d.digests_asked:
            d.digests_asked.add((clinic.id, day))
            await d.rt.emit(clinic.id, DigestDue(
                event_id=deterministic_id("digest_due", clinic.id, day), clinic_id=clinic.id, day=day))


# topic attribute -> (handler, in-flight records per agent as a multiple of CYCLECARE_NOTIFIER_IN_FLIGHT;
# 0: one at a time, in order). The internal topic holds mostly retries asleep until their moment: cheap.
# Not the deliveries topic: receipts come on the internal topic (adapters/status_webhook.py).
HANDLERS: dict[str, tuple[Callable[..., Awaitable[None]], int]] = {
    "patients": (on_patient, 0), "consent": (on_consent, 0),
    "alert_actions": (on_alert_action, 1),
    "due": (on_due, 1), "alerts": (on_alert, 1), "outbound": (on_outbound, 1), "notifier_retry": (on_internal, 16),
}


def build(
    settings: Settings, clinics: Directory, sms: SmsSender, email: EmailSender, clock: Clock | None = None,
    wall: Clock | None = None,
) -> Runtime:
    """Make the dependencies once, then wire each handler of :data:`HANDLERS` to its topic."""
    # ledger writes and message.sent records go out in the producer's batches, not one request each
    rt = Runtime("notifier", settings, producer_linger=PRODUCER_LINGER_SECONDS)
    clock, wall = clock or SystemClock(), wall or SystemClock()
    contacts = Contacts(rt.table("contacts"))
    deliverer = Deliverer(rt, rt.table("ledger"), contacts, sms_gate(settings), sms, email, clock, wall, rt.table("undelivered"))
    deps = Deps(rt, clinics, contacts, deliverer, rt.table("digests"), clock, wall, AlertBook(rt.table("alerts")))
    for attribute, (handler, most) in HANDLERS.items():
        topic, name, bound = getattr(rt.topics, attribute), f"notifier_{handler.__name__}", partial(handler, deps)
        if most:
            pipelined_agent(rt, topic, bound, name, settings.notifier_in_flight * most)
        else:
            rt.agent(topic, bound, name=name)

    @rt.app.timer(DIGEST_CHECK_SECONDS)
    async def digest_tick() -> None:
        await digest_clock(deps)

    add_status_webhook(rt)
    rt.app.service(_ClosesSenders(sms, email))
    return rt


class _ClosesSenders(Service):
    """Closes the senders' HTTP sessions when the worker stops."""

    def __init__(self, *senders: object) -> None:
        self._senders = senders
        super().__init__()

    async def on_stop(self) -> None:
        for sender in self._senders:
            if close := getattr(sender, "close", None):
                await close()


def pipelined_agent(rt: Runtime, topic: str, handler: Handler, name: str, limit: int) -> None:
    """Like ``Runtime.agent`` (decode, dead-letter a failure, carry on) but up to ``limit``
    records in progress at once, each acknowledged when done: a record waiting for a rate
    limit token or a retry never holds up the ones behind it, and a crash loses none."""
    tasks: set[asyncio.Task[None]] = set()

    async def one(stream: faust.StreamT, record: Any, slots: asyncio.Semaphore) -> None:
        try:
            await rt.handle(record, handler, name)
        except asyncio.CancelledError:
            # stopping or revoked mid-way (a retry asleep until its moment, say): not handled,
            # so not acknowledged; the partition's next owner gets the record again
            slots.release()
            raise
        slots.release()
        await stream.ack(record)

    async def consume(stream: faust.StreamT) -> None:
        slots = asyncio.Semaphore(limit)
        manual = stream.noack()
        async for record in manual.events():
            await slots.acquire()
            task = asyncio.create_task(one(manual, record, slots))  # inherits the current event: table writes land in its partition
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    consume.__name__ = name
    consume.__qualname__ = f"{rt.service}.{name}"
    rt.app.agent(rt.topic(topic), name=name, concurrency=1)(consume)
