"""The read model's repository: writing a batch of projected events in one transaction,
and the queries the pages ask. Every page query is scoped to the clinics a user belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, Event, utcnow
from services.portal import schema as s
from services.portal.db import upsert
from services.portal.fhir.ids import fhir_id
from services.portal.projection import Rows, lifecycle, outbox_row, rows_for_all

_ACTION = TypeAdapter(AlertAcknowledged | AlertResolved | AlertEscalated)
_CHUNK = 2000  # ids per IN (…) list: well below SQLite's (32,766) and asyncpg's (32,767) limits of bound parameters
INBOX_PAGE = 50  # the top of the queue; the page says how many more are open


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Projection:
    """Writes events into the read model, each event once (idempotent by ``event_id``)."""

    def __init__(self, engine: AsyncEngine, *, fhir_outbox: bool = False) -> None:
        self.engine = engine
        self.fhir_outbox = fhir_outbox  # queue FHIR resources for the push sink (CYCLECARE_FHIR_SINK_URL set)

    async def apply(self, events: Sequence[Event]) -> int:
        """Project ``events`` in one transaction; return how many were new."""
        async with self.engine.begin() as conn:
            fresh = await self._unseen(conn, events)
            await write(conn, rows_for_all(fresh), fhir_outbox=self.fhir_outbox)
        return len(fresh)

    async def _unseen(self, conn: AsyncConnection, events: Sequence[Event]) -> list[Event]:
        """The events not projected before, remembered as projected in the same statement:
        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` answers which ids were new."""
        ids = {e.event_id: e.type for e in events}
        if not ids:
            return []
        stmt = upsert(conn, s.projected_events).on_conflict_do_nothing(index_elements=["event_id"])
        result = await conn.execute(stmt.returning(s.projected_events.c.event_id),
                                    [{"event_id": event_id, "type": type_} for event_id, type_ in ids.items()])
        new = set(result.scalars())
        fresh: list[Event] = []
        for event in events:
            if event.event_id in new:
                new.discard(event.event_id)  # the same event twice in one batch: its first copy only
                fresh.append(event)
        return fresh


async def write(conn: AsyncConnection, rows: Rows, *, fhir_outbox: bool = False) -> None:
    """One statement per kind of write (executemany), in an order that respects causes."""
    await _insert_missing(conn, s.patients, _unique(rows.known_patients, "patient_id"), "patient_id")
    if rows.snapshots:
        stmt = upsert(conn, s.patients)
        fields = {k: stmt.excluded[k] for k in rows.snapshots[0] if k != "patient_id"}
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["patient_id"], set_=fields,
            where=or_(s.patients.c.snapshot_at.is_(None), s.patients.c.snapshot_at <= stmt.excluded.snapshot_at),
        ), rows.snapshots)
    p = s.patients.c
    if rows.discharges:
        await conn.execute(update(s.patients).where(p.patient_id == bindparam("b_patient")).values(discharged=True),
                           [{"b_patient": pid} for pid in rows.discharges])
    for consent in rows.consents:
        values = {f"{c}_consent": consent["granted"] for c in consent["channels"]}
        await conn.execute(update(s.patients).where(p.patient_id == consent["patient_id"]).values(values))
    if rows.deliveries:
        await conn.execute(update(s.patients).where(
            p.patient_id == bindparam("b_patient"), or_(p.last_delivery_at.is_(None), p.last_delivery_at <= bindparam("b_at")),
        ).values(last_delivery_status=bindparam("b_status"), last_delivery_reason=bindparam("b_reason"),
                 last_delivery_at=bindparam("b_at")),
            [{"b_patient": d["patient_id"], "b_status": d["status"], "b_reason": d["reason"], "b_at": d["at"]} for d in rows.deliveries])
    await _insert_missing(conn, s.treatments, rows.treatments, "treatment_id")
    await _insert_missing(conn, s.checkins, rows.checkins, "checkin_id")
    await _insert_missing(conn, s.alerts, rows.alerts, "alert_id")
    await _insert_missing(conn, s.alert_actions, rows.actions, "event_id")
    await _insert_missing(conn, s.timeline, rows.timeline, "event_id")
    await _write_messages(conn, rows.messages)
    resolved = await _recompute_lifecycles(conn, rows)
    if fhir_outbox:
        changed = [outbox_row("Flag", alert_id, fhir_id(alert_id), "resolved") for alert_id in resolved]
        await queue_fhir(conn, rows.outbox + changed)


async def _write_messages(conn: AsyncConnection, messages: list[dict]) -> None:
    """A message's latest status wins; when it was first sent or received stays."""
    if not messages:
        return
    stmt = upsert(conn, s.messages)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["message_id"], set_={k: stmt.excluded[k] for k in ("status", "reason", "updated_at")},
        where=s.messages.c.updated_at <= stmt.excluded.updated_at,
    ), _unique(sorted(messages, key=lambda m: m["updated_at"], reverse=True), "message_id"))


async def queue_fhir(conn: AsyncConnection, outbox: list[dict]) -> None:
    """Add what the push sink has not been given yet (by key: a replayed event adds nothing)."""
    now = utcnow()
    ordered = {o["outbox_key"]: o | {"state": "pending", "attempts": 0, "next_attempt_at": now} for o in outbox}
    if ordered:  # in the order the results came: the push order
        await conn.execute(upsert(conn, s.fhir_outbox).on_conflict_do_nothing(index_elements=["outbox_key"]),
                           list(ordered.values()))


def _unique(items: list[dict], key: str) -> list[dict]:
    return list({item[key]: item for item in reversed(items)}.values())


async def _insert_missing(conn: AsyncConnection, table: Any, rows: list[dict], key: str) -> None:
    if rows:
        await conn.execute(upsert(conn, table).on_conflict_do_nothing(index_elements=[key]), _unique(rows, key))


async def _recompute_lifecycles(conn: AsyncConnection, rows: Rows) -> list[str]:
    """An alert with actions gets its state from all of them (an action may come before its
    alert); returns the alerts now resolved."""
    touched = sorted(rows.touched_alerts)
    if not rows.actions:  # new alerts without any action in this batch: look for earlier ones only
        touched = sorted({a["alert_id"] for a in rows.alerts})
    actions: dict[str, list[Any]] = {}
    for chunk in _chunks(touched):
        result = await conn.execute(select(s.alert_actions.c.alert_id, s.alert_actions.c.body).where(s.alert_actions.c.alert_id.in_(chunk)))
        for alert_id, body in result:
            actions.setdefault(alert_id, []).append(_ACTION.validate_json(body))
    if actions:
        states = [{"b_alert": alert_id, **{f"b_{k}": v for k, v in lifecycle(found).items()}} for alert_id, found in actions.items()]
        columns = [k.removeprefix("b_") for k in states[0] if k != "b_alert"]
        await conn.execute(update(s.alerts).where(s.alerts.c.alert_id == bindparam("b_alert"))
                           .values({c: bindparam(f"b_{c}") for c in columns}), states)
    return [state["b_alert"] for state in states if state["b_status"] == "resolved"] if actions else []


async def empty_projection(engine: AsyncEngine) -> None:
    """Remove every projected row (``cyclecare portal rebuild``); users, sessions and audit stay."""
    async with engine.begin() as conn:
        for table in reversed(s.PROJECTION):
            await conn.execute(delete(table))


async def get_meta(engine: AsyncEngine, key: str, default: str) -> str:
    async with engine.connect() as conn:
        value = (await conn.execute(select(s.meta.c.value).where(s.meta.c.key == key))).scalar()
    return value if value is not None else default


async def set_meta(engine: AsyncEngine, key: str, value: str) -> None:
    async with engine.begin() as conn:
        stmt = upsert(conn, s.meta).values(key=key, value=value)
        await conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


# --- reading, always within a user's clinics -------------------------------------------


@dataclass(frozen=True)
class AlertView:
    alert_id: str
    patient_id: str
    patient_name: str
    clinic_id: str
    severity: str
    reasons: list[str]
    summary: str
    evidence: dict[str, Any]
    raised_at: datetime
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    outcome: str | None
    note: str | None
    paged: list[dict[str, Any]]


def _alert_view(row: Any) -> AlertView:
    return AlertView(
        alert_id=row.alert_id, patient_id=row.patient_id, patient_name=row.first_name or row.patient_id,
        clinic_id=row.clinic_id, severity=row.severity, reasons=json.loads(row.reasons), summary=row.summary,
        evidence=json.loads(row.evidence), raised_at=row.raised_at, status=row.status,
        acknowledged_by=row.acknowledged_by, acknowledged_at=row.acknowledged_at, resolved_by=row.resolved_by,
        resolved_at=row.resolved_at, outcome=row.outcome, note=row.note, paged=json.loads(row.paged),
    )


def _alerts_query(clinics: Iterable[str]) -> Any:
    a, p = s.alerts, s.patients
    return (select(a, p.c.first_name).select_from(a.outerjoin(p, p.c.patient_id == a.c.patient_id))
            .where(a.c.clinic_id.in_(list(clinics))))


class ReadModel:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _all(self, query: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    async def open_count(self, clinics: Iterable[str], cap: int = 1000) -> int:
        """How many alerts are open, counted up to ``cap`` (the page then says "1000+")."""
        a = s.alerts.c
        capped = select(a.alert_id).where(a.clinic_id.in_(list(clinics)), a.status != "resolved").limit(cap + 1).subquery()
        rows = await self._all(select(func.count()).select_from(capped))
        return int(rows[0][0])

    async def inbox(self, clinics: Iterable[str], limit: int = INBOX_PAGE) -> list[AlertView]:
        """Alerts not yet resolved, by severity then age (the oldest first)."""
        a = s.alerts.c
        query = (_alerts_query(clinics).where(a.status != "resolved")
                 .order_by(a.severity_rank, a.raised_at, a.alert_id).limit(limit))
        return [_alert_view(r) for r in await self._all(query)]

    async def alert_messages(self, alerts: Sequence[AlertView]) -> dict[str, list[Any]]:
        """For each alert, the notifier's messages to clinicians about its patient since it
        was raised (sent, delivered, failed): when the first page went out."""
        if not alerts:
            return {}
        t = s.timeline.c
        since = min(a.raised_at for a in alerts)
        rows = await self._all(select(t.patient_id, t.at, t.title).where(
            t.patient_id.in_(list({a.patient_id for a in alerts})), t.at >= since,
            t.kind.in_(("message.sent", "message.delivered", "message.failed")), t.title.like("%: clinician alert"),
        ).order_by(t.at))
        found: dict[str, list[Any]] = {}
        for alert in alerts:
            found[alert.alert_id] = [r for r in rows if r.patient_id == alert.patient_id and r.at >= alert.raised_at]
        return found

    async def recently_resolved(self, clinics: Iterable[str], limit: int = 10) -> list[AlertView]:
        a = s.alerts.c
        query = _alerts_query(clinics).where(a.status == "resolved").order_by(a.resolved_at.desc()).limit(limit)
        return [_alert_view(r) for r in await self._all(query)]

    async def alert(self, clinics: Iterable[str], alert_id: str) -> AlertView | None:
        rows = await self._all(_alerts_query(clinics).where(s.alerts.c.alert_id == alert_id))
        return _alert_view(rows[0]) if rows else None

    async def patient_alerts(self, clinics: Iterable[str], patient_id: str) -> list[AlertView]:
        a = s.alerts.c
        rows = await self._all(_alerts_query(clinics).where(a.patient_id == patient_id).order_by(a.raised_at.desc()))
        return [_alert_view(r) for r in rows]

    async def patient(self, clinics: Iterable[str], patient_id: str) -> Any | None:
        p = s.patients.c
        rows = await self._all(select(s.patients).where(p.patient_id == patient_id, p.clinic_id.in_(list(clinics))))
        return rows[0] if rows else None

    async def treatments(self, patient_id: str) -> list[Any]:
        t = s.treatments.c
        return await self._all(select(s.treatments).where(t.patient_id == patient_id).order_by(t.administered_on))

    async def checkins(self, patient_id: str) -> list[Any]:
        c = s.checkins.c
        return await self._all(select(s.checkins).where(c.patient_id == patient_id).order_by(c.completed_at))

    async def timeline(self, patient_id: str, limit: int = 500) -> list[Any]:
        t = s.timeline.c
        return await self._all(select(s.timeline).where(t.patient_id == patient_id).order_by(t.at.desc(), t.event_id).limit(limit))

    async def search(self, clinics: Iterable[str], text: str, limit: int = 50) -> list[Any]:
        p = s.patients.c
        query = select(s.patients).where(p.clinic_id.in_(list(clinics)))
        if text.strip():
            pattern = f"%{text.strip().lower()}%"
            query = query.where(or_(func.lower(p.first_name).like(pattern), func.lower(p.patient_id).like(pattern)))
        return await self._all(query.order_by(p.first_name, p.patient_id).limit(limit))

    async def clinic_patients(self, clinic_id: str) -> list[Any]:
        """Each patient of the clinic with their latest treatment date, the check-ins they
        were asked, answered (of those asked) and let expire."""
        p, t, tl, c = s.patients.c, s.treatments.c, s.timeline.c, s.checkins.c
        last = select(t.patient_id, func.max(t.administered_on).label("last_treatment")).group_by(t.patient_id).subquery()
        asked = (select(tl.patient_id,
                        func.sum(case((tl.kind == "checkin.due", 1), else_=0)).label("asked"),
                        func.sum(case((tl.kind == "checkin.expired", 1), else_=0)).label("expired"))
                 .where(tl.clinic_id == clinic_id, tl.kind.in_(("checkin.due", "checkin.expired")))
                 .group_by(tl.patient_id).subquery())
        answered = (select(c.patient_id, func.count().label("answered"))
                    .join(s.timeline, tl.event_id == literal("asked:") + c.checkin_id)
                    .where(c.clinic_id == clinic_id).group_by(c.patient_id).subquery())
        query = (select(s.patients, last.c.last_treatment, asked.c.asked, asked.c.expired, answered.c.answered)
                 .select_from(s.patients.outerjoin(last, last.c.patient_id == p.patient_id)
                              .outerjoin(asked, asked.c.patient_id == p.patient_id)
                              .outerjoin(answered, answered.c.patient_id == p.patient_id))
                 .where(p.clinic_id == clinic_id, p.discharged.is_(False)).order_by(p.first_name))
        return await self._all(query)

    async def urgent_ack_minutes(self, clinic_id: str) -> list[float]:
        a = s.alerts.c
        rows = await self._all(select(a.raised_at, a.acknowledged_at).where(
            a.clinic_id == clinic_id, a.severity == "urgent", a.acknowledged_at.is_not(None)))
        return [(r.acknowledged_at - r.raised_at).total_seconds() / 60 for r in rows]

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            return {t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one() for t in s.PROJECTION}


def last_treatment(treatments: Sequence[Any]) -> date | None:
    return max((t.administered_on for t in treatments), default=None)


