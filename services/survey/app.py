"""Faust wiring of the survey.

inbound (keyed by phone) --match phone, drop duplicate MessageSids--> survey-replies
(keyed by patient) --conversation rules--> outbound, alerts, consent, checkins.
The phone index is fed by re-keying patient snapshots by phone (survey-phones), so every
table is written only from the partition that owns its key.
"""

from __future__ import annotations

import logging

from shared.clinics import Directory
from shared.clock import Clock
from shared.config import Settings
from shared.events import (
    CheckinDue,
    CheckinExpired,
    ConsentChanged,
    Event,
    InboundSms,
    OutboundRequested,
    PatientDischarged,
    PatientSnapshot,
    ReplyReceived,
    deterministic_id,
)
from shared.limits import SMS_PARSE_CHARS
from shared.streaming import Runtime
from services.survey import domain
from services.survey.ack_desk import AckDesk
from services.survey.adapters.webhook import add_sms_webhook
from services.survey.parsing import detect_red_flags, parse_reply

log = logging.getLogger(__name__)
SIDS_REMEMBERED = 200


def build(settings: Settings, clock: Clock, clinics: Directory) -> Runtime:
    rt = Runtime("survey", settings)
    topics = rt.topics
    phones = rt.table("phones")
    files = rt.table("files")
    desk = AckDesk(rt, clinics, clock, files, rt.table("clinician_alerts"))

    def load(patient_id: str) -> domain.PatientFile:
        stored = files.get(patient_id)
        return domain.PatientFile.model_validate(stored) if stored else domain.PatientFile(patient_id=patient_id)

    async def apply(outcome: domain.Outcome) -> None:
        # The file is written before the first await: several agents share the table, and
        # a load ... await ... write would let one agent's update overwrite another's.
        files[outcome.file.patient_id] = outcome.file.model_dump(mode="json")
        for short, event in outcome.emit:
            await rt.publish(topics.name(short), outcome.file.patient_id, event)

    # --- keyed by patient -------------------------------------------------------

    async def on_patient(key: str, event: Event) -> None:
        if isinstance(event, PatientSnapshot):
            clinics.require(event.clinic_id)
            previous = load(event.patient_id)
            await apply(domain.on_patient(previous, event))
            for phone in domain.phones_to_reindex(previous.phone, event):
                await rt.publish(topics.survey_phones, phone, event)
        elif isinstance(event, PatientDischarged):
            await apply(domain.on_discharged(load(event.patient_id)))

    async def on_due(key: str, event: Event) -> None:
        if isinstance(event, CheckinDue):
            await apply(domain.on_checkin_due(load(event.patient_id), event))
        elif isinstance(event, CheckinExpired):
            await apply(domain.on_checkin_expired(load(event.patient_id), event, clock.now()))

    async def on_consent(key: str, event: Event) -> None:
        if isinstance(event, ConsentChanged) and event.source != "sms_keyword":
            await apply(domain.on_consent(load(event.patient_id), event))

    async def on_reply(key: str, event: Event) -> None:
        if isinstance(event, ReplyReceived):
            file = load(event.patient_id)
            question = file.open.question if file.open else None
            reply = parse_reply(event.body[:SMS_PARSE_CHARS], question)  # the whole body stays in the evidence
            # the inbound agent already escalated the red flags the text itself names
            clinic = clinics.get(event.clinic_id)
            rules = clinic.rules if clinic else domain.DEFAULT_RULES
            outcome = domain.on_reply(file, event.body, event.message_sid, reply, clock.now(), escalated=True, rules=rules)
            await apply(outcome)

    # --- keyed by phone ---------------------------------------------------------

    async def on_phone(key: str, event: Event) -> None:
        if isinstance(event, PatientSnapshot) and key:
            phones[key] = domain.index_phone(phones.get(key) or {}, key, event)

    async def on_inbound(key: str, event: Event) -> None:
        if not isinstance(event, InboundSms):
            return
        entry = phones.get(event.from_phone) or {}
        seen = entry.get("sids", [])
        if event.message_sid in seen:
            return  # Twilio delivered the same message twice
        # recorded before the first await, so that the phone index agent's update of this
        # entry cannot be overwritten with the stale copy read here
        phones[event.from_phone] = entry | {"sids": [*seen, event.message_sid][-SIDS_REMEMBERED:]}
        await forward(entry, event)

    async def forward(entry: dict, event: InboundSms) -> None:
        if people := clinics.clinicians_with_phone(event.from_phone):  # a clinician's number is never a patient's
            await desk.on_clinician_sms(event, people)
            return
        if "patient_id" not in entry:
            log.info("SMS from a number no clinic knows (%s chars); asked for the neutral reply", len(event.body))
            await rt.publish(topics.outbound, event.from_phone, OutboundRequested(
                event_id=deterministic_id("unknown", event.from_phone), message_key=deterministic_id("unknown", event.from_phone),
                patient_id=None, clinic_id="", to_phone=event.from_phone, kind="unknown_sender",
            ))
            return
        await escalate_at_once(entry, event)
        await rt.publish(topics.survey_replies, entry["patient_id"], ReplyReceived(
            event_id=event.message_sid, patient_id=entry["patient_id"], clinic_id=entry["clinic_id"],
            message_sid=event.message_sid, body=event.body, received_at=event.received_at,
        ))

    async def escalate_at_once(entry: dict, event: InboundSms) -> None:
        """Red-flag words need no conversation state: the safety reply and the urgent
        alert leave from here, one hop (and one consumer poll) sooner."""
        red_flags = detect_red_flags(event.body[:SMS_PARSE_CHARS])
        if not red_flags:
            return
        file = domain.PatientFile(patient_id=entry["patient_id"], clinic_id=entry["clinic_id"], language=entry.get("language", "en"))
        for short, alert_or_reply in domain.red_flag_escalation(file, event.body, event.message_sid, red_flags, clock.now()):
            await rt.publish(topics.name(short), file.patient_id, alert_or_reply)

    for topic, handler in {
        topics.patients: on_patient,
        topics.due: on_due,
        topics.consent: on_consent,
        topics.survey_replies: on_reply,
        topics.survey_phones: on_phone,
        topics.inbound: on_inbound,
        topics.alerts: desk.on_alert,
        topics.alert_actions: desk.on_action,
        topics.survey_clinician_alerts: desk.on_view,
    }.items():
        rt.agent(topic, handler, name=f"survey_{handler.__name__}")
    add_sms_webhook(rt)
    return rt
