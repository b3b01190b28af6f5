"""The FHIR push sink: each new QuestionnaireResponse, AdverseEvent and Flag (and a Flag's
resolution) to the EHR at ``CYCLECARE_FHIR_SINK_URL``, at least once and idempotently.

The projection queues them in the ``fhir_outbox`` table in the same transaction as the rows
they are built from; :class:`Pusher` sends what is due and marks a row ``pushed`` only after
a 2xx. A new resource is a conditional create (``POST`` with ``If-None-Exist:
identifier=urn:cyclecare:…|id``: sent twice, the EHR keeps one); a Flag's new status is a
conditional update (``PUT Flag?identifier=…``). 5xx, 429, 408, 401/403 (a configuration
problem, not the resource's) and network errors are retried with backoff; any other 4xx
puts the row in the ``failed`` state with the server's ``OperationOutcome``, counted in
``cyclecare_fhir_push_total{outcome="rejected"}``, and the others carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import aiohttp
from fhir.resources.R4B.resource import Resource
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal import schema as s
from services.portal.fhir.api import FHIR_JSON
from services.portal.fhir.store import FhirStore
from shared.events import utcnow

log = logging.getLogger(__name__)
Outcome = Literal["pushed", "retry", "rejected"]
MAX_BACKOFF = timedelta(hours=1)
PUSHED = Counter("cyclecare_fhir_push_total", "FHIR push sink requests by outcome", ["outcome"])
FAILED = Gauge("cyclecare_fhir_push_failed", "FHIR resources the EHR refused (4xx), waiting for an operator")


@dataclass(frozen=True)
class PushRequest:
    method: str
    path: str  # relative to the sink's base URL
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    status: int | None  # None: no answer (a network error)
    detail: str  # the server's OperationOutcome (JSON) or what went wrong


class FhirSink(Protocol):
    async def send(self, request: PushRequest) -> PushResult: ...


def push_request(resource: Resource, change: str) -> PushRequest:
    """``create``: conditional create on the identifier; anything else (a status change):
    conditional update, which also creates the resource if the EHR never got it."""
    ident = resource.identifier[0] if isinstance(resource.identifier, list) else resource.identifier
    search = f"identifier={ident.system}|{ident.value}"
    kind = resource.get_resource_type()
    body = resource.model_dump_json().encode()
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if change == "create":
        return PushRequest("POST", kind, headers | {"If-None-Exist": search}, body)
    return PushRequest("PUT", f"{kind}?{search}", headers, body)


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "pushed"
    if status in (401, 403, 408, 429) or status >= 500:
        return "retry"
    return "rejected"


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s … up to an hour between tries of the same resource."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts - 1, 12)))


class HttpFhirSink:
    """The EHR's FHIR endpoint over HTTP (aiohttp), with its bearer token."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: PushRequest) -> PushResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = request.headers | ({"Authorization": f"Bearer {self.token}"} if self.token else {})
        try:
            async with self._session.request(request.method, f"{self.base_url}/{request.path}", data=request.body,
                                             headers=headers) as response:
                text = await response.text()
                return PushResult(classify(response.status), response.status, text[:20000])
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return PushResult("retry", None, type(exc).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Pusher:
    """Sends the outbox's due rows, oldest first, a few resources at a time (each resource's
    rows one after the other); one that fails waits without blocking the rest."""

    def __init__(self, engine: AsyncEngine, sink: FhirSink, now: Callable[[], datetime] = utcnow, batch: int = 200,
                 in_flight: int = 8) -> None:
        # wall-clock time, not the pipeline's (simulated in the demo): HTTP retries wait real seconds
        self.engine, self.sink, self.now, self.batch = engine, sink, now, batch
        self._in_flight = asyncio.Semaphore(in_flight)  # requests to the EHR at once
        self.store = FhirStore(engine)

    async def push_due(self) -> int:
        """One pass over what is due now; returns how many rows it tried."""
        o = s.fhir_outbox.c
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(select(s.fhir_outbox).where(o.state == "pending", o.next_attempt_at <= self.now())
                                           .order_by(o.next_attempt_at, o.id).limit(self.batch)))
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:  # one resource's rows in order (a Flag's create before its update), resources side by side
            groups.setdefault((row.resource_type, row.resource_id), []).append(row)
        await asyncio.gather(*(self._push_in_order(group) for group in groups.values()))
        return len(rows)

    async def _push_in_order(self, rows: list[Any]) -> None:
        async with self._in_flight:
            for row in rows:
                await self._push(row)

    async def _push(self, row: Any) -> None:
        found = [r for r in await self.store.by_source(row.resource_type, row.source_id) if r.id == row.resource_id]
        if not found:  # a resolution read before its alert: the alert comes later
            return await self._record(row, PushResult("retry", None, "source not projected yet"))
        result = await self.sink.send(push_request(found[0], row.change))
        await self._record(row, result)

    async def _record(self, row: Any, result: PushResult) -> None:
        PUSHED.labels(result.outcome).inc()
        now = self.now()
        values: dict[str, object] = {"attempts": row.attempts + 1}
        if result.outcome == "pushed":
            values |= {"state": "pushed", "pushed_at": now, "error": None}
        elif result.outcome == "retry":
            values |= {"next_attempt_at": now + backoff(row.attempts + 1), "error": f"{result.status or 'no answer'}: {result.detail[:500]}"}
            log.warning("FHIR push of %s %s: %s; retrying later", row.resource_type, row.resource_id, result.status or result.detail)
        else:
            values |= {"state": "failed", "error": result.detail}
            log.error("FHIR push of %s %s refused with HTTP %s (%s); kept as failed", row.resource_type, row.resource_id,
                      result.status, issue_codes(result.detail))
        async with self.engine.begin() as conn:
            await conn.execute(update(s.fhir_outbox).where(s.fhir_outbox.c.id == row.id).values(values))
        if result.outcome == "rejected":
            FAILED.set(await failed_count(self.engine))

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Push until ``stop`` is set: at once while rows are due, else every ``idle`` seconds."""
        while not stop.is_set():
            try:
                tried = await self.push_due()
            except Exception:  # the database went away: try again, nothing is marked pushed
                log.exception("FHIR push sink: pass failed; trying again")
                tried = 0
            if not tried:
                try:
                    await asyncio.wait_for(stop.wait(), idle)
                except asyncio.TimeoutError:
                    pass


def issue_codes(detail: str) -> str:
    """The OperationOutcome's issue codes only: its diagnostics may quote patient data."""
    try:
        issues = json.loads(detail).get("issue", [])
        return ", ".join(str(i.get("code")) for i in issues) or "no issues"
    except (ValueError, AttributeError):
        return "no OperationOutcome"


async def failed_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(s.fhir_outbox).where(s.fhir_outbox.c.state == "failed"))).scalar_one()


async def outbox_states(engine: AsyncEngine) -> dict[str, int]:
    o = s.fhir_outbox.c
    async with engine.connect() as conn:
        return {state: n for state, n in await conn.execute(select(o.state, func.count()).group_by(o.state))}


async def retry_failed(engine: AsyncEngine, now: datetime) -> int:
    """Put every refused row back in the queue (after the EHR or the data was fixed)."""
    async with engine.begin() as conn:
        result = await conn.execute(update(s.fhir_outbox).where(s.fhir_outbox.c.state == "failed")
                                    .values(state="pending", next_attempt_at=now))
    FAILED.set(0)
    return result.rowcount
