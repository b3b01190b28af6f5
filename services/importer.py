"""``cyclecare import patients|treatments FILE.csv``: a clinic's export onto the contract topics.

Each row is validated with the contract models; invalid rows are reported by row and field
and not published, valid rows are. A row's ``event_id`` is derived from its content, so
importing the same file again publishes the same events, which the scheduler already knows
(a snapshot that changes nothing, a ``treatment_id`` it has seen).

Files as clinics export them: UTF-8 (with or without a BOM) or Windows-1252/Latin-1,
comma-, semicolon- or tab-separated, phone numbers in the clinic's national format.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from shared.clinics import Directory
from shared.codec import encode, validation_reasons
from shared.events import Event, PatientEnrolled, TreatmentRecorded, deterministic_id
from shared.phones import e164_or_none, region_of
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
ID_COLUMN = {"patients": "patient_id", "treatments": "treatment_id"}
# Tried in order when no encoding is given; Latin-1 reads any byte, so it comes last.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = (",", ";", "\t")


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


@dataclass(frozen=True)
class CsvText:
    text: str
    encoding: str  # the one that read the file
    delimiter: str


def decode_file(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of an export and the encoding that read it: the given one, else UTF-8
    (a BOM is dropped), else Windows-1252, else Latin-1."""
    for candidate in (encoding,) if encoding else ENCODINGS:
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError as exc:
            if encoding:
                raise ImportFileError(f"not {encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                                      f"(try --encoding utf-8, cp1252 or latin-1)") from None
        except LookupError:
            raise ImportFileError(f"unknown encoding {encoding!r}") from None
    raise AssertionError("latin-1 decodes every byte")


def sniff_delimiter(text: str) -> str:
    """The separator of the header line: whichever of , ; or tab it has most of."""
    header = text.lstrip("\ufeff").partition("\n")[0]
    return max(DELIMITERS, key=header.count)


def read_text(path: Path, encoding: str | None = None) -> CsvText:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text, used = decode_file(data, encoding)
    except ImportFileError as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    return CsvText(text, used, sniff_delimiter(text))


def rows_of(source: CsvText, kind: str, name: str = "file") -> list[dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(source.text, newline=""), delimiter=source.delimiter)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in REQUIRED[kind] if c not in header]
        if missing:
            raise ImportFileError(f"{name}: missing column(s) {', '.join(missing)}; "
                                  f"expected {', '.join(COLUMNS[kind])} separated by {source.delimiter!r}")
        return list(reader)
    except csv.Error as exc:
        raise ImportFileError(f"{name}: not CSV: {exc}") from None


def read_rows(path: Path, kind: str, encoding: str | None = None) -> list[dict[str, str]]:
    return rows_of(read_text(path, encoding), kind, str(path))


def clinic_region(clinic_phone: str) -> str | None:
    """The country of a clinic (``US``), from its phone number: national numbers in its
    export are read as that country's."""
    return region_of(clinic_phone)


def to_e164(phone: str, region: str | None) -> str:
    """``(916) 555-0111`` in a US clinic -> ``+19165550111``; anything unreadable unchanged
    (the contract model then names the problem)."""
    return e164_or_none(phone, region) or phone


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


def row_event(kind: str, row: dict[str, str | None], region: Callable[[str], str | None] = lambda _: None) -> Event:
    """The contract event of one row; raises ``ValidationError`` naming the fields.
    ``region(clinic_id)`` is the country whose national phone format the row may use."""
    values = {c: _cell(kind, c, row.get(c)) for c in COLUMNS[kind]}
    values = {c: v for c, v in values.items() if v is not None}
    if isinstance(values.get("phone"), str):
        values["phone"] = to_e164(values["phone"], region(str(values.get("clinic_id", ""))))
    content = json.dumps(values, sort_keys=True)
    return MODELS[kind].model_validate(values | {"event_id": deterministic_id("import", kind, content)})


