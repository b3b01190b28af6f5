"""A local stand-in for the part of Twilio's REST API the notifier calls.

Standard library only, so it runs in the plain python image (docker-compose profile
``twilio-stub``). It accepts ``POST /2010-04-01/Accounts/<sid>/Messages.json``, answers
201 with a message resource as Twilio does, and logs the recipient's last four digits
only. ``GET /messages`` lists what was "sent", for a developer to look at.
"""

from __future__ import annotations

import json
import re
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")
SENT: list[dict[str, str]] = []


def message_resource(account_sid: str, form: dict[str, list[str]]) -> dict[str, str]:
    first = {key: values[0] for key, values in form.items()}
    return {
        "sid": "SM" + uuid.uuid4().hex,
        "account_sid": account_sid,
        "to": first.get("To", ""),
        "from": first.get("From", ""),
        "messaging_service_sid": first.get("MessagingServiceSid"),
        "body": first.get("Body", ""),
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        match = MESSAGES_PATH.match(self.path.split("?")[0])
        if not match:
            return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        message = message_resource(match["sid"], form)
        SENT.append(message)
        print(f"twilio-stub: queued {message['sid']} to ...{message['to'][-4:]}", flush=True)
        self._reply(201, message)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/messages":
            return self._reply(200, {"messages": SENT})
        self._reply(200 if self.path == "/healthz" else 404, {"ok": self.path == "/healthz"})

    def _reply(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # request lines would carry phone numbers
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
