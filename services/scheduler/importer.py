"""``cyclecare import patients|treatments FILE.csv``: a clinic's export onto the contract topics.

Each row is validated with the contract models; invalid rows are reported by row and field
and not published, valid rows are. A row's ``event_id`` is derived from its content, so
importing the same file again publishes the same events, which the scheduler already knows
(a snapshot that changes nothing, a ``treatment_id`` it has seen).
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from shared.clinics import Directory
from shared.codec import encode, validation_reasons
from shared.events import Event, PatientEnrolled, TreatmentRecorded, deterministic_id
from shared.topics import Topics

COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id", "clinic_id", "first_name", "phone", "email", "timezone", "language",
                 "sms_consent", "email_consent", "baseline_headache_days"),
    "treatments": ("treatment_id", "patient_id", "clinic_id", "administered_on", "units", "interval_weeks"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "patients": ("patient_id", "clinic_id", "first_name", "phone", "timezone", "sms_consent"),
    "treatments": ("treatment_id", "patient_id", "clinic_id", "administered_on"),
}
MODELS: dict[str, type[Event]] = {"patients": PatientEnrolled, "treatments": TreatmentRecorded}
TRUE, FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, a required column missing)."""


@dataclass(frozen=True)
class RowError:
    row: int  # 1 is the first row under the header
    field: str
    error: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.error}"


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


# --- pure: rows to events ---------------------------------------------------------------


def read_rows(path: Path, kind: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED[kind] if c not in header]
            if missing:
                raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)}; "
                                      f"expected {', '.join(COLUMNS[kind])}")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"{path}: cannot read: {exc}") from None


def _cell(kind: str, column: str, text: str | None) -> Any:
    value = (text or "").strip()
    if value == "":
        return None
    if column in ("sms_consent", "email_consent"):
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
    return value


def row_event(kind: str, row: dict[str, str | None]) -> Event:
    """The contract event of one row; raises ``ValidationError`` naming the fields."""
    values = {c: _cell(kind, c, row.get(c)) for c in COLUMNS[kind]}
    values = {c: v for c, v in values.items() if v is not None}
    content = json.dumps(values, sort_keys=True)
    return MODELS[kind].model_validate(values | {"event_id": deterministic_id("import", kind, content)})


def parse_rows(kind: str, rows: Iterable[dict[str, str | None]], clinics: Directory) -> Iterator[Event | list[RowError]]:
    for number, row in enumerate(rows, start=1):
        try:
            event = row_event(kind, row)
        except ValidationError as exc:
            yield [RowError(number, r["field"] or "row", r["error"]) for r in validation_reasons(exc)]
            continue
        if event.clinic_id not in clinics:
            yield [RowError(number, "clinic_id", f"unknown clinic {event.clinic_id!r} (not in the clinics file)")]
            continue
        yield event


def parse_file(kind: str, rows: list[dict[str, str | None]], clinics: Directory, progress: Iterable | None = None) -> Parsed:
    parsed = Parsed(rows=len(rows))
    for result in parse_rows(kind, progress if progress is not None else rows, clinics):
        if isinstance(result, list):
            parsed.errors.extend(result)
        else:
            parsed.events.append(result)
    return parsed


# --- the edge: publishing -------------------------------------------------------------


async def publish(bootstrap: str, topic: str, partitions: int, events: list[Event]) -> None:
    from aiokafka import AIOKafkaProducer

    from shared.broker import ensure_topics

    await ensure_topics(bootstrap, [topic], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, encode(e), key=e.patient_id.encode()) for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def run_import(kind: str, path: Path, settings, clinics: Directory, *, dry_run: bool = False) -> int:  # noqa: ANN001
    """The command: 0 when every row was published, 1 when some were invalid, 2 when none could be."""
    if not dry_run and not settings.kafka_bootstrap_servers:
        click.echo("cyclecare import: KAFKA_BOOTSTRAP_SERVERS is not set; point it at the Kafka cluster "
                   "(host:port[,host:port]) or use --dry-run to only validate the file", err=True)
        return 2
    try:
        rows = read_rows(path, kind)
    except ImportFileError as exc:
        click.echo(f"cyclecare import: {exc}", err=True)
        return 2
    with click.progressbar(rows, label=f"validating {len(rows)} {kind}", file=click.get_text_stream("stderr")) as bar:
        parsed = parse_file(kind, rows, clinics, bar)
    for error in parsed.errors:
        click.echo(f"invalid {error}", err=True)
    bad_rows = len({e.row for e in parsed.errors})
    if parsed.events and not dry_run:
        topic = Topics(settings.topic_namespace).name(kind)
        asyncio.run(publish(settings.kafka_bootstrap_servers, topic, settings.partitions, parsed.events))
    verb = "valid (dry run, nothing published)" if dry_run else "published"
    click.echo(f"{len(parsed.events)} of {parsed.rows} {kind} {verb}; {bad_rows} invalid row(s)")
    return 1 if bad_rows else 0
