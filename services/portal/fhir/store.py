"""Where each FHIR resource type comes from in the read model, and one search over it:
rows in a stable order (date, then id), each expanded into its resources, a page cut at
``_count`` with the cursor of the first resource left over (keyset paging)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.resource import Resource
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal import schema as s
from services.portal.fhir.ids import source_candidates
from services.portal.fhir.resources import BUILDERS
from services.portal.fhir.search import Bound, Cursor, Search

_c, _a, _m = s.checkins.c, s.alerts.c, s.messages.c


@dataclass(frozen=True)
class Source:
    """A table, the column a search's ``date`` and the order use, what ``_lastUpdated`` is."""

    table: Any
    key: Any
    date: Any
    last_updated: Any
    patient: Any
    where: tuple[Any, ...] = ()


SOURCES: dict[str, Source] = {
    "QuestionnaireResponse": Source(s.checkins, _c.checkin_id, _c.completed_at, _c.completed_at, _c.patient_id),
    "Observation": Source(s.checkins, _c.checkin_id, _c.completed_at, _c.completed_at, _c.patient_id,
                          (_c.kind == "headache_frequency",)),
    "AdverseEvent": Source(s.checkins, _c.checkin_id, _c.completed_at, _c.completed_at, _c.patient_id,
                           (_c.kind == "side_effects", or_(_c.red_flags.is_(True), _c.effects != "[]"))),
    "Flag": Source(s.alerts, _a.alert_id, _a.raised_at, func.coalesce(_a.resolved_at, _a.raised_at), _a.patient_id),
    "DetectedIssue": Source(s.alerts, _a.alert_id, _a.raised_at, func.coalesce(_a.resolved_at, _a.raised_at), _a.patient_id,
                            (_a.reasons.like('%"non_response"%'),)),
    "Communication": Source(s.messages, _m.message_id, _m.at, _m.updated_at, _m.patient_id),
}
assert SOURCES.keys() == BUILDERS.keys()


@dataclass(frozen=True)
class Page:
    resources: list[Resource]
    next: Cursor | None


def _bounded(column: Any, bounds: list[Bound]) -> list[Any]:
    clauses = []
    for bound in bounds:
        if bound.start is not None:
            clauses.append(column >= bound.start)
        if bound.end is not None:
            clauses.append(column < bound.end)
    return clauses


def source_query(source: Source, search: Search) -> Any:
    query = select(source.table).where(*source.where, *_bounded(source.date, search.date),
                                       *_bounded(source.last_updated, search.last_updated))
    if search.patient is not None:
        query = query.where(source.patient == search.patient)
    return query.order_by(source.date, source.key)


class FhirStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def search(self, resource_type: str, search: Search) -> Page:
        """One page of ``resource_type`` matching ``search``."""
        found: list[Resource] = []
        async for position, resource in self._walk(resource_type, search, batch=search.count + 1):
            if len(found) == search.count:
                return Page(found, position)
            found.append(resource)
        return Page(found, None)

    async def every(self, resource_type: str, search: Search, batch: int = 500) -> AsyncIterator[Resource]:
        """Every match, read ``batch`` rows at a time."""
        async for _position, resource in self._walk(resource_type, search, batch):
            yield resource

    def walk(self, resource_type: str, search: Search, batch: int = 500) -> AsyncIterator[tuple[Cursor, Resource]]:
        """Every match with its position (the bulk export's progress)."""
        return self._walk(resource_type, search, batch)

    async def by_source(self, resource_type: str, source_id: str) -> list[Resource]:
        """The resources one check-in or alert gives (the push sink)."""
        source = SOURCES[resource_type]
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(select(source.table).where(source.key == source_id, *source.where)))
        return [resource for row in rows for resource in BUILDERS[resource_type](row)]

    async def read(self, resource_type: str, resource_id: str) -> Resource | None:
        for source_id in source_candidates(resource_id):
            for resource in await self.by_source(resource_type, source_id):
                if resource.id == resource_id:
                    return resource
        return None

    async def _walk(self, resource_type: str, search: Search, batch: int) -> AsyncIterator[tuple[Cursor, Resource]]:
        source, build = SOURCES[resource_type], BUILDERS[resource_type]
        cursor = search.cursor
        while True:
            query = source_query(source, search)
            if cursor is not None:
                query = query.where(or_(source.date > cursor.at, and_(source.date == cursor.at, source.key >= cursor.key)))
            async with self.engine.connect() as conn:
                rows = list(await conn.execute(query.limit(batch)))
            for row in rows:
                at, key = getattr(row, source.date.name), getattr(row, source.key.name)
                skip = cursor.n if cursor is not None and (at, key) == (cursor.at, cursor.key) else 0
                for n, resource in enumerate(build(row)):
                    if n >= skip:
                        yield Cursor(at, key, n), resource
            if len(rows) < batch:
                return
            last = rows[-1]
            cursor = Cursor(getattr(last, source.date.name), getattr(last, source.key.name), 10**6)  # past every resource of it

