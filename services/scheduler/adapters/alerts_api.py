"""``POST /v1/alerts/{alert_id}/ack`` and ``/resolve``: acknowledging and resolving an alert
from another system (bearer token, as the ingest API).

202 once the ``alert.acknowledged`` / ``alert.resolved`` (``via: api``) is on
``cyclecare.alert-actions``; 404 for an alert the scheduler does not know, 409 when the action
would change nothing (``AlertState.allows``), 422 with the reasons for a bad body or a ``by``
who is no clinician of the alert's clinic.

The alerts table is partitioned by ``alert_id`` across the scheduler's workers: a worker that
does not hold the alert's partition forwards the request, once, to the worker that does (its
``CYCLECARE_ADVERTISED_URL``, shared through the consumer group's assignment); while the
group rebalances the answer is 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Literal

import aiohttp
from aiohttp import web
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.clinics import Directory
from shared.clock import Clock
from shared.codec import validation_reasons
from shared.config import Settings
from shared.events import AlertAcknowledged, AlertResolved, Outcome, RequiredId, Text
from shared.streaming import Runtime
from services.scheduler.adapters.ingest_api import json_object, problem
from services.scheduler.alerts import AlertBook

log = logging.getLogger(__name__)

FORWARDED = "X-Cyclecare-Forwarded"
Action = Literal["ack", "resolve"]


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: RequiredId  # a clinician id of the alert's clinic
    outcome: Outcome | None = None  # required to resolve
    note: Text | None = None  # clinical text: never logged


class Holder:
    """Which worker holds an alert: the owner of its key's partition of ``scheduler-alerts``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.topic = rt.topics.scheduler_alerts
        self._partitioner = DefaultPartitioner()

    def partition(self, alert_id: str) -> int:
        partitions = list(range(self.rt.settings.partitions))
        return self._partitioner(alert_id.encode(), partitions, partitions)

    def is_here(self, alert_id: str) -> bool:
        return TP(self.topic, self.partition(alert_id)) in self.rt.app.assignor.assigned_actives()

    def elsewhere(self, alert_id: str) -> str | None:
        """The base URL of the worker holding ``alert_id`` when it is another one (None: unknown)."""
        partition = self.partition(alert_id)
        for url, topics in self.rt.app.assignor.external_topic_distribution.items():
            if partition in topics.get(self.topic, ()):
                return str(url).rstrip("/")
        return None


def advertised_url(settings: Settings) -> str:
    """How the other workers reach this one (``CYCLECARE_ADVERTISED_URL``, else host and port)."""
    if settings.advertised_url:
        return settings.advertised_url.rstrip("/")
    host = settings.http_host if settings.http_host not in ("", "0.0.0.0", "::") else _own_address()
    return f"http://{host}:{settings.http_port}"


def _own_address() -> str:
    """The address this host's name resolves to (a pod's IP in Kubernetes, where pod names do not resolve elsewhere)."""
    name = socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError:
        return name


def add_alert_routes(rt: Runtime, clinics: Directory, book: AlertBook, clock: Clock) -> None:
    token = rt.settings.api_token
    holder = Holder(rt)
    # shared with the group in the assignment metadata: where each worker's partitions are served
    rt.app.conf.canonical_url = advertised_url(rt.settings)

    async def act(request: web.Request, action: Action) -> web.Response:
        body = await json_object(request, token)
        if isinstance(body, web.Response):
            return body
        try:
            asked = ActionRequest.model_validate(body)
        except ValidationError as exc:
            return problem(422, "invalid action", validation_reasons(exc))
        alert_id = request.match_info["alert_id"]
        if not (rt.ready() and holder.is_here(alert_id)):
            return await forward(request, alert_id, body)
        return await decide(alert_id, action, asked)

    async def decide(alert_id: str, action: Action, asked: ActionRequest) -> web.Response:
        state = book.get(alert_id).state
        if state is None:
            return problem(404, f"no alert {alert_id!r}")
        clinic = clinics.require(state.clinic_id)
        if clinic.clinician(asked.by) is None:
            return problem(422, "invalid action", [{"field": "by", "error": f"not a clinician of clinic {clinic.id!r}"}])
        if action == "resolve" and asked.outcome is None:
            return problem(422, "invalid action", [{"field": "outcome", "error": "required to resolve an alert"}])
        if not state.allows(action):
            return web.json_response({"error": f"the alert is already {state.status}", "status": state.status}, status=409)
        now = clock.now()
        common = dict(alert_id=alert_id, patient_id=state.patient_id, clinic_id=state.clinic_id, by=asked.by, via="api")
        event = (AlertAcknowledged(**common, acknowledged_at=now) if action == "ack" else
                 AlertResolved(**common, outcome=asked.outcome, note=asked.note, resolved_at=now))
        await rt.publish(rt.topics.alert_actions, state.patient_id, event, wait=True)
        log.info("%s of alert %s by %s via api", event.type, alert_id, asked.by)
        return web.json_response({"status": "accepted", "event_id": event.event_id}, status=202)

    async def forward(request: web.Request, alert_id: str, body: dict) -> web.Response:
        """Hand the request to the worker holding the alert; answer 503 while nobody does."""
        url = None if request.headers.get(FORWARDED) or not rt.ready() else holder.elsewhere(alert_id)
        if url is None:
            return web.json_response({"error": "alerts are being reassigned between workers: try again"},
                                     status=503, headers={"Retry-After": "1"})
        headers = {"Authorization": request.headers.get("Authorization", ""), FORWARDED: "1"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url + request.path, data=json.dumps(body), headers=headers) as answer:
                    return web.Response(body=await answer.read(), status=answer.status,
                                        content_type=answer.content_type, headers=_retry_after(answer))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("forwarding an action on alert %s failed: %s", alert_id, type(exc).__name__)
            return web.json_response({"error": "the worker holding this alert did not answer: try again"},
                                     status=503, headers={"Retry-After": "1"})

    @rt.routes.post("/v1/alerts/{alert_id}/ack")
    async def ack(request: web.Request) -> web.Response:
        return await act(request, "ack")

    @rt.routes.post("/v1/alerts/{alert_id}/resolve")
    async def resolve(request: web.Request) -> web.Response:
        return await act(request, "resolve")


def _retry_after(answer: aiohttp.ClientResponse) -> dict[str, str]:
    return {"Retry-After": answer.headers["Retry-After"]} if "Retry-After" in answer.headers else {}
