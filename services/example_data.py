"""``cyclecare example-data DIR``: the example CSV files, dated relative to today, so that
importing them schedules check-ins and reminders in the coming days (the files under
``examples/`` show the format but carry fixed dates that the tests rely on)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

from services.importer import COLUMNS

PATIENTS = [
    # a national-format phone: read with the clinic's country (the US for rocklin)
    ("p-1001", "rocklin", "Ana", "+19165550123", "ana@example.org", "America/Los_Angeles", "en", "true", "true", "18"),
    ("p-1002", "rocklin", "Luis", "(916) 555-0124", "", "America/Los_Angeles", "es", "yes", "no", "22"),
    ("p-1003", "sevilla", "Carmen", "600 000 103", "carmen@example.org", "Europe/Madrid", "es", "true", "false", ""),
    ("p-1004", "rocklin", "Ben", "+19165550126", "", "America/New_York", "en", "true", "false", "15"),
]
# days before today: the day-2 check-in tomorrow, day 7 in 2 days, the day-28 headache
# check-in in 3 days, the day-70 booking reminder in 4 days
TREATMENTS = [("t-5001", "p-1001", "rocklin", 1, "155", "12"), ("t-5002", "p-1002", "rocklin", 5, "155", ""),
              ("t-5003", "p-1003", "sevilla", 25, "195", "12"), ("t-5004", "p-1004", "rocklin", 66, "155", "12")]


def _csv(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def example_files(today: date) -> dict[str, str]:
    """File name -> CSV text."""
    treatments = [(t, p, c, (today - timedelta(days=ago)).isoformat(), u, w) for t, p, c, ago, u, w in TREATMENTS]
    with_errors = [
        ("t-6001", "p-1001", "rocklin", (today - timedelta(days=3)).isoformat(), "155", "12"),
        ("t-6002", "p-1002", "rocklin", f"{today.year}-02-30", "155", "12"),  # no such day
        ("t-6003", "p-1003", "nowhere", today.isoformat(), "", ""),  # not in the clinics file
        ("t-6004", "", "rocklin", today.isoformat(), "-5", ""),  # no patient, negative units
    ]
    return {
        "patients.csv": _csv(COLUMNS["patients"], PATIENTS),
        "treatments.csv": _csv(COLUMNS["treatments"], treatments),
        "treatments-with-errors.csv": _csv(COLUMNS["treatments"], with_errors),
    }


def write_examples(directory: Path, today: date) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in example_files(today).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
