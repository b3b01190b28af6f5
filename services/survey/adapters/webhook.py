"""``POST /twilio/sms``: Twilio's inbound SMS webhook.

Checks the signature against the public URL Twilio called, publishes the raw message to
the internal inbound topic, and only then answers with empty TwiML. Interpretation
happens downstream, so the answer is fast and nothing is lost if this process dies.
A signed form whose fields break the limits (a MessageSid longer than an id, a body past
``MAX_SMS_BODY``) gets 422 from the signature wrapper and is not published, so nothing
unbounded reaches the survey's tables.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from shared.survey_events import InboundSms
from shared.limits import MAX_PHONE
from shared.phones import e164_or_none
from shared.streaming import Runtime
from shared.twilio_signature import twilio_webhook

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
REQUIRED = ("MessageSid", "From", "To", "AccountSid")


def normalise_phone(raw: str) -> str | None:
    return None if len(raw) > MAX_PHONE else e164_or_none(raw)


def add_sms_webhook(rt: Runtime) -> None:
    settings = rt.settings

    @rt.routes.post("/twilio/sms")
    @twilio_webhook(settings.twilio_auth_token, settings.public_url, "/twilio/sms")
    async def inbound_sms(request: web.Request, form: dict[str, str]) -> web.Response:
        missing = [f for f in REQUIRED if not form.get(f)]
        sender = normalise_phone(form.get("From", ""))
        if missing or sender is None or "Body" not in form:
            reason = f"missing fields: {', '.join(missing)}" if missing else "Body is missing" if "Body" not in form else "From is not a phone number"
            return web.Response(status=400, text=f"not a Twilio SMS: {reason}")
        message = InboundSms(
            message_sid=form["MessageSid"], from_phone=sender, to_phone=form["To"], body=form["Body"],
            received_at=datetime.now(timezone.utc),
        )
        await rt.emit(sender, message, wait=True)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
