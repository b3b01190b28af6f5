"""A local FHIR server standing in for an EHR (aiohttp): it keeps what conditional creates
and conditional updates give it, one resource per identifier, and answers as scripted
(a 500 for the first request, a 422 with an OperationOutcome for a resource it refuses)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.operationoutcome import OperationOutcome

from shared.broker import free_port


@dataclass
class Received:
    method: str
    path: str
    condition: str  # If-None-Exist, or the conditional update's query
    authorization: str
    resource: dict[str, Any]


@dataclass
class FakeFhirServer:
    token: str = "ehr-token"
    fail_first: int = 0  # answer 500 to this many requests first
    refuse: set[str] = field(default_factory=set)  # identifier values answered 422
    requests: list[Received] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # "system|value" -> the resource

    async def start(self) -> "FakeFhirServer":
        app = web.Application()
        app.add_routes([web.post("/fhir/{type}", self.create), web.put("/fhir/{type}", self.update)])
        self.port = free_port()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.stored.values() if r["resourceType"] == resource_type]

    async def create(self, request: web.Request) -> web.Response:
        condition = request.headers.get("If-None-Exist", "").removeprefix("identifier=")
        return await self._handle(request, condition, create=True)

    async def update(self, request: web.Request) -> web.Response:
        return await self._handle(request, request.query.get("identifier", ""), create=False)

    async def _handle(self, request: web.Request, condition: str, *, create: bool) -> web.Response:
        body = await request.text()
        resource = json.loads(body)
        self.requests.append(Received(request.method, request.path, condition, request.headers.get("Authorization", ""), resource))
        if self.fail_first:
            self.fail_first -= 1
            return self._outcome(500, "exception", "database restarting")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._outcome(401, "login", "bad token")
        get_fhir_model_class(request.match_info["type"]).model_validate_json(body)  # a real server validates
        if condition.split("|")[-1] in self.refuse:
            return self._outcome(422, "business-rule", "Subject is not a patient of this organisation",
                                 f"{request.match_info['type']}.subject")
        if create and condition in self.stored:
            return web.Response(status=200)  # the conditional create matched: nothing new
        self.stored[condition] = resource
        return web.json_response(resource, status=201 if create else 200, content_type="application/fhir+json")

    @staticmethod
    def _outcome(status: int, code: str, text: str, expression: str | None = None) -> web.Response:
        issue = {"severity": "error", "code": code, "diagnostics": text, **({"expression": [expression]} if expression else {})}
        return web.Response(status=status, body=OperationOutcome(issue=[issue]).model_dump_json(),
                            content_type="application/fhir+json")
