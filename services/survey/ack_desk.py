"""The survey's Faust edge for clinicians taking alerts by SMS (rules: :mod:`services.survey.acks`).

Alerts and their actions are keyed by patient; a clinician's reply is keyed by the phone it
came from. So every urgent or high alert, and every action on one, is re-published on the
internal topic ``survey-clinician-alerts`` once per phone of a clinician of its clinic,
keyed by that phone; the ``clinician_alerts`` table (keyed by phone) holds each phone's view.
The inbound SMS topic is keyed by phone too, so a reply is answered by the worker that owns
its phone's view, whatever the number of survey workers: no look-up crosses partitions. A
phone shared by clinicians of several clinics gets the alerts of each of them.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from shared.ack_codes import carries_code
from shared.clinics import Clinic, Clinician, Directory
from shared.clock import Clock
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert, Event
from shared.survey_events import AlertNoted, InboundSms
from shared.limits import SMS_PARSE_CHARS
from shared.streaming import Runtime
from services.survey import acks

log = logging.getLogger(__name__)


class AckDesk:
    def __init__(self, rt: Runtime, clinics: Directory, clock: Clock, files: MutableMapping[str, Any],
                 views: MutableMapping[str, Any]) -> None:
        self.rt, self.clinics, self.clock, self.files, self.views = rt, clinics, clock, files, views

    # --- keyed by patient: fan out to the clinicians' phones ------------------------------

    async def on_alert(self, key: str, event: Event) -> None:
        if not isinstance(event, ClinicianAlert) or not carries_code(event.severity):
            return
        clinic = self.clinics.get(event.clinic_id)
        if clinic is None:  # the notifier dead-letters it; nobody here could take it
            return
        file = self.files.get(event.patient_id) or {}
        initial = acks.initial_of(file.get("first_name", ""), event.patient_id)
        noted = acks.noted_from(event.alert_id, event.patient_id, clinic, event.severity, event.summary,
                                event.raised_at, initial, cause=event.event_id)
        await self._fan_out(clinic, noted)

    async def on_action(self, key: str, event: Event) -> None:
        if isinstance(event, (AlertAcknowledged, AlertResolved, AlertEscalated)) and (clinic := self.clinics.get(event.clinic_id)):
            await self._fan_out(clinic, event)

    async def _fan_out(self, clinic: Clinic, event: Event) -> None:
        for phone in acks.clinician_phones(clinic):
            await self.rt.publish(self.rt.topics.survey_clinician_alerts, phone, event)

    # --- keyed by phone ---------------------------------------------------------------------

    async def on_view(self, phone: str, event: Event) -> None:
        view, now = self.views.get(phone) or {}, self.clock.now()
        if isinstance(event, AlertNoted):
            self.views[phone] = acks.note_alert(view, event, now)
        elif isinstance(event, (AlertAcknowledged, AlertResolved, AlertEscalated)):
            self.views[phone] = after = acks.note_action(view, event, now)
            people = self.clinics.clinicians_with_phone(phone)
            if isinstance(event, AlertAcknowledged) and (notice := acks.overtaken(view, after, event.alert_id, people, now)):
                await self.rt.publish(self.rt.topics.outbound, phone,
                                      acks.reply_request(event.event_id, phone, event.clinic_id, notice))

    async def on_clinician_sms(self, event: InboundSms, people: list[tuple[Clinic, Clinician]]) -> None:
        """A reply from a clinician's phone: never a patient's answer, opt-out or alert."""
        command = acks.parse_ack(event.body[:SMS_PARSE_CHARS])
        decided = acks.answer(self.views.get(event.from_phone) or {}, command, people, self.clock.now(), event.message_sid)
        self.views[event.from_phone] = decided.view  # before the first await: the view agent shares this entry
        log.info("SMS from a clinician's phone: %s", decided.reply["outcome"])
        if decided.acknowledged is not None:
            ack = decided.acknowledged
            await self.rt.emit(ack.patient_id, ack)
        clinic_id = decided.acknowledged.clinic_id if decided.acknowledged else people[0][0].id
        await self.rt.publish(self.rt.topics.outbound, event.from_phone,
                              acks.reply_request(event.message_sid, event.from_phone, clinic_id, decided.reply))
