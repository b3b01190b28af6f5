"""``GET /fhir/R4/…``: the FHIR R4 read API on the portal's HTTP, served from the read model.

Bearer token ``CYCLECARE_API_TOKEN`` (as the ingest API: 503 while unset, 401 without it);
clinicians' sessions are not used here. Answers are ``application/fhir+json``; a refusal is
an ``OperationOutcome`` whose ``issue.expression`` names the parameter at fault.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource

from services.portal.fhir.resources import BUILDERS, questionnaires
from services.portal.fhir.search import PARAMETERS, SearchError, next_link, parse_search
from services.portal.fhir.store import FhirStore

BASE = "/fhir/R4"
FHIR_JSON = "application/fhir+json"
SEARCHABLE = tuple(BUILDERS)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fhir_response(resource: Resource, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=resource.model_dump_json().encode(), status=status, content_type=FHIR_JSON, charset="utf-8", headers=headers)


def outcome(status: int, code: str, diagnostics: str, expression: str | None = None) -> OperationOutcome:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics, **({"expression": [expression]} if expression else {})}
    return OperationOutcome(issue=[issue])


def refuse(status: int, code: str, diagnostics: str, expression: str | None = None) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return fhir_response(outcome(status, code, diagnostics, expression), status, headers)


def bearer_matches(header: str, token: str) -> bool:
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


class FhirApi:
    def __init__(self, store: FhirStore, token: str | None) -> None:
        self.store, self.token = store, token

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get(f"{BASE}/metadata", self.metadata),
            web.get(f"{BASE}/Questionnaire", self._guard(self.questionnaires)),
            web.get(f"{BASE}/Questionnaire/{{id}}", self._guard(self.questionnaire)),
            web.get(f"{BASE}/{{type}}", self._guard(self.search)),
            web.get(f"{BASE}/{{type}}/{{id}}", self._guard(self.read)),
        ]

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.token:
                return refuse(503, "transient", "FHIR API disabled: CYCLECARE_API_TOKEN is not set")
            if not bearer_matches(request.headers.get("Authorization", ""), self.token):
                return refuse(401, "login", "missing or wrong bearer token")
            return await handler(request)

        return guarded

    async def metadata(self, request: web.Request) -> web.Response:
        return fhir_response(capability_statement())

    async def questionnaires(self, request: web.Request) -> web.Response:
        found = questionnaires()
        return fhir_response(searchset(request, found, None))

    async def questionnaire(self, request: web.Request) -> web.Response:
        found = next((q for q in questionnaires() if q.id == request.match_info["id"]), None)
        return fhir_response(found) if found else refuse(404, "not-found", "no such Questionnaire")

    async def search(self, request: web.Request) -> web.Response:
        resource_type = request.match_info["type"]
        if resource_type not in SEARCHABLE:
            return refuse(404, "not-supported", f"cyclecare serves {', '.join(('Questionnaire', *SEARCHABLE))}, not {resource_type!r}")
        try:
            search = parse_search(request.query.items())
        except SearchError as exc:
            return refuse(400, "invalid", str(exc), exc.expression)
        page = await self.store.search(resource_type, search)
        return fhir_response(searchset(request, page.resources, next_link(request.url, page.next) if page.next else None))

    async def read(self, request: web.Request) -> web.Response:
        resource_type, resource_id = request.match_info["type"], request.match_info["id"]
        if resource_type not in SEARCHABLE:
            return refuse(404, "not-supported", f"cyclecare does not serve {resource_type!r}")
        found = await self.store.read(resource_type, resource_id)
        return fhir_response(found) if found else refuse(404, "not-found", f"no {resource_type} with this id")


def base_url(request: web.Request) -> str:
    return str(request.url.with_path(BASE).with_query(None))


def searchset(request: web.Request, resources: list[Resource], next_url: str | None) -> Bundle:
    base = base_url(request)
    links = [{"relation": "self", "url": str(request.url)}] + ([{"relation": "next", "url": next_url}] if next_url else [])
    return Bundle(type="searchset", link=links, entry=[
        {"fullUrl": f"{base}/{r.get_resource_type()}/{r.id}", "resource": r, "search": {"mode": "match"}} for r in resources
    ] or None)


def capability_statement() -> CapabilityStatement:
    params = [{"name": p, "type": "reference" if p in ("patient", "subject") else "date" if p in ("date", "_lastUpdated") else "number"}
              for p in PARAMETERS if p not in ("_cursor", "_format", "_count")]
    resources = [{"type": "Questionnaire", "interaction": [{"code": "read"}, {"code": "search-type"}]}] + [
        {"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}], "searchParam": params} for t in SEARCHABLE]
    return CapabilityStatement(
        status="active", date="2026-01-01", kind="instance", fhirVersion="4.0.1", format=[FHIR_JSON],
        software={"name": "cyclecare portal"}, implementation={"description": "cyclecare's results as FHIR R4"},
        rest=[{"mode": "server", "security": {"description": "Authorization: Bearer $CYCLECARE_API_TOKEN"}, "resource": resources}],
    )
