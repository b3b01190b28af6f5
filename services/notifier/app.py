"""Faust wiring of the notifier: decide (domain), render (rendering), send (adapters),
record (ledger), report (deliveries)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from shared import metrics
from shared.clinics import Directory
from shared.config import Settings
from shared.events import (
    CheckinDue,
    ClinicianAlert,
    ConsentChanged,
    Event,
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
from services.notifier import domain
from services.notifier.adapters.ports import EmailSender, ProviderError, SmsSender
from services.notifier.rendering import RenderError, TemplateMissing, render

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6


def backoff(attempt: int, key: str) -> timedelta:
    """Exponential backoff with deterministic jitter (so a redelivered retry waits the same)."""
    jitter = int(key[:4], 16) / 0xFFFF if key[:4].isalnum() else 0.5
    return timedelta(seconds=min(300.0, 2.0**attempt) * (0.5 + jitter / 2))


def build(settings: Settings, clinics: Directory, sms: SmsSender, email: EmailSender) -> Runtime:
    rt = Runtime("notifier", settings)
    contacts = rt.table("contacts")
    ledger = rt.table("ledger")
    topics = rt.topics

    def contact(patient_id: str | None) -> domain.Contact | None:
        stored = contacts.get(patient_id) if patient_id else None
        return domain.Contact.model_validate(stored) if stored else None

    def save(c: domain.Contact) -> None:
        contacts[c.patient_id] = c.model_dump(mode="json")

    async def report(key: str, event: Event) -> None:
        await rt.publish(topics.deliveries, key, event)

    async def suppress(s: domain.Suppressed) -> None:
        if ledger.get(s.message_key):
            return
        ledger[s.message_key] = {"status": "suppressed"}
        metrics.MESSAGES.labels(s.channel, "suppressed").inc()
        await report(s.patient_id or s.clinic_id or "", MessageSuppressed(
            message_key=s.message_key, patient_id=s.patient_id, clinic_id=s.clinic_id,
            channel=s.channel, kind=s.kind, reason=s.reason,
        ))

    async def deliver(out: domain.Outgoing, attempt: int = 0) -> None:
        if ledger.get(out.message_key):
            return  # this cause was already handled: a redelivery sends nothing
        key = out.patient_id or out.clinic_id or ""
        try:
            rendered = render(out.kind, out.channel, out.language, out.context)
            if out.channel == "sms":
                provider_id = await sms.send_sms(out.to, rendered.text, out.message_key)
            else:
                provider_id = await email.send_email(out.to, rendered.subject or "", rendered.text, rendered.html, out.message_key)
        except (TemplateMissing, RenderError) as exc:
            await fail(out, f"template: {exc}", None)
            return
        except ProviderError as exc:
            await provider_failed(out, exc, attempt)
            return
        metrics.PROVIDER_LAST_SUCCESS.labels("twilio" if out.channel == "sms" else "smtp").set(time.time())
        metrics.MESSAGES.labels(out.channel, "sent").inc()
        ledger[out.message_key] = {"status": "sent", "provider_id": provider_id, "channel": out.channel}
        if out.audience == "patient" and (c := contact(out.patient_id)) and not c.welcomed:
            save(c.model_copy(update={"welcomed": True}))
        await report(key, MessageSent(
            message_key=out.message_key, patient_id=out.patient_id, clinic_id=out.clinic_id,
            channel=out.channel, kind=out.kind, provider_id=provider_id,
        ))

    async def provider_failed(out: domain.Outgoing, exc: ProviderError, attempt: int) -> None:
        provider = "twilio" if out.channel == "sms" else "smtp"
        metrics.PROVIDER_FAILURES.labels(provider, exc.code or str(exc.status or "network")).inc()
        if exc.retryable and attempt + 1 < MAX_ATTEMPTS:
            metrics.MESSAGES.labels(out.channel, "retried").inc()
            not_before = datetime.now(timezone.utc) + backoff(attempt, out.message_key)
            retry = RetryScheduled(outgoing=out.model_dump(mode="json"), attempt=attempt + 1, not_before=not_before)
            await rt.publish(topics.notifier_retry, out.patient_id or out.clinic_id or "", retry)
            return
        await fail(out, str(exc), exc.code)
        if exc.code == "21610" and out.patient_id:
            await rt.publish(topics.consent, out.patient_id, ConsentChanged(
                patient_id=out.patient_id, clinic_id=out.clinic_id or "", channel="sms", granted=False,
                source="provider_21610",
            ))
        elif exc.code in ("21211", "21612", "21614", "21606", "21635") and out.patient_id:
            await raise_unreachable(out, exc.code)

    async def fail(out: domain.Outgoing, error: str, code: str | None) -> None:
        metrics.MESSAGES.labels(out.channel, "failed").inc()
        ledger[out.message_key] = {"status": "failed", "error": error}
        log.warning("message %s (%s) failed: %s", out.message_key[:12], out.kind, error)
        await report(out.patient_id or out.clinic_id or "", MessageFailed(
            message_key=out.message_key, patient_id=out.patient_id, clinic_id=out.clinic_id,
            channel=out.channel, kind=out.kind, error=error, error_code=code,
        ))

    async def raise_unreachable(out: domain.Outgoing, code: str) -> None:
        alert = ClinicianAlert(
            alert_id=deterministic_id("unreachable", out.patient_id, code),
            patient_id=out.patient_id or "", clinic_id=out.clinic_id or "", severity="routine",
            reasons=["unreachable"], summary=f"Messages to this patient's phone fail (provider code {code}).",
            raised_at=datetime.now(timezone.utc), evidence={"error_code": code, "message_kind": out.kind},
        )
        await rt.publish(topics.alerts, alert.patient_id, alert)

    async def execute(decisions: list[domain.Decision]) -> None:
        # urgent first, then the rest: safety before routine
        for decision in sorted(decisions, key=lambda d: not getattr(d, "urgent", False)):
            if isinstance(decision, domain.Suppressed):
                await suppress(decision)
            else:
                await deliver(decision)

    def clinic_of(clinic_id: str):  # noqa: ANN202
        clinic = clinics.get(clinic_id)
        if clinic is None:
            raise ValueError(f"clinic {clinic_id!r} is not in the clinics file")
        return clinic

    async def on_patient(key: str, event: Event) -> None:
        if isinstance(event, PatientSnapshot):
            clinic_of(event.clinic_id)
            save(domain.contact_from(event, contact(event.patient_id)))
        elif isinstance(event, PatientDischarged) and (c := contact(event.patient_id)):
            save(c.model_copy(update={"discharged": True}))

    async def on_consent(key: str, event: Event) -> None:
        if isinstance(event, ConsentChanged) and (c := contact(event.patient_id)):
            save(domain.with_consent(c, event))

    async def on_due(key: str, event: Event) -> None:
        if isinstance(event, (CheckinDue, ReminderDue)):
            await execute(domain.on_due(event, contact(event.patient_id), clinic_of(event.clinic_id)))

    async def on_alert(key: str, event: Event) -> None:
        if isinstance(event, ClinicianAlert):
            metrics.ALERTS.labels(event.severity).inc()
            await execute(domain.on_alert(event, contact(event.patient_id), clinic_of(event.clinic_id)))

    async def on_outbound(key: str, event: Event) -> None:
        if isinstance(event, OutboundRequested):
            clinic = clinic_of(event.clinic_id) if event.patient_id else None
            await execute(domain.on_outbound(event, contact(event.patient_id), clinic))

    async def on_retry(key: str, event: Event) -> None:
        if isinstance(event, RetryScheduled):
            wait = (event.not_before - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                import asyncio

                await asyncio.sleep(wait)  # only the retry topic waits; fresh messages flow on
            await deliver(domain.Outgoing.model_validate(event.outgoing), event.attempt)

    for topic, handler in {
        topics.patients: on_patient,
        topics.consent: on_consent,
        topics.due: on_due,
        topics.alerts: on_alert,
        topics.outbound: on_outbound,
        topics.notifier_retry: on_retry,
    }.items():
        rt.agent(topic, handler, name=f"notifier_{handler.__name__}")
    return rt
