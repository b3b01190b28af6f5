"""``POST /fhir/R4/{Patient,Procedure,MedicationAdministration}`` and ``POST /fhir/R4`` (a
batch or transaction Bundle): FHIR R4 in from an EHR, onto the contract topics.

The rules are :mod:`services.scheduler.fhir_in`; this edge checks the token (401, 503),
the content type (415), the size (413) and the JSON (400), publishes what maps to an event
and answers with an OperationOutcome or a batch-response Bundle. Nothing here logs a body.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable

from aiohttp import web
from fhir.resources.R4B.resource import Resource

from services.scheduler import fhir_in
from services.scheduler.adapters.ingest_api import bearer_refusal
from shared.clinics import Directory
from shared.clock import Clock
from shared.codec import DecodeError, loads_bounded
from shared.http_input import Refused, read_body
from shared.limits import MAX_FHIR_BODY_BYTES, MAX_FHIR_BUNDLE_ENTRIES
from shared.streaming import Runtime

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = (FHIR_JSON, "application/json")
log = logging.getLogger(__name__)
RESOURCE_PATHS = tuple(fhir_in.MODELS)


def fhir_response(resource: Resource, status: int) -> web.Response:
    return web.Response(text=resource.model_dump_json(exclude_none=True), status=status,
                        content_type=FHIR_JSON, charset="utf-8")


def refusal(status: int, diagnostics: str, code: str) -> web.Response:
    return fhir_response(fhir_in.outcome(fhir_in.Result(status, problems=(fhir_in.Problem("", diagnostics, code=code),))), status)


async def read_fhir_json(request: web.Request) -> object:
    """The body as JSON, or :class:`Refused`: 415 another content type, 413 too long, 400 not JSON."""
    if request.content_type not in ACCEPTED_TYPES:
        raise Refused(415, f"send {FHIR_JSON} (or application/json), not {request.content_type}")
    raw = await read_body(request, MAX_FHIR_BODY_BYTES)
    try:
        return loads_bounded(raw, what="body", limit=MAX_FHIR_BODY_BYTES)
    except DecodeError as exc:
        raise Refused(400, f"body is not JSON: {exc}") from None


ISSUE_CODES = {401: "login", 503: "transient", 415: "not-supported", 413: "too-costly", 400: "structure"}


def summary(results: list[fhir_in.Result]) -> str:
    """``202 x498, 422 x2``: what became of a Bundle's entries (statuses only: nothing personal)."""
    counts = Counter(r.status for r in results)
    return ", ".join(f"{status} x{n}" for status, n in sorted(counts.items())) or "none"


def add_fhir_routes(rt: Runtime, clinics: Directory, clock: Clock) -> None:
    token = rt.settings.api_token

    async def body_of(request: web.Request) -> object | web.Response:
        refused = bearer_refusal(request, token)
        if refused is None:
            try:
                return await read_fhir_json(request)
            except Refused as exc:
                refused = exc
        return refusal(refused.status, refused.reason, ISSUE_CODES.get(refused.status, "invalid"))

    async def publish(results: list[fhir_in.Result]) -> None:
        """Every event of ``results``, acknowledged by the broker before the answer."""
        acks: list[Awaitable[object]] = []
        for result in results:
            if result.event is not None and result.topic is not None:
                acks.append(await rt.publish(rt.topics.name(result.topic), result.event.patient_id, result.event))
        await asyncio.gather(*acks)

    async def one(request: web.Request, expect: str) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        result = fhir_in.map_one(body, clinics, clock.now(), expect)
        await publish([result])
        response = fhir_response(fhir_in.outcome(result), result.status)
        if result.event is not None:
            response.headers["ETag"] = f'W/"{result.event.event_id}"'
        return response

    @rt.routes.post("/fhir/R4")
    async def bundle(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            return refusal(400, "POST a Bundle of type batch or transaction here; a single resource goes to "
                           "/fhir/R4/Patient, /fhir/R4/Procedure or /fhir/R4/MedicationAdministration", "structure")
        mapped = fhir_in.map_bundle(body, clinics, clock.now(), MAX_FHIR_BUNDLE_ENTRIES)
        if isinstance(mapped, fhir_in.Result):
            return fhir_response(fhir_in.outcome(mapped), mapped.status)
        await publish(mapped.entries)
        log.info("FHIR %s of %d entries: %s", mapped.kind, len(mapped.entries), summary(mapped.entries))
        return fhir_response(fhir_in.response_bundle(mapped), 200)

    for resource_type in RESOURCE_PATHS:
        async def handler(request: web.Request, expect: str = resource_type) -> web.Response:
            return await one(request, expect)

        rt.routes.post(f"/fhir/R4/{resource_type}")(handler)
