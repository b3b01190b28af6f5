"""``cyclecare export fhir``: every resource of each type from the read model, one NDJSON
file per type as the FHIR Bulk Data export lays them out (``Flag.ndjson``, …)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.fhir.resources import BUILDERS, questionnaires
from services.portal.fhir.search import Search
from services.portal.fhir.store import SOURCES, FhirStore, source_query

Progress = Callable[[int], None]  # called with how many more source rows were read


async def source_rows(engine: AsyncEngine, search: Search) -> int:
    """How many read-model rows the export will read (the progress bar's length)."""
    total = 0
    async with engine.connect() as conn:
        for resource_type in BUILDERS:
            query = source_query(SOURCES[resource_type], search).order_by(None).subquery()
            total += (await conn.execute(select(func.count()).select_from(query))).scalar_one()
    return total


async def export_ndjson(engine: AsyncEngine, search: Search, out: Path, progress: Progress = lambda n: None) -> dict[str, int]:
    """Write ``out/<Type>.ndjson`` for every type that has a resource; returns how many of each.
    Each file is streamed beside its final name and renamed once complete."""
    out.mkdir(parents=True, exist_ok=True)
    store, written = FhirStore(engine), {}
    with _ndjson(out, "Questionnaire") as write:
        for questionnaire in questionnaires():
            write(questionnaire.model_dump_json())
    written["Questionnaire"] = len(questionnaires())
    for resource_type in BUILDERS:
        count, last_key = 0, None
        with _ndjson(out, resource_type) as write:
            async for position, resource in store.walk(resource_type, search):
                if position.key != last_key:
                    progress(1)
                    last_key = position.key
                write(resource.model_dump_json())
                count += 1
        if count:
            written[resource_type] = count
        else:
            (out / f"{resource_type}.ndjson").unlink()  # Bulk Data: no file for a type without resources
    return written


@contextmanager
def _ndjson(out: Path, resource_type: str) -> Iterator[Callable[[str], None]]:
    final = out / f"{resource_type}.ndjson"
    partial = final.with_suffix(".ndjson.partial")
    with partial.open("w", encoding="utf-8") as file:
        yield lambda line: file.write(line + "\n")
    os.replace(partial, final)
