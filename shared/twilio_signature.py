"""Checking that a webhook request really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the URL it called (the public one, with its query string) plus the sorted
form parameters with the account's auth token. Behind a proxy the request's own URL is not
that URL, so the configured public base is used instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from twilio.request_validator import RequestValidator

from shared import metrics

log = logging.getLogger(__name__)


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


TwilioHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]


def twilio_webhook(auth_token: str | None, public_base: str, endpoint: str) -> Callable[[TwilioHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """Make ``handler(request, form)`` a view that only ever sees Twilio's signed requests
    (others get 403 or 503 here) and whose answer time lands in the webhook histogram."""

    def wrap(handler: TwilioHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def view(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
                refused = verify_twilio(request, form, auth_token, public_base)
                if refused is not None:
                    log.warning("refused a request to %s: %s", endpoint, refused.text)
                    return refused
                return await handler(request, form)
            finally:
                metrics.WEBHOOK_LATENCY.labels(endpoint).observe(time.perf_counter() - started)

        return view

    return wrap
