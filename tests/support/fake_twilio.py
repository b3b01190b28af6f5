"""A local HTTP server that speaks the part of Twilio's REST API cyclecare uses.

It records every message the real ``twilio`` client posts and answers with
Twilio-shaped JSON; a test can make it answer with errors (429, 500, 21610, 21211...).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

ERRORS = {
    "429": (429, 20429, "Too Many Requests"),
    "500": (500, None, "Internal Server Error"),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "21211": (400, 21211, "The 'To' number is not a valid phone number."),
    "20003": (401, 20003, "Authentication Error - invalid username"),
}


@dataclass
class SentSms:
    sid: str
    to: str
    body: str
    sender: str
    status_callback: str | None


@dataclass
class FakeTwilio:
    account_sid: str = "ACtest00000000000000000000000000"
    auth_token: str = "test-auth-token"
    messages: list[SentSms] = field(default_factory=list)
    requests: int = 0
    _failures: list[str] = field(default_factory=list)
    _ids = itertools.count(1)
    url: str = ""
    _runner: web.AppRunner | None = None

    def fail_next(self, *errors: str) -> None:
        """Answer the next requests with these errors, in order ("429", "21610", ...)."""
        self._failures.extend(errors)

    def to(self, phone: str) -> list[SentSms]:
        return [m for m in self.messages if m.to == phone]

    async def start(self) -> "FakeTwilio":
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _create_message(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self._authorised(request) or request.match_info["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        if self._failures:
            status, code, text = ERRORS[self._failures.pop(0)]
            return _error(status, code, text)
        form = await request.post()
        if not form.get("To") or not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(400, 21604, "A 'To', 'Body' and 'From' or 'MessagingServiceSid' are required")
        sid = f"SM{next(self._ids):032x}"
        sms = SentSms(sid=sid, to=str(form["To"]), body=str(form["Body"]),
                      sender=str(form.get("From") or form.get("MessagingServiceSid")),
                      status_callback=form.get("StatusCallback"))
        self.messages.append(sms)
        now = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return web.json_response(status=201, data={
            "sid": sid, "account_sid": self.account_sid, "to": sms.to, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": sms.body, "status": "queued",
            "num_segments": "1", "num_media": "0", "direction": "outbound-api", "api_version": "2010-04-01",
            "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
            "date_created": now, "date_updated": now, "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json", "subresource_uris": {},
        })


def _error(status: int, code: int | None, message: str) -> web.Response:
    return web.json_response(status=status, data={
        "code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status,
    })
