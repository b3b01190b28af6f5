"""Faust wiring of the survey.

inbound (keyed by phone) --match phone, drop duplicate MessageSids--> survey-replies
(keyed by patient) --conversation rules--> outbound, alerts, consent, checkins.
The phone index is fed by re-keying patient snapshots by phone (survey-phones), so every
table is written only from the partition that owns its key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from shared.clinics import Directory
from shared.clock import Clock
from shared.config import Settings
from shared.events import (
    CheckinDue,
    CheckinExpired,
    ConsentChanged,
    Event,
    PatientDischarged,
    PatientSnapshot,
    deterministic_id,
)
from shared.notifier_events import OutboundRequested
from shared.survey_events import InboundSms, ReplyReceived
from shared.limits import SMS_PARSE_CHARS
from shared.streaming import Runtime
from services.survey import domain
from services.survey.ack_desk import AckDesk
from services.survey.adapters.webhook import add_sms_webhook
from services.survey.parsing import parse_reply

log = logging.getLogger(__name__)
SIDS_REMEMBERED = 200


@dataclass
class Deps:
    """Everything the handlers use, made once in :func:`build`."""

    rt: Runtime
    clinics: Directory
    clock: Clock
    files: MutableMapping[str, Any]  # patient id -> domain.PatientFile
    phones: MutableMapping[str, Any]  # phone -> patient, clinic, language and the MessageSids seen
    desk: AckDesk  # clinicians taking alerts by SMS ("ACK 48"), keyed by their phone


def load(d: Deps, patient_id: str) -> domain.PatientFile:
    stored = d.files.get(patient_id)
    return domain.PatientFile.model_validate(stored) if stored else domain.PatientFile(patient_id=patient_id)


async def apply(d: Deps, outcome: domain.Outcome) -> None:
    # The file is written before the first await: several agents share the table, and
    # a load ... await ... write would let one agent's update overwrite another's.
    d.files[outcome.file.patient_id] = outcome.file.model_dump(mode="json")
    for event in outcome.emit:
        await d.rt.emit(outcome.file.patient_id, event)


# --- keyed by patient -------------------------------------------------------


async def on_patient(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, PatientSnapshot):
        d.clinics.require(event.clinic_id)
        previous = load(d, event.patient_id)
        await apply(d, domain.on_patient(previous, event))
        for phone in domain.phones_to_reindex(previous.phone, event):
            await d.rt.publish(d.rt.topics.survey_phones, phone, event)  # re-keyed by phone
    elif isinstance(event, PatientDischarged):
        await apply(d, domain.on_discharged(load(d, event.patient_id)))


async def on_due(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, CheckinDue):
        d.clinics.require(event.clinic_id)
        await apply(d, domain.on_checkin_due(load(d, event.patient_id), event))
    elif isinstance(event, CheckinExpired):
        await apply(d, domain.on_checkin_expired(load(d, event.patient_id), event, d.clock.now()))


async def on_consent(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ConsentChanged) and event.source != "sms_keyword":
        await apply(d, domain.on_consent(load(d, event.patient_id), event))


async def on_reply(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, ReplyReceived):
        file = load(d, event.patient_id)
        question = file.open.question if file.open else None
        reply = parse_reply(event.body[:SMS_PARSE_CHARS], question)  # the whole body stays in the evidence
        clinic = d.clinics.get(event.clinic_id)
        rules = clinic.rules if clinic else domain.DEFAULT_RULES
        await apply(d, domain.on_reply(file, event.body, event.message_sid, reply, d.clock.now(), rules=rules))


# --- keyed by phone ---------------------------------------------------------


async def on_phone(d: Deps, key: str, event: Event) -> None:
    if isinstance(event, PatientSnapshot) and key:
        d.phones[key] = domain.index_phone(d.phones.get(key) or {}, key, event)


async def on_inbound(d: Deps, key: str, event: Event) -> None:
    if not isinstance(event, InboundSms):
        return
    entry = d.phones.get(event.from_phone) or {}
    seen = entry.get("sids", [])
    if event.message_sid in seen:
        return  # Twilio delivered the same message twice
    # recorded before the first await, so that the phone index agent's update of this
    # entry cannot be overwritten with the stale copy read here
    d.phones[event.from_phone] = entry | {"sids": [*seen, event.message_sid][-SIDS_REMEMBERED:]}
    await forward(d, entry, event)


async def forward(d: Deps, entry: dict, event: InboundSms) -> None:
    if people := d.clinics.clinicians_with_phone(event.from_phone):  # a clinician's number is never a patient's
        await d.desk.on_clinician_sms(event, people)
        return
    if "patient_id" not in entry:
        log.info("SMS from a number no clinic knows (%s chars); asked for the neutral reply", len(event.body))
        await d.rt.emit(event.from_phone, OutboundRequested(
            event_id=deterministic_id("unknown", event.from_phone), message_key=deterministic_id("unknown", event.from_phone),
            patient_id=None, clinic_id="", to_phone=event.from_phone, kind="unknown_sender",
        ))
        return
    await escalate_at_once(d, entry, event)
    await d.rt.emit(entry["patient_id"], ReplyReceived(
        event_id=event.message_sid, patient_id=entry["patient_id"], clinic_id=entry["clinic_id"],
        message_sid=event.message_sid, body=event.body, received_at=event.received_at,
    ))


async def escalate_at_once(d: Deps, entry: dict, event: InboundSms) -> None:
    """The safety reply and the urgent alert leave from here, one hop (and one
    consumer poll) sooner than the conversation."""
    file = domain.PatientFile(patient_id=entry["patient_id"], clinic_id=entry["clinic_id"], language=entry.get("language", "en"))
    for reply_or_alert in domain.red_flags_at_any_time(file, event.body, event.message_sid, d.clock.now()):
        await d.rt.emit(file.patient_id, reply_or_alert)


# --- clinicians' view of their alerts (keyed by patient, then re-keyed by clinician phone) ---


async def on_alert(d: Deps, key: str, event: Event) -> None:
    await d.desk.on_alert(key, event)


async def on_alert_action(d: Deps, key: str, event: Event) -> None:
    await d.desk.on_action(key, event)


async def on_clinician_view(d: Deps, key: str, event: Event) -> None:
    await d.desk.on_view(key, event)


# topic attribute -> handler: what the survey reacts to, on one screen
HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "patients": on_patient, "due": on_due, "consent": on_consent, "survey_replies": on_reply,
    "survey_phones": on_phone, "inbound": on_inbound,
    "alerts": on_alert, "alert_actions": on_alert_action, "survey_clinician_alerts": on_clinician_view,
}


def build(settings: Settings, clock: Clock, clinics: Directory) -> Runtime:
    """Make the dependencies once, then wire each handler of :data:`HANDLERS` to its topic."""
    rt = Runtime("survey", settings)
    files = rt.table("files")
    deps = Deps(rt, clinics, clock, files, rt.table("phones"), AckDesk(rt, clinics, clock, files, rt.table("clinician_alerts")))
    for attribute, handler in HANDLERS.items():
        rt.agent(getattr(rt.topics, attribute), partial(handler, deps), name=f"survey_{handler.__name__}")
    add_sms_webhook(rt)
    return rt
