"""Which service answers which HTTP path: for the start-up lines of ``cyclecare run`` and
the JSON hint a worker gives on a path it does not serve.

Data, not code: a service adding an endpoint adds a line here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

# Every service, in the order commands list them, and the port `cyclecare run` gives each
# worker as an offset from CYCLECARE_HTTP_PORT (the survey, which takes the webhooks, gets it).
RUN_PORT_OFFSET = {"scheduler": 2, "notifier": 1, "survey": 0, "portal": 3}
SERVICES = tuple(RUN_PORT_OFFSET)
COMMON = ("GET /healthz", "GET /readyz", "GET /metrics")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # a prefix when it ends with "/"
    service: str
    what: str

    def matches(self, path: str) -> bool:
        return path.startswith(self.path) if self.path.endswith("/") else path == self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/twilio/sms", "survey", "Twilio inbound SMS webhook (signed)"),
    Endpoint("POST", "/twilio/status", "notifier", "Twilio status callbacks (signed)"),
    Endpoint("POST", "/v1/patients", "scheduler", "ingest API: patient events (bearer token)"),
    Endpoint("POST", "/v1/treatments", "scheduler", "ingest API: treatment events (bearer token)"),
    Endpoint("POST", "/v1/alerts/", "scheduler",
             "alert actions: POST /v1/alerts/{alert_id}/ack and /resolve, JSON {by, outcome?, note?} (bearer token)"),
    Endpoint("POST", "/fhir/R4/Patient", "scheduler", "FHIR R4 in: a Patient (bearer token)"),
    Endpoint("POST", "/fhir/R4/Procedure", "scheduler", "FHIR R4 in: a Procedure (bearer token)"),
    Endpoint("POST", "/fhir/R4/MedicationAdministration", "scheduler", "FHIR R4 in: a MedicationAdministration (bearer token)"),
    Endpoint("POST", "/fhir/R4", "scheduler", "FHIR R4 in: a batch or transaction Bundle (bearer token)"),
    Endpoint("GET", "/login", "portal", "clinician portal: sign in, then the inbox at /"),
    Endpoint("GET", "/patients", "portal", "clinician portal: patient search and pages"),
    Endpoint("GET", "/fhir/R4/", "portal", "FHIR R4 read API: check-ins, side effects, alerts (bearer token)"),
)


def endpoints_of(service: str) -> list[Endpoint]:
    return [e for e in ENDPOINTS if e.service == service]


def run_urls(base_port: int, host: str = "localhost") -> dict[str, str]:
    """The base URL of each worker that ``cyclecare run`` starts on ``base_port``."""
    return {name: f"http://{host}:{base_port + offset}" for name, offset in RUN_PORT_OFFSET.items()}


def not_found_hint(service: str, method: str, path: str, urls: dict[str, str] | None = None) -> dict[str, object]:
    """The body of a 404: which service serves this path (and where, when known)."""
    # one path prefix may be served by two services by method (FHIR: GET on the portal, POST on the scheduler)
    owner = next((e for e in ENDPOINTS if e.matches(path) and e.method == method), None) or \
        next((e for e in ENDPOINTS if e.matches(path)), None)
    body: dict[str, object] = {"error": "not found", "service": service, "path": path}
    if owner is None:
        served = [str(e) for e in endpoints_of(service)] + list(COMMON)
        body["hint"] = f"the {service} serves {', '.join(served)}"
    elif owner.service == service:
        body["hint"] = f"{owner} is served here; use {owner.method}, not {method}"
    else:
        where = f" at {urls[owner.service]}" if urls and owner.service in urls else ""
        body["hint"] = f"{owner} is served by the {owner.service}{where}, not by the {service}"
        if where:
            body["url"] = urls[owner.service].rstrip("/") + path  # type: ignore[index]
    return body


def parse_urls(text: str | None) -> dict[str, str]:
    """``CYCLECARE_SERVICE_URLS`` (JSON ``{"scheduler": "http://…"}``), as ``cyclecare run`` sets it."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def not_found_middleware(service: str, urls: dict[str, str]):  # noqa: ANN201
    """An aiohttp middleware answering 404 and 405 with :func:`not_found_hint` as JSON."""

    @web.middleware
    async def hint(request: web.Request, handler):  # noqa: ANN001, ANN202
        unmatched = request.match_info.http_exception  # set only when no route matched
        if unmatched is None or unmatched.status not in (404, 405):
            return await handler(request)
        body = not_found_hint(service, request.method, request.path, urls)
        if unmatched.status == 405:
            body["error"] = "method not allowed"
        return web.json_response(body, status=unmatched.status)

    return hint
