"""``POST /v1/patients`` and ``POST /v1/treatments``: the ingest API for EHR integrations.

Every refusal is a 4xx with the reason (README, "Limits"): 401 before the body is read,
413 for a body over the limit, 422 for a body that is not a JSON object within the depth
and integer limits or that breaks the contract.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Union

from aiohttp import web
from pydantic import Field, TypeAdapter, ValidationError

from shared.clinics import Directory
from shared.codec import DecodeError, check_type, loads_bounded, validation_reasons
from shared.events import PatientDischarged, PatientEnrolled, PatientUpdated, TreatmentRecorded
from shared.http_input import Refused, read_body
from shared.limits import MAX_HTTP_BODY_BYTES
from shared.streaming import Runtime

PatientEvent = TypeAdapter(
    Annotated[Union[PatientEnrolled, PatientUpdated, PatientDischarged], Field(discriminator="type")]
)
TreatmentEvent = TypeAdapter(TreatmentRecorded)


def problem(status: int, reason: str, details: list | None = None) -> web.Response:
    body: dict = {"error": reason}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def _plain_fields(reasons: list[dict], event_type: object) -> list[dict]:
    """``patient.enrolled.phone`` -> ``phone``: the union's tag is no field of the body; an
    error about the whole body is one about its ``type`` (the tag that chose no event)."""
    prefix = f"{event_type}."
    return [r | {"field": r["field"].removeprefix(prefix) or "type"} for r in reasons]


async def read_json(request: web.Request) -> object:
    """The JSON body within the limits, or :class:`Refused` (413 too long, 422 not JSON)."""
    raw = await read_body(request, MAX_HTTP_BODY_BYTES)
    try:
        return loads_bounded(raw, what="body", limit=MAX_HTTP_BODY_BYTES)
    except DecodeError as exc:
        raise Refused(422, f"body is not JSON: {exc}") from None


def bearer_refusal(request: web.Request, token: str | None) -> Refused | None:
    """Why a request to the scheduler's APIs (JSON, alerts and FHIR) is refused before its body
    is read: 503 without a configured token, 401 without the right one; ``None`` when it may pass."""
    if not token:
        return Refused(503, "API disabled: CYCLECARE_API_TOKEN is not set")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Refused(401, "missing or wrong bearer token")
    return None


async def json_object(request: web.Request, token: str | None) -> dict | web.Response:
    """The body of an API request as a JSON object, or the refusal to answer instead
    (401 no token, 503 no token configured, 413 too long, 422 not a JSON object)."""
    if (refused := bearer_refusal(request, token)) is not None:
        return problem(refused.status, refused.reason)
    try:
        body = await read_json(request)
    except Refused as exc:
        return problem(exc.status, exc.reason)
    if not isinstance(body, dict):
        return problem(422, "body must be a JSON object")
    return body


def add_ingest_routes(rt: Runtime, clinics: Directory) -> None:
    token = rt.settings.api_token

    async def ingest(request: web.Request, adapter: TypeAdapter, default_type: str) -> web.Response:
        body = await json_object(request, token)
        if isinstance(body, web.Response):
            return body
        body.setdefault("type", default_type)
        try:
            check_type(body["type"])
        except DecodeError as exc:
            return problem(422, "invalid event", [{"field": "type", "error": str(exc).removeprefix("type: ")}])
        try:
            event = adapter.validate_python(body)
        except ValidationError as exc:
            return problem(422, "invalid event", _plain_fields(validation_reasons(exc), body["type"]))
        if event.clinic_id not in clinics:
            return problem(422, "invalid event", [{"field": "clinic_id", "error": f"unknown clinic {event.clinic_id!r}"}])
        await rt.emit(event.patient_id, event, wait=True)
        return web.json_response({"status": "accepted", "event_id": event.event_id}, status=202)

    @rt.routes.post("/v1/patients")
    async def patients(request: web.Request) -> web.Response:
        return await ingest(request, PatientEvent, "patient.enrolled")

    @rt.routes.post("/v1/treatments")
    async def treatments(request: web.Request) -> web.Response:
        return await ingest(request, TreatmentEvent, "treatment.recorded")
