"""FHIR search parameters and keyset paging: pure functions, no database.

Supported on every resource type: ``patient`` (``Patient/{id}`` or the bare id; ``subject``
is the same), ``date`` and ``_lastUpdated`` with the prefixes ``eq`` (default), ``gt``,
``ge``, ``lt``, ``le`` (each may repeat: ``date=ge2026-01-01&date=lt2026-02-01``), and
``_count`` (page size). A page ends with an opaque ``_cursor``: the position of the first
resource not yet returned, so a page never repeats or skips one while results are added.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from yarl import URL

DEFAULT_COUNT = 50
MAX_COUNT = 1000
PREFIXES = ("eq", "gt", "ge", "lt", "le")
PARAMETERS = ("patient", "subject", "date", "_lastUpdated", "_count", "_cursor", "_format")
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class SearchError(ValueError):
    """A parameter cyclecare cannot honour; the message names it (400 OperationOutcome)."""

    def __init__(self, message: str, expression: str) -> None:
        super().__init__(message)
        self.expression = expression


@dataclass(frozen=True)
class Bound:
    """``column >= start`` and/or ``column < end`` (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Cursor:
    """The first resource of the next page: the ``n``-th of the source row ``(at, key)``."""

    at: datetime
    key: str
    n: int = 0

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.key, self.n], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            at, key, n = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(at), str(key), int(n))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise SearchError("_cursor is not one this server gave (start the search again)", "_cursor") from exc


@dataclass(frozen=True)
class Search:
    patient: str | None = None
    date: list[Bound] = field(default_factory=list)
    last_updated: list[Bound] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    cursor: Cursor | None = None


def parse_search(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> Search:
    """The query string of a search (every value of a repeated parameter) as a :class:`Search`."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    unknown = sorted({k for k, _ in pairs if k not in PARAMETERS})
    if unknown:
        raise SearchError(f"unsupported search parameter {unknown[0]!r} (supported: patient, date, _lastUpdated, _count)",
                          unknown[0])
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    patients = values.get("patient", []) + values.get("subject", [])
    if len(set(patients)) > 1:
        raise SearchError("give one patient per search", "patient")
    return Search(
        patient=_patient(patients[0]) if patients else None,
        date=[parse_bound(v, "date") for v in values.get("date", [])],
        last_updated=[parse_bound(v, "_lastUpdated") for v in values.get("_lastUpdated", [])],
        count=_count(values.get("_count", [str(DEFAULT_COUNT)])[-1]),
        cursor=Cursor.decode(values["_cursor"][-1]) if values.get("_cursor") else None,
    )


def _patient(value: str) -> str:
    patient = value.removeprefix("Patient/")
    if not patient or "/" in patient:
        raise SearchError(f"patient must be Patient/<id> or <id>, not {value!r}", "patient")
    return patient


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise SearchError(f"_count must be a whole number, not {value!r}", "_count") from None
    if not 1 <= count <= MAX_COUNT:
        raise SearchError(f"_count must be between 1 and {MAX_COUNT}", "_count")
    return count


def parse_bound(value: str, name: str) -> Bound:
    """``ge2026-03-01`` -> from the start of that day; ``lt2026-03`` -> before March; a
    date without a zone is UTC, and a value covers its whole precision (a day, a second)."""
    prefix, text = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
    try:
        start, end = _interval(text)
    except ValueError:
        raise SearchError(f"{name}: {value!r} is not a FHIR date or dateTime (e.g. ge2026-03-01)", name) from None
    return {"eq": Bound(start, end), "ge": Bound(start, None), "gt": Bound(end, None),
            "lt": Bound(None, start), "le": Bound(None, end)}[prefix]


def _interval(text: str) -> tuple[datetime, datetime]:
    match = _DATE.match(text)
    if match:
        year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
        start = datetime(year, month, day, tzinfo=timezone.utc)
        if match[3]:
            return start, start + timedelta(days=1)
        if match[2]:
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
        return start, datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment, moment + timedelta(seconds=1)


def next_link(url: URL, cursor: Cursor) -> str:
    """The same search from ``cursor`` on (every other parameter kept as given)."""
    query = [(k, v) for k, v in url.query.items() if k != "_cursor"] + [("_cursor", cursor.encode())]
    return str(url.with_query(query))

