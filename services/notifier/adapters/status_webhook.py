"""``POST /twilio/status``: Twilio's delivery receipts, signature checked, published as
``message.delivered`` / ``message.failed`` on the deliveries topic (keyed by patient)."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from shared import metrics
from shared.streaming import Runtime
from shared.twilio_signature import verify_twilio
from services.notifier.receipts import TAGS, receipt_event

log = logging.getLogger(__name__)


def add_status_webhook(rt: Runtime) -> None:
    settings = rt.settings

    @rt.routes.post("/twilio/status")
    async def status_callback(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            refused = verify_twilio(request, form, settings.twilio_auth_token, settings.public_url)
            if refused is not None:
                log.warning("refused a status callback: %s", refused.text)
                return refused
            if not (form.get("MessageSid") or form.get("SmsSid")):
                return web.Response(status=400, text="not a Twilio status callback: MessageSid is missing")
            tags = {k: request.query[k] for k in TAGS if k in request.query}
            event = receipt_event(form, tags)
            if event is not None:
                await rt.publish(rt.topics.deliveries, event.patient_id or event.clinic_id or "", event, wait=True)
            return web.Response(status=204)
        finally:
            metrics.WEBHOOK_LATENCY.labels("/twilio/status").observe(time.perf_counter() - started)
