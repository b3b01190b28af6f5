"""Checking that a webhook request really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the URL it called (the public one, with its query string) plus the sorted
form parameters with the account's auth token. Behind a proxy the request's own URL is not
that URL, so the configured public base is used instead.
"""

from __future__ import annotations

from aiohttp import web
from twilio.request_validator import RequestValidator


def public_url_of(request: web.Request, public_base: str) -> str:
    """The URL Twilio signed: the configured public base, then this path and query exactly
    as they came on the request line (aiohttp's parsed forms re-quote ``%3A`` and the like,
    which would no longer match)."""
    return public_base.rstrip("/") + request.raw_path


def verify_twilio(request: web.Request, form: dict[str, str], auth_token: str | None, public_base: str) -> web.Response | None:
    """``None`` when the request is Twilio's; otherwise the error response to send."""
    if not auth_token:
        return web.Response(status=503, text="webhook disabled: TWILIO_AUTH_TOKEN is not set")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(auth_token).validate(public_url_of(request, public_base), form, signature):
        return web.Response(status=403, text="invalid Twilio signature")
    return None
