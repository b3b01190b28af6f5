"""Faust wiring of the notifier: decide (domain), render (rendering), send (adapters),
record (ledger), report (deliveries).

Flow control, in one place:

* The agents that send (due, alerts, outbound, the internal topic) are *pipelined*: each
  record is handled in its own task, up to ``CYCLECARE_NOTIFIER_IN_FLIGHT`` at a time per
  agent, and acknowledged when its task ends, so the committed offset never passes a
  message that is still waiting. A crash redelivers it; the ledger makes that harmless.
* Every SMS waits at one :class:`PriorityGate` (the sender's token bucket). Urgent messages
  (clinician alerts, safety replies) are granted tokens before any waiting routine one.
* A retryable provider error publishes ``notifier.retry`` on the internal topic; its task
  waits until ``not_before`` without holding up other records of that topic.
* An authentication error halts SMS for ``HALT_SECONDS`` (loud log, gauge); messages that
  arrive meanwhile are re-queued for after the halt, nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import faust
from mode import Service

from shared import metrics
from shared.clinics import Clinic, Directory
from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.events import (
    CheckinDue,
    ClinicianAlert,
    ConsentChanged,
    DigestDue,
    DigestItemAdded,
    Event,
    MessageDelivered,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    OutboundRequested,
    PatientDischarged,
    PatientSnapshot,
    ReminderDue,
    RetryScheduled,
    deterministic_id,
)
from shared.streaming import Runtime
from services.notifier import digest, domain, receipts
from services.notifier.adapters.ports import AUTH_ERRORS, EmailSender, ProviderError, SmsSender
from services.notifier.adapters.status_webhook import add_status_webhook
from services.notifier.rendering import RenderError, TemplateMissing, render
from services.notifier.throttle import PriorityGate

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
HALT_SECONDS = 60.0
DIGEST_CHECK_SECONDS = 1.0
CONTACT_WAIT_SECONDS = 5.0
NUMBER_PROBLEMS = ("21211", "21612", "21614", "21606", "21635")
Handler = Callable[[str, Event], Awaitable[None]]
PROVIDER = {"sms": "twilio", "email": "smtp"}


def backoff(attempt: int, key: str) -> timedelta:
    """Exponential backoff with deterministic jitter (so a redelivered retry waits the same)."""
    jitter = int(key[:4], 16) / 0xFFFF if _is_hex(key[:4]) else 0.5
    return timedelta(seconds=min(300.0, 2.0**attempt) * (0.5 + jitter / 2))


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def sms_gate(settings: Settings) -> PriorityGate:
    rate = settings.sms_rate_per_second
    return PriorityGate(rate, settings.sms_burst or max(1.0, rate / 10))


def build(
    settings: Settings, clinics: Directory, sms: SmsSender, email: EmailSender, clock: Clock | None = None
) -> Runtime:
    rt = Runtime("notifier", settings)
    clock = clock or SystemClock()
    contacts, ledger = rt.table("contacts"), rt.table("ledger")
    digests, streaks = rt.table("digests"), rt.table("undelivered")
    topics = rt.topics
    gate = sms_gate(settings)
    in_flight: set[str] = set()  # message keys being sent right now (the ledger has them only afterwards)
    urgent_pending: set[str] = set()
    halted_until = [0.0]

    def contact(patient_id: str | None) -> domain.Contact | None:
        stored = contacts.get(patient_id) if patient_id else None
        return domain.Contact.model_validate(stored) if stored else None

    def save(c: domain.Contact) -> None:
        contacts[c.patient_id] = c.model_dump(mode="json")

    def key_of(message: domain.Outgoing | domain.Suppressed | domain.Refused) -> str:
        return message.patient_id or message.clinic_id or ""

    async def report(key: str, event: Event) -> None:
        await rt.publish(topics.deliveries, key, event)

    def track_urgent(out: domain.Outgoing, pending: bool) -> None:
        if out.urgent and out.audience == "clinician":
            (urgent_pending.add if pending else urgent_pending.discard)(out.message_key)
            metrics.URGENT_UNDELIVERED.set(len(urgent_pending))

    async def suppress(s: domain.Suppressed) -> None:
        if ledger.get(s.message_key):
            return
        ledger[s.message_key] = {"status": "suppressed"}
        metrics.MESSAGES.labels(s.channel, "suppressed").inc()
        await report(key_of(s), MessageSuppressed(
            message_key=s.message_key, patient_id=s.patient_id, clinic_id=s.clinic_id,
            channel=s.channel, kind=s.kind, reason=s.reason,
        ))

    async def refuse(r: domain.Refused) -> None:
        if not ledger.get(r.message_key):
            await record_failure(r, r.error, None)

    async def contact_soon(patient_id: str | None) -> domain.Contact | None:
        """The patient's contact, waiting a little for it: the patients topic is read by
        another agent, so an enrolment and a due event sent together can arrive in either
        order. The wait is this record's own; other records flow on."""
        deadline = time.monotonic() + CONTACT_WAIT_SECONDS
        while (found := contact(patient_id)) is None and patient_id and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return found

    async def deliver(out: domain.Outgoing, attempt: int = 0) -> None:
        if ledger.get(out.message_key) or out.message_key in in_flight:
            return  # this cause was (or is being) handled: a redelivery sends nothing
        in_flight.add(out.message_key)
        track_urgent(out, pending=True)
        try:
            await send(out, attempt)
        finally:
            in_flight.discard(out.message_key)

    async def send(out: domain.Outgoing, attempt: int) -> None:
        try:
            rendered = render(out.kind, out.channel, out.language, out.context)
            if out.channel == "sms":
                if time.monotonic() < halted_until[0]:
                    await schedule_retry(out, attempt, wait=halted_until[0] - time.monotonic())
                    return
                metrics.SMS_WAITING.set(gate.waiting + 1)
                await gate.acquire(0 if out.urgent else 1)
                metrics.SMS_WAITING.set(gate.waiting)
                provider_id = await sms.send_sms(out.to, rendered.text, out.message_key, tags=callback_tags(out))
            else:
                provider_id = await email.send_email(out.to, rendered.subject or "", rendered.text, rendered.html, out.message_key)
        except (TemplateMissing, RenderError) as exc:
            await fail(out, f"template: {exc}", None)
            return
        except ProviderError as exc:
            await provider_failed(out, exc, attempt)
            return
        await sent(out, provider_id)

    def callback_tags(out: domain.Outgoing) -> dict[str, str]:
        return {"m": out.message_key, "p": out.patient_id or "", "c": out.clinic_id or "", "k": out.kind,
                "a": "p" if out.audience == "patient" else "c"}

    async def sent(out: domain.Outgoing, provider_id: str) -> None:
        provider = PROVIDER[out.channel]
        metrics.PROVIDER_LAST_SUCCESS.labels(provider).set(time.time())
        metrics.PROVIDER_HALTED.labels(provider).set(0)
        metrics.MESSAGES.labels(out.channel, "sent").inc()
        ledger[out.message_key] = {"status": "sent", "provider_id": provider_id, "channel": out.channel}
        track_urgent(out, pending=False)
        if out.audience == "patient" and (c := contact(out.patient_id)) and not c.welcomed:
            save(c.model_copy(update={"welcomed": True}))
        await report(key_of(out), MessageSent(
            message_key=out.message_key, patient_id=out.patient_id, clinic_id=out.clinic_id,
            channel=out.channel, kind=out.kind, provider_id=provider_id,
        ))

    async def schedule_retry(out: domain.Outgoing, attempt: int, wait: float) -> None:
        not_before = datetime.now(timezone.utc) + timedelta(seconds=wait)
        retry = RetryScheduled(outgoing=out.model_dump(mode="json"), attempt=attempt, not_before=not_before)
        await rt.publish(topics.notifier_retry, key_of(out), retry)

    async def provider_failed(out: domain.Outgoing, exc: ProviderError, attempt: int) -> None:
        provider = PROVIDER[out.channel]
        metrics.PROVIDER_FAILURES.labels(provider, exc.code or str(exc.status or "network")).inc()
        if exc.code in AUTH_ERRORS:
            halted_until[0] = time.monotonic() + HALT_SECONDS
            metrics.PROVIDER_HALTED.labels(provider).set(1)
            log.critical("%s refused our credentials (code %s): sending stopped for %.0f s; check TWILIO_ACCOUNT_SID "
                         "and TWILIO_AUTH_TOKEN. Messages are kept and retried.", provider, exc.code, HALT_SECONDS)
            await schedule_retry(out, attempt, wait=HALT_SECONDS)
            return
        if exc.retryable and attempt + 1 < MAX_ATTEMPTS:
            metrics.MESSAGES.labels(out.channel, "retried").inc()
            await schedule_retry(out, attempt + 1, wait=backoff(attempt, out.message_key).total_seconds())
            return
        await fail(out, str(exc), exc.code)
        if exc.code == "21610" and out.patient_id:
            opt_out = ConsentChanged(
                event_id=deterministic_id("provider_21610", out.message_key),
                patient_id=out.patient_id, clinic_id=out.clinic_id or "", channel="sms", granted=False,
                source="provider_21610",
            )
            # honoured here at once: the next message for this patient may come before the
            # consent topic has been read back
            if c := contact(out.patient_id):
                save(domain.with_consent(c, opt_out))
            await rt.publish(topics.consent, out.patient_id, opt_out)
        elif exc.code in NUMBER_PROBLEMS and out.patient_id and out.audience == "patient":
            await raise_unreachable(out, exc.code)

    async def fail(out: domain.Outgoing, error: str, code: str | None) -> None:
        track_urgent(out, pending=False)
        await record_failure(out, error, code)

    async def record_failure(message: domain.Outgoing | domain.Refused, error: str, code: str | None) -> None:
        metrics.MESSAGES.labels(message.channel, "failed").inc()
        ledger[message.message_key] = {"status": "failed", "error": error}
        log.warning("message %s (%s) failed: %s", message.message_key[:12], message.kind, error)
        await report(key_of(message), MessageFailed(
            message_key=message.message_key, patient_id=message.patient_id, clinic_id=message.clinic_id,
            channel=message.channel, kind=message.kind, error=error, error_code=code,
        ))

    async def raise_unreachable(out: domain.Outgoing, code: str) -> None:
        alert = ClinicianAlert(
            alert_id=deterministic_id("unreachable", out.patient_id, code),
            patient_id=out.patient_id or "", clinic_id=out.clinic_id or "", severity="routine",
            reasons=["unreachable"], summary=f"Messages to this patient's phone fail (provider code {code}).",
            raised_at=clock.now(), evidence={"error_code": code, "message_kind": out.kind},
        )
        await rt.publish(topics.alerts, alert.patient_id, alert)

    async def execute(decisions: list[domain.Decision]) -> None:
        # urgent first, then the rest: safety before routine
        for decision in sorted(decisions, key=lambda d: not getattr(d, "urgent", False)):
            if isinstance(decision, domain.Suppressed):
                await suppress(decision)
            elif isinstance(decision, domain.Refused):
                await refuse(decision)
            else:
                await deliver(decision)

    async def add_to_digest(line: DigestItemAdded | None) -> None:
        if line is not None:
            await rt.publish(topics.notifier_retry, line.clinic_id, line)

    # --- handlers, one per topic ---------------------------------------------------

    async def on_patient(key: str, event: Event) -> None:
        if isinstance(event, PatientSnapshot):
            clinics.require(event.clinic_id)
            save(domain.contact_from(event, contact(event.patient_id)))
        elif isinstance(event, PatientDischarged) and (c := contact(event.patient_id)):
            save(c.model_copy(update={"discharged": True}))

    async def on_consent(key: str, event: Event) -> None:
        if isinstance(event, ConsentChanged) and (c := contact(event.patient_id)):
            save(domain.with_consent(c, event))

    async def on_due(key: str, event: Event) -> None:
        if isinstance(event, (CheckinDue, ReminderDue)):
            clinic = clinics.require(event.clinic_id)
            await execute(domain.on_due(event, await contact_soon(event.patient_id), clinic))

    async def on_alert(key: str, event: Event) -> None:
        if isinstance(event, ClinicianAlert):
            metrics.ALERTS.labels(event.severity).inc()
            clinic, patient = clinics.require(event.clinic_id), contact(event.patient_id)
            await execute(domain.on_alert(event, patient, clinic))
            await add_to_digest(digest.line_for_alert(event, patient, clinic))

    async def on_outbound(key: str, event: Event) -> None:
        if isinstance(event, OutboundRequested):
            clinic = clinics.require(event.clinic_id) if event.patient_id else None
            await execute(domain.on_outbound(event, await contact_soon(event.patient_id), clinic))

    async def on_internal(key: str, event: Event) -> None:
        if isinstance(event, RetryScheduled):
            wait = (event.not_before - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)  # this record's own task: other records flow on
            await deliver(domain.Outgoing.model_validate(event.outgoing), event.attempt)
        elif isinstance(event, DigestItemAdded):
            entry = digests.get(event.clinic_id) or {"lines": {}, "sent_on": None}
            digests[event.clinic_id] = entry | {"lines": entry["lines"] | {event.item_key: event.item}}
        elif isinstance(event, DigestDue):
            await send_digest(clinics.require(event.clinic_id), event.day)

    async def send_digest(clinic: Clinic, day: date) -> None:
        entry = digests.get(clinic.id) or {"lines": {}, "sent_on": None}
        if entry["sent_on"] and date.fromisoformat(entry["sent_on"]) >= day:
            return
        lines: dict[str, Any] = dict(entry["lines"])
        for out in digest.digest_messages(clinic, day, lines):
            await deliver(out)
        latest = digests.get(clinic.id) or entry  # lines added while the mail went out wait for tomorrow
        remaining = {k: v for k, v in latest["lines"].items() if k not in lines}
        digests[clinic.id] = {"lines": remaining, "sent_on": day.isoformat()}

    async def on_delivery(key: str, event: Event) -> None:
        """Receipts for patients' SMS (only receipts carry a provider id and come here
        failed): a streak of undelivered ones raises ``unreachable``."""
        if not isinstance(event, (MessageDelivered, MessageFailed)) or not event.patient_id or not event.provider_id:
            return
        if event.kind in ("alert", "digest"):  # a clinician's phone, not the patient's
            return
        streak = receipts.after_receipt(receipts.Streak.model_validate(streaks.get(event.patient_id) or {}), event)
        streaks[event.patient_id] = streak.model_dump(mode="json")
        if isinstance(event, MessageFailed) and (alert := receipts.unreachable_alert(streak, event, clock.now())):
            await rt.publish(topics.alerts, alert.patient_id, alert)

    # --- the digest clock ----------------------------------------------------------

    asked: set[tuple[str, date]] = set()

    @rt.app.timer(DIGEST_CHECK_SECONDS)
    async def digest_clock() -> None:
        """Every worker asks; the clinic's partition owner sends once (``sent_on``)."""
        now = clock.now()
        for clinic in clinics:
            day = digest.due_day(clinic, now)
            if day is not None and (clinic.id, day) not in asked:
                asked.add((clinic.id, day))
                await rt.publish(topics.notifier_retry, clinic.id, DigestDue(
                    event_id=deterministic_id("digest_due", clinic.id, day), clinic_id=clinic.id, day=day))

    # --- wiring --------------------------------------------------------------------

    for topic, handler in {topics.patients: on_patient, topics.consent: on_consent, topics.deliveries: on_delivery}.items():
        rt.agent(topic, handler, name=f"notifier_{handler.__name__}")
    limit = settings.notifier_in_flight
    for topic, handler, most in (
        (topics.due, on_due, limit), (topics.alerts, on_alert, limit), (topics.outbound, on_outbound, limit),
        (topics.notifier_retry, on_internal, limit * 16),  # mostly retries asleep until their moment: cheap
    ):
        pipelined_agent(rt, topic, handler, f"notifier_{handler.__name__}", most)
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
