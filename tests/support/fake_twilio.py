"""A local HTTP server that speaks the part of Twilio's REST API cyclecare uses.

It records every message the real ``twilio`` client posts (with the time it arrived) and
answers with Twilio-shaped JSON; a test can make it answer with errors (429, 500, 21610,
21211...), add latency, and send signed status callbacks back to a worker.
``python -m tests.support.fake_twilio --port N`` runs it alone (the benchmark does), with
``GET /_stats`` giving the count and the first and last arrival times (``POST /_reset``
starts them again).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import time
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator
from yarl import URL

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
    received_at: float = 0.0  # time.time() when the request arrived


@dataclass
class FakeTwilio:
    account_sid: str = "ACtest00000000000000000000000000"
    auth_token: str = "test-auth-token"
    messages: list[SentSms] = field(default_factory=list)
    requests: int = 0
    _failures: list[str] = field(default_factory=list)
    _ids = itertools.count(1)
    url: str = ""
    latency: float = 0.0  # seconds each answer waits, like a real API's round trip
    keep_messages: bool = True  # the benchmark counts only
    count: int = 0
    first_at: float | None = None
    last_at: float | None = None
    _runner: web.AppRunner | None = None

    def fail_next(self, *errors: str) -> None:
        """Answer the next requests with these errors, in order ("429", "21610", ...)."""
        self._failures.extend(errors)

    def to(self, phone: str) -> list[SentSms]:
        return [m for m in self.messages if m.to == phone]

    async def send_status(self, sms: SentSms, status: str, worker_url: str, *, error_code: str | None = None) -> int:
        """Post a status callback for ``sms`` as Twilio would, signed with the auth token.

        Twilio calls the public ``StatusCallback`` URL; a test's worker listens elsewhere,
        so the request goes to ``worker_url`` with the same path and query, signed for the
        public URL. Returns the HTTP status the worker answered."""
        if not sms.status_callback:
            raise AssertionError("this message was sent without a StatusCallback")
        parts = urlsplit(sms.status_callback)
        form = {"MessageSid": sms.sid, "SmsSid": sms.sid, "AccountSid": self.account_sid, "MessageStatus": status,
                "SmsStatus": status, "To": sms.to, "From": sms.sender, "ApiVersion": "2010-04-01"}
        if error_code:
            form["ErrorCode"] = error_code
        signature = RequestValidator(self.auth_token).compute_signature(sms.status_callback, form)
        # exactly the URL Twilio was given (as Twilio calls it: no re-quoting), at the worker
        target = worker_url.rstrip("/") + "/twilio/status" + (f"?{parts.query}" if parts.query else "")
        async with aiohttp.ClientSession() as http:
            async with http.post(URL(target, encoded=True), data=form, headers={"X-Twilio-Signature": signature}) as response:
                return response.status

    def spread(self, messages: list[SentSms] | None = None, window: float = 1.0) -> int:
        """The most messages that arrived within any ``window`` seconds."""
        times = sorted(m.received_at for m in (self.messages if messages is None else messages))
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] > window:
                start += 1
            most = max(most, end - start + 1)
        return most

    async def start(self, port: int = 0) -> "FakeTwilio":
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
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

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count, "requests": self.requests, "first_at": self.first_at,
                                  "last_at": self.last_at})

    async def _reset(self, request: web.Request) -> web.Response:
        self.count, self.requests, self.first_at, self.last_at = 0, 0, None, None
        self.messages.clear()
        return await self._stats(request)

    async def _create_message(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.latency:
            await asyncio.sleep(self.latency)
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
                      status_callback=form.get("StatusCallback"), received_at=time.time())
        self.count += 1
        self.first_at = self.first_at or sms.received_at
        self.last_at = sms.received_at
        if self.keep_messages:
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


async def _serve(port: int, latency: float) -> None:
    server = await FakeTwilio(latency=latency, keep_messages=False).start(port)
    print(f"fake twilio on {server.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the fake Twilio REST API alone.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.port, arguments.latency))
