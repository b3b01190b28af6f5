"""``POST /twilio/status``: Twilio's delivery receipts, signature checked, published as
``message.delivered`` / ``message.failed`` on the deliveries topic (keyed by patient), and
the same event on the notifier's internal topic, where the patient's partition owner counts
the streak of undelivered ones. The notifier does not read the deliveries topic: it would
read back every ``message.sent`` it writes, a second record per message for nothing."""

from __future__ import annotations

import asyncio

from aiohttp import web

from shared.streaming import Runtime
from shared.twilio_signature import twilio_webhook
from services.notifier.receipts import TAGS, receipt_event


def add_status_webhook(rt: Runtime) -> None:
    settings = rt.settings

    @rt.routes.post("/twilio/status")
    @twilio_webhook(settings.twilio_auth_token, settings.public_url, "/twilio/status")
    async def status_callback(request: web.Request, form: dict[str, str]) -> web.Response:
        if not (form.get("MessageSid") or form.get("SmsSid")):
            return web.Response(status=400, text="not a Twilio status callback: MessageSid is missing")
        tags = {k: request.query[k] for k in TAGS if k in request.query}
        event = receipt_event(form, tags)
        if event is not None:
            key = event.patient_id or event.clinic_id or ""
            # answered once both are acknowledged: else Twilio calls again (the event id is the same)
            await asyncio.gather(*(rt.publish(topic, key, event, wait=True)
                                   for topic in (rt.topics.of(event), rt.topics.notifier_retry)))
        return web.Response(status=204)
