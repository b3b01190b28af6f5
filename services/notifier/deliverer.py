"""The :class:`Deliverer` performs the delivery rules of :mod:`services.notifier.delivery`:
render, wait for the SMS gate, send through a port, then record, retry, halt, fail, opt out
or raise ``unreachable`` as the rules decide. Its state (the ledger, what is in flight,
the halt) is its own, not a closure's.

Provider time (backoff, the halt) is read from ``wall``, a real clock even when the
business clock is simulated: a provider outage lasts real seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from shared import metrics
from shared.clock import Clock
from shared.events import (
    ConsentChanged,
    Event,
    MessageDelivered,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    deterministic_id,
)
from shared.notifier_events import RetryScheduled
from shared.streaming import Runtime
from services.notifier import delivery, domain, receipts
from services.notifier.adapters.ports import EmailSender, Outcome, RetryLater, Sent, SmsSender
from services.notifier.contacts import Contacts
from services.notifier.rendering import RenderError, TemplateMissing, render
from services.notifier.throttle import PriorityGate

log = logging.getLogger(__name__)
PROVIDER = {"sms": "twilio", "email": "smtp"}


def key_of(message: domain.Outgoing | domain.Suppressed | domain.Refused) -> str:
    return message.patient_id or message.clinic_id or ""


def callback_tags(out: domain.Outgoing) -> dict[str, str]:
    return {"m": out.message_key, "p": out.patient_id or "", "c": out.clinic_id or "", "k": out.kind,
            "a": "p" if out.audience == "patient" else "c"}


class Deliverer:
    def __init__(
        self, rt: Runtime, ledger: MutableMapping[str, Any], contacts: Contacts, gate: PriorityGate,
        sms: SmsSender, email: EmailSender, clock: Clock, wall: Clock, streaks: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.rt, self.ledger, self.contacts, self.gate = rt, ledger, contacts, gate
        self.streaks: MutableMapping[str, Any] = {} if streaks is None else streaks  # undelivered in a row, per patient
        self.sms, self.email, self.clock, self.wall = sms, email, clock, wall
        self.in_flight: set[str] = set()  # message keys being sent right now (the ledger has them only afterwards)
        self.urgent_pending: set[str] = set()
        self.halted_until: datetime | None = None

    async def execute(self, decisions: list[domain.Decision]) -> None:
        # urgent first, then the rest: safety before routine
        for decision in sorted(decisions, key=lambda d: not getattr(d, "urgent", False)):
            if isinstance(decision, domain.Suppressed):
                await self.suppress(decision)
            elif isinstance(decision, domain.Refused):
                if not self.ledger.get(decision.message_key):
                    await self.record_failure(decision, decision.error, None)
            else:
                await self.deliver(decision)

    async def deliver(self, out: domain.Outgoing, attempt: int = 0) -> None:
        if self.ledger.get(out.message_key) or out.message_key in self.in_flight:
            return  # this cause was (or is being) handled: a redelivery sends nothing
        self.in_flight.add(out.message_key)
        self.track_urgent(out, pending=True)
        try:
            await self.send(out, attempt)
        finally:
            self.in_flight.discard(out.message_key)

    async def send(self, out: domain.Outgoing, attempt: int) -> None:
        try:
            rendered = render(out.kind, out.channel, out.language, out.context)
        except (TemplateMissing, RenderError) as exc:
            await self.fail(out, delivery.Fail(f"template: {exc}", None))
            return
        if out.channel == "sms":
            if (halt := self.halt_left()) > 0:
                await self.schedule_retry(out, attempt, wait=halt)
                return
            metrics.SMS_WAITING.set(self.gate.waiting + 1)
            await self.gate.acquire(0 if out.urgent else 1)
            metrics.SMS_WAITING.set(self.gate.waiting)
            if (halt := self.halt_left()) > 0:  # a halt that began while this message waited for its token
                await self.schedule_retry(out, attempt, wait=halt)
                return
            outcome = await self.sms.send_sms(out.to, rendered.text, out.message_key, tags=callback_tags(out))
        else:
            outcome = await self.email.send_email(out.to, rendered.subject or "", rendered.text, rendered.html, out.message_key)
        await self.perform(out, outcome, attempt)

    def halt_left(self) -> float:
        return (self.halted_until - self.wall.now()).total_seconds() if self.halted_until else 0.0

    async def perform(self, out: domain.Outgoing, outcome: Outcome, attempt: int) -> None:
        provider = PROVIDER[out.channel]
        if not isinstance(outcome, Sent):
            metrics.child(metrics.PROVIDER_FAILURES, provider, outcome.code or "none").inc()
        action = delivery.after(outcome, attempt=attempt, key=out.message_key, urgent=out.urgent,
                                to_patient=out.audience == "patient" and bool(out.patient_id))
        if isinstance(action, delivery.Record):
            await self.sent(out, action.provider_id)
        elif isinstance(action, delivery.Halt):
            self.halted_until = self.wall.now() + timedelta(seconds=action.wait)
            metrics.child(metrics.PROVIDER_HALTED, provider).set(1)
            log.critical("%s refused our credentials (code %s): sending stopped for %.0f s; check TWILIO_ACCOUNT_SID "
                         "and TWILIO_AUTH_TOKEN. Messages are kept and retried.", provider,
                         getattr(outcome, "code", None), action.wait)
            await self.schedule_retry(out, attempt, wait=action.wait)
        elif isinstance(action, delivery.Retry):
            metrics.child(metrics.MESSAGES, out.channel, "retried").inc()
            if isinstance(outcome, RetryLater) and action.attempt % 10 == 0:
                log.warning("message %s still waiting for %s after %d attempts: %s", out.message_key[:12], provider,
                            action.attempt, outcome.reason)
            await self.schedule_retry(out, action.attempt, wait=action.wait)
        else:
            await self.fail(out, action)

    async def sent(self, out: domain.Outgoing, provider_id: str) -> None:
        provider = PROVIDER[out.channel]
        metrics.child(metrics.PROVIDER_LAST_SUCCESS, provider).set(time.time())
        metrics.child(metrics.PROVIDER_HALTED, provider).set(0)
        metrics.child(metrics.MESSAGES, out.channel, "sent").inc()
        self.ledger[out.message_key] = {"status": "sent", "provider_id": provider_id, "channel": out.channel}
        self.track_urgent(out, pending=False)
        if out.welcomes and (c := self.contacts.get(out.patient_id)) and not c.welcomed:  # read again: it may have changed
            self.contacts.save(c.model_copy(update={"welcomed": True}))
        await self.report(key_of(out), MessageSent(
            message_key=out.message_key, patient_id=out.patient_id, clinic_id=out.clinic_id,
            channel=out.channel, kind=out.kind, provider_id=provider_id,
        ))

    async def schedule_retry(self, out: domain.Outgoing, attempt: int, wait: float) -> None:
        not_before = self.wall.now() + timedelta(seconds=wait)
        retry = RetryScheduled(outgoing=out.model_dump(mode="json"), attempt=attempt, not_before=not_before)
        await self.rt.emit(key_of(out), retry)

    async def fail(self, out: domain.Outgoing, failure: delivery.Fail) -> None:
        self.track_urgent(out, pending=False)
        await self.record_failure(out, failure.error, failure.code)
        if failure.opt_out and out.patient_id:
            await self.opt_out(out, failure.code or "opt_out")
        elif failure.unreachable and out.patient_id:
            await self.raise_unreachable(out, failure.code or "unknown")

    async def opt_out(self, out: domain.Outgoing, code: str) -> None:
        source = f"provider_{code}"  # the contract's consent source ("provider_" and the provider's code)
        event = ConsentChanged(
            event_id=deterministic_id(source, out.message_key),
            patient_id=out.patient_id or "", clinic_id=out.clinic_id or "", channel="sms", granted=False,
            source=source,
        )
        # honoured here at once: the next message for this patient may come before the
        # consent topic has been read back
        if c := self.contacts.get(out.patient_id):
            self.contacts.save(domain.with_consent(c, event))
        await self.rt.emit(event.patient_id, event)

    async def raise_unreachable(self, out: domain.Outgoing, code: str) -> None:
        alert = delivery.unreachable_alert(
            out.patient_id or "", out.clinic_id or "", code, f"Messages to this patient's phone fail (provider code {code}).",
            {"error_code": code, "message_kind": out.kind}, self.clock.now(),
        )
        await self.rt.emit(alert.patient_id, alert)

    async def receipt(self, event: MessageDelivered | MessageFailed) -> None:
        """A delivery receipt for a patient's SMS: a streak of undelivered ones raises
        ``unreachable`` once (rules in :mod:`services.notifier.receipts`)."""
        if not event.patient_id:
            return
        streak = receipts.after_receipt(receipts.Streak.model_validate(self.streaks.get(event.patient_id) or {}), event)
        self.streaks[event.patient_id] = streak.model_dump(mode="json")
        if isinstance(event, MessageFailed) and (alert := receipts.unreachable_alert(streak, event, self.clock.now())):
            await self.rt.emit(alert.patient_id, alert)

    async def suppress(self, s: domain.Suppressed) -> None:
        if self.ledger.get(s.message_key):
            return
        self.ledger[s.message_key] = {"status": "suppressed"}
        metrics.child(metrics.MESSAGES, s.channel, "suppressed").inc()
        await self.report(key_of(s), MessageSuppressed(
            message_key=s.message_key, patient_id=s.patient_id, clinic_id=s.clinic_id,
            channel=s.channel, kind=s.kind, reason=s.reason,
        ))

    async def record_failure(self, message: domain.Outgoing | domain.Refused, error: str, code: str | None) -> None:
        metrics.child(metrics.MESSAGES, message.channel, "failed").inc()
        self.ledger[message.message_key] = {"status": "failed", "error": error}
        log.warning("message %s (%s) failed: %s", message.message_key[:12], message.kind, error)
        await self.report(key_of(message), MessageFailed(
            message_key=message.message_key, patient_id=message.patient_id, clinic_id=message.clinic_id,
            channel=message.channel, kind=message.kind, error=error, error_code=code,
        ))

    def track_urgent(self, out: domain.Outgoing, pending: bool) -> None:
        if out.urgent and out.audience == "clinician":
            (self.urgent_pending.add if pending else self.urgent_pending.discard)(out.message_key)
            metrics.URGENT_UNDELIVERED.set(len(self.urgent_pending))

    async def report(self, key: str, event: Event) -> None:
        """The outcome on ``cyclecare.deliveries``, acknowledged by the broker before the
        record that caused it is (``Runtime.send``: without Faust's send machinery)."""
        await self.rt.emit(key, event, wait=True)