def parse_rows(kind: str, rows: Iterable[dict[str, str | None]], clinics: Directory) -> Iterator[Event | list[RowError]]:
    def region(clinic_id: str) -> str | None:
        clinic = clinics.get(clinic_id)
        return clinic_region(clinic.phone) if clinic else None

    first_row: dict[str, int] = {}  # id -> the row that had it first
    id_column = ID_COLUMN[kind]
    for number, row in enumerate(rows, start=1):
        try:
            event = row_event(kind, row, region)
        except ValidationError as exc:
            yield [RowError(number, r["field"] or "row", r["error"]) for r in validation_reasons(exc)]
            continue
        if event.clinic_id not in clinics:
            yield [RowError(number, "clinic_id", f"unknown clinic {event.clinic_id!r} (not in the clinics file)")]
            continue
        row_id = getattr(event, id_column)
        if row_id in first_row:
            yield [RowError(number, id_column, f"duplicate {row_id!r}, first in row {first_row[row_id]}; not published")]
            continue
        first_row[row_id] = number
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


class Progress:
    """``published 1,200 of 5,000 rows  850 rows/s  ETA 4s`` on stderr: redrawn in place on a
    terminal, once a second otherwise (and once at the end)."""

    def __init__(self, total: int, stream=None, clock: Callable[[], float] = time.monotonic) -> None:  # noqa: ANN001
        self.total, self.done = total, 0
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = self._shown = clock()
        self._tty = getattr(self._stream, "isatty", lambda: False)()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = self._clock()
        if self._tty or now - self._shown >= 1.0 or self.done >= self.total:
            self._shown = now
            end = "\n" if self.done >= self.total or not self._tty else ""
            print(("\r" if self._tty else "") + progress_line(self.done, self.total, now - self._started),
                  end=end, file=self._stream, flush=True)


def progress_line(done: int, total: int, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f"ETA {(total - done) / rate:.0f}s" if rate and done < total else "done" if done >= total else "ETA –"
    return f"published {done:,} of {total:,} rows  {rate:,.0f} rows/s  {eta}"


async def publish(bootstrap: str, topic: str, partitions: int, events: list[Event],
                  progress: Progress | None = None, chunk: int = 500) -> None:
    from aiokafka import AIOKafkaProducer

    from shared.broker import ensure_topics

    await ensure_topics(bootstrap, [topic], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(events), chunk):
            batch = events[start:start + chunk]
            sent = [await producer.send(topic, encode(e), key=e.patient_id.encode()) for e in batch]
            await asyncio.gather(*sent)  # acknowledged by the broker before it counts as published
            if progress:
                progress.advance(len(batch))
    finally:
        await producer.stop()


def run_import(kind: str, path: Path, settings, clinics: Directory, *, dry_run: bool = False,  # noqa: ANN001
               bootstrap: str | None = None, encoding: str | None = None) -> int:
    """The command: 0 when every row was published, 1 when some were invalid, 2 when none could be."""
    bootstrap = bootstrap or settings.kafka_bootstrap_servers
    if not dry_run and not bootstrap:
        click.echo("cyclecare import: KAFKA_BOOTSTRAP_SERVERS is not set and no `cyclecare run` is up here "
                   f"(no live broker named in {settings.data_dir}/embedded-broker); point it at the Kafka "
                   "cluster (host:port[,host:port]) or use --dry-run to only validate the file", err=True)
        return 2
    try:
        source = read_text(path, encoding)
        rows = rows_of(source, kind, str(path))
    except ImportFileError as exc:
        click.echo(f"cyclecare import: {exc}", err=True)
        return 2
    if source.encoding != "utf-8-sig" or source.delimiter != ",":
        click.echo(f"read {path.name} as {source.encoding}, separated by {source.delimiter!r}", err=True)
    with click.progressbar(rows, label=f"validating {len(rows)} {kind}", file=click.get_text_stream("stderr")) as bar:
        parsed = parse_file(kind, rows, clinics, bar)
    for error in parsed.errors:
        click.echo(f"invalid {error}", err=True)
    bad_rows = len({e.row for e in parsed.errors})
    if parsed.events and not dry_run:
        topic = Topics(settings.topic_namespace).name(kind)
        asyncio.run(publish(bootstrap, topic, settings.partitions, parsed.events, Progress(len(parsed.events))))
    verb = "valid (dry run, nothing published)" if dry_run else "published"
    click.echo(f"{len(parsed.events)} of {parsed.rows} {kind} {verb}; {bad_rows} invalid row(s)")
    return 1 if bad_rows else 0
