"""``POST /twilio/status``: Twilio's delivery receipts, signature checked, published as
``message.delivered`` / ``message.failed`` on the deliveries topic (keyed by patient)."""

from __future__ import annotations


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
            await rt.emit(event.patient_id or event.clinic_id or "", event, wait=True)
        return web.Response(status=204)
