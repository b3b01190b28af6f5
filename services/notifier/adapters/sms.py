"""SMS adapters: Twilio (async client) and the console."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from services.notifier.adapters.ports import (
    CredentialsRejected,
    Outcome,
    RecipientOptedOut,
    RecipientUnreachable,
    Rejected,
    RetryLater,
    Sent,
)

log = logging.getLogger(__name__)
# the twilio client logs every request's headers at INFO: ten lines a message, and URLs with numbers
logging.getLogger("twilio.async_http_client").setLevel(logging.WARNING)

# Twilio error numbers (DESIGN.md, "Known pitfalls"): only this module knows them.
OPTED_OUT = frozenset({"21610"})
UNREACHABLE = frozenset({"21211", "21612", "21614", "21606", "21635"})
AUTH_ERRORS = frozenset({"20003", "20404"})
TOO_MANY_REQUESTS = "20429"

TWILIO_HOST = "https://api.twilio.com"


class _FormQuotes(dict):
    """``str.translate``'s table for a form field: every character as ``quote_plus`` writes
    it (ASCII filled in, any other character's UTF-8 escapes added when first seen)."""

    def __missing__(self, code: int) -> str:
        self[code] = "".join(f"%{byte:02X}" for byte in chr(code).encode())
        return self[code]


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_QUOTES = _FormQuotes({code: chr(code) if chr(code) in _SAFE else f"%{code:02X}" for code in range(128)})
_FORM_QUOTES[ord(" ")] = "+"


def form_body(fields: Mapping[str, object]) -> bytes:
    """A form-encoded body, as ``urlencode(fields, doseq=True)`` encodes it, one C loop per
    field (``quote_plus`` looks at every byte in Python: a twentieth of a message's CPU for
    a body and a callback URL)."""
    pairs = ((key, value) for key, values in fields.items()
             for value in (values if isinstance(values, (list, tuple)) else (values,)))
    return "&".join(f"{str(key).translate(_FORM_QUOTES)}={str(value).translate(_FORM_QUOTES)}"
                    for key, value in pairs).encode()


class _RebasedHttpClient(AsyncTwilioHttpClient):
    """Twilio's async HTTP client with the API host replaced (``TWILIO_API_BASE``), and a
    cheaper request: the Authorization header is encoded once instead of an
    ``aiohttp.BasicAuth`` (and aiohttp's deprecation warning) per request, the form is
    encoded by :func:`form_body` instead of a ``FormData``, and nothing is kept for twilio's
    test hooks or formatted for its request log (its logger is at WARNING).

    Its own ``max_retries`` is never used: a retried POST can send an SMS twice.
    """

    def __init__(self, base_url: str, timeout: float, credentials: tuple[str, str]) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        # twilio hands aiohttp no timeout (None: none at all); the session's total bounds each
        # request with the timer aiohttp sets anyway
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._base = base_url.rstrip("/")
        self._authorization = aiohttp.encode_basic_auth(*credentials)  # the client's own: twilio passes them back

    def _rebased(self, url: str) -> str:
        if self._base == TWILIO_HOST:
            return url
        if url.startswith(TWILIO_HOST + "/"):
            return self._base + url[len(TWILIO_HOST):]
        parts = urlsplit(url)
        return self._base + parts.path + (f"?{parts.query}" if parts.query else "")

    async def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,  # noqa: ANN001
                      allow_redirects=False) -> Response:  # noqa: ANN001
        if self.session is None:
            raise RuntimeError("the Twilio HTTP client has no session")
        if isinstance(data, dict):
            data = form_body(data)
        headers = {**(headers or {}), "Authorization": self._authorization}
        bounded = {"timeout": timeout} if timeout else {}
        async with self.session.request(
            method.upper(), self._rebased(url), params=params, data=data, headers=headers,
            allow_redirects=allow_redirects, **bounded,
        ) as response:
            return Response(response.status, await response.text(), response.headers)


class TwilioSmsSender:
    def __init__(
        self, account_sid: str, auth_token: str, *, from_number: str | None, messaging_service_sid: str | None,
        api_base: str = TWILIO_HOST, status_callback: str | None = None, timeout: float = 10.0,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required to send SMS")
        self._credentials = (account_sid, auth_token)
        self._api_base = api_base
        self._http: _RebasedHttpClient | None = None
        self._client: Client | None = None
        self._from = from_number
        self._service = messaging_service_sid
        self._status_callback = status_callback
        self._timeout = timeout

    async def send_sms(self, to: str, body: str, idempotency_key: str, tags: Mapping[str, str] | None = None) -> Outcome:
        """``tags`` ride on the status callback URL, so the receipt names its message."""
        params: dict[str, str] = {"to": to, "body": body}
        if self._service:
            params["messaging_service_sid"] = self._service
        else:
            params["from_"] = self._from or ""
        if self._status_callback:
            query = f"?{form_body(dict(sorted(tags.items()))).decode()}" if tags else ""
            params["status_callback"] = self._status_callback + query
        try:
            # create_async is this call and then a MessageInstance of some forty fields, three
            # RFC 2822 dates parsed among them, of which we read the sid (twilio is pinned)
            message, _, _ = await self._twilio().messages._create_async(**params)  # noqa: SLF001
        except TwilioRestException as exc:
            return outcome_of(exc.status, str(exc.code) if exc.code is not None else None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return RetryLater(f"network: {type(exc).__name__}", "network")
        return Sent(message["sid"])

    def _twilio(self) -> Client:
        """The client is made on first use: its HTTP session needs the running loop."""
        if self._client is None:
            self._http = _RebasedHttpClient(self._api_base, self._timeout, self._credentials)
            self._client = Client(*self._credentials, http_client=self._http)
        return self._client

    async def close(self) -> None:
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()


def outcome_of(status: int, code: str | None) -> Outcome:
    """What a Twilio error answer means for the message."""
    reason = f"twilio {status} code {code}"
    if code in AUTH_ERRORS:
        return CredentialsRejected(reason, code)
    if code in OPTED_OUT:
        return RecipientOptedOut(reason, code)
    if code in UNREACHABLE:
        return RecipientUnreachable(reason, code)
    if code == TOO_MANY_REQUESTS or status == 429 or status >= 500:
        return RetryLater(reason, code or str(status))
    return Rejected(reason, code)


class ConsoleSmsSender:
    """Prints messages instead of sending them: for development and the demo."""

    def __init__(self, stream=None) -> None:  # noqa: ANN001
        self._stream = stream or sys.stdout

    async def send_sms(self, to: str, body: str, idempotency_key: str, tags: Mapping[str, str] | None = None) -> Outcome:
        print(f"[sms to …{to[-4:]}] {body}", file=self._stream, flush=True)
        return Sent(f"console-{idempotency_key[:16]}")
