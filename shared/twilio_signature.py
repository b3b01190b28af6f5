"""Checking that a webhook request really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the URL it called (the public one, with its query string) plus the sorted
form parameters with the account's auth token. Behind a proxy the request's own URL is not
that URL, so the configured public base is used instead.

Hostile requests meet the checks in this order, each before any field is interpreted: no
signature header → 403 (the body is not even read); a body over the limit → 413; a body
that is not a UTF-8 urlencoded form (another content type or charset, multipart, bytes
that are not UTF-8, too many fields) → 400; a signature that does not match → 403; a
signed form whose fields break the contract limits → 422 with the reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError
from twilio.request_validator import RequestValidator

from shared import metrics
from shared.codec import validation_reasons
from shared.http_input import Refused, read_body
from shared.limits import MAX_FORM_FIELDS, MAX_HTTP_BODY_BYTES

log = logging.getLogger(__name__)


def public_url_of(request: web.Request, public_base: str) -> str:
    """The URL Twilio signed: the configured public base, then this path and query exactly
    as they came on the request line (aiohttp's parsed forms re-quote ``%3A`` and the like,
    which would no longer match)."""
    return public_base.rstrip("/") + request.raw_path


def _unsigned(request: web.Request, auth_token: str | None) -> web.Response | None:
    """The refusals that need no body: webhooks switched off, or no signature at all."""
    if not auth_token:
        return web.Response(status=503, text="webhook disabled: TWILIO_AUTH_TOKEN is not set")
    if not request.headers.get("X-Twilio-Signature"):
        return web.Response(status=403, text="invalid Twilio signature")
    return None


def verify_twilio(request: web.Request, form: dict[str, str], auth_token: str | None, public_base: str) -> web.Response | None:
    """``None`` when the request is Twilio's; otherwise the error response to send."""
    if not auth_token:
        return web.Response(status=503, text="webhook disabled: TWILIO_AUTH_TOKEN is not set")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(auth_token).validate(public_url_of(request, public_base), form, signature):
        return web.Response(status=403, text="invalid Twilio signature")
    return None


FORM_TYPE = "application/x-www-form-urlencoded"


def parse_form(body: bytes, content_type: str, charset: str | None) -> dict[str, str]:
    """The fields of a Twilio form; :class:`Refused` (400) for anything else. A repeated
    field keeps its last value, as before."""
    if content_type != FORM_TYPE:
        raise Refused(400, f"body is not a form: expected {FORM_TYPE}")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise Refused(400, "body is not a form: only the UTF-8 charset is accepted")
    try:
        text = body.decode("ascii")  # a urlencoded body is ASCII; the values are %-encoded UTF-8
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise Refused(400, "body is not a form: not UTF-8") from None
    except ValueError:
        raise Refused(400, f"body is not a form: more than {MAX_FORM_FIELDS} fields") from None
    return dict(pairs)


async def read_form(request: web.Request) -> dict[str, str]:
    body = await read_body(request, MAX_HTTP_BODY_BYTES)
    return parse_form(body, request.content_type, request.charset)


def _unprocessable(exc: ValidationError) -> web.Response:
    return web.json_response({"error": "invalid Twilio request", "details": validation_reasons(exc)}, status=422)


TwilioHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]


def twilio_webhook(auth_token: str | None, public_base: str, endpoint: str) -> Callable[[TwilioHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """Make ``handler(request, form)`` a view that only ever sees Twilio's signed requests
    (others get 403 or 503 here) and whose answer time lands in the webhook histogram."""

    def wrap(handler: TwilioHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def view(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                refused = _unsigned(request, auth_token)
                if refused is None:
                    form = await read_form(request)
                    refused = verify_twilio(request, form, auth_token, public_base)
                if refused is not None:
                    log.warning("refused a request to %s: %s", endpoint, refused.text)
                    return refused
                return await handler(request, form)
            except Refused as exc:
                log.warning("refused a request to %s: %s", endpoint, exc.reason)
                return web.Response(status=exc.status, text=exc.reason)
            except ValidationError as exc:
                log.warning("refused a signed request to %s: %s error(s)", endpoint, exc.error_count())
                return _unprocessable(exc)
            finally:
                metrics.WEBHOOK_LATENCY.labels(endpoint).observe(time.perf_counter() - started)

        return view

    return wrap
