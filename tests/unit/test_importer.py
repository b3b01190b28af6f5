"""`cyclecare import`: files as clinics export them, and what the person importing sees."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from services.example_data import example_files
from services.local_run import running_broker, write_broker_file
from services.importer import (
    ImportFileError, Progress, parse_file, progress_line, read_rows, read_text, rows_of,
)
from shared.broker import free_port
from shared.clinics import load_clinics

CLINICS = load_clinics(None)  # the example clinics: rocklin (US), sevilla (ES)
HEADER = "patient_id,clinic_id,first_name,phone,timezone,sms_consent"


def patients(tmp_path: Path, text: str, encoding: str = "utf-8") -> list:
    path = tmp_path / "patients.csv"
    path.write_bytes(text.encode(encoding))
    return parse_file("patients", read_rows(path, "patients"), CLINICS).events


def test_a_national_phone_number_is_read_with_the_clinics_country(tmp_path):
    text = f"{HEADER}\np1,rocklin,Ana,(916) 555-0111,America/Los_Angeles,yes\np2,sevilla,Eva,600 000 113,Europe/Madrid,yes\n"
    assert [e.phone for e in patients(tmp_path, text)] == ["+19165550111", "+34600000113"]


def test_an_unreadable_phone_number_is_reported_on_its_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(f"{HEADER}\np1,rocklin,Ana,call me,America/Los_Angeles,yes\n")
    parsed = parse_file("patients", read_rows(path, "patients"), CLINICS)
    assert [str(e).split(":")[:2] for e in parsed.errors] == [["row 1", " phone"]]


def test_a_latin_1_export_is_read_with_its_accents(tmp_path):
    text = f"{HEADER}\np1,sevilla,Begoña,+34600000113,Europe/Madrid,sí\n".replace(",sí", ",yes")
    [event] = patients(tmp_path, text, "latin-1")
    assert event.first_name == "Begoña"


def test_a_utf8_file_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    [event] = patients(tmp_path, "\ufeff" + f"{HEADER}\np1,sevilla,Begoña,+34600000113,Europe/Madrid,yes\n")
    assert (event.patient_id, event.first_name) == ("p1", "Begoña")


def test_the_encoding_that_read_the_file_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("a\nBegoña\n".encode("cp1252"))
    assert read_text(path).encoding == "cp1252"


def test_a_file_that_is_not_in_the_encoding_asked_for_is_refused_naming_it(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(f"{HEADER}\np1,sevilla,Begoña,+34600000113,Europe/Madrid,yes\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not utf-8: byte 0xf1"):
        read_text(path, "utf-8")


def test_a_semicolon_separated_export_is_detected(tmp_path):
    text = f"{HEADER.replace(',', ';')}\np1;rocklin;Ana;(916) 555-0111;America/Los_Angeles;yes\n"
    [event] = patients(tmp_path, text)
    assert (event.patient_id, event.phone) == ("p1", "+19165550111")


def test_a_missing_column_is_named_with_the_separator_that_was_read(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("patient_id;clinic_id\np1;rocklin\n")
    with pytest.raises(ImportFileError, match=r"missing column\(s\) first_name, phone, timezone, sms_consent.*';'"):
        rows_of(read_text(path), "patients")


def test_a_duplicate_id_is_reported_with_the_row_that_had_it_first_and_published_once(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("treatment_id,patient_id,clinic_id,administered_on\n"
                    "t1,p1,rocklin,2026-11-01\nt2,p2,rocklin,2026-11-01\nt1,p1,rocklin,2026-11-02\n")
    parsed = parse_file("treatments", read_rows(path, "treatments"), CLINICS)
    assert [e.treatment_id for e in parsed.events] == ["t1", "t2"]
    assert [str(e) for e in parsed.errors] == ["row 3: treatment_id: duplicate 't1', first in row 1; not published"]


def test_progress_shows_rows_per_second_and_the_time_left():
    assert progress_line(1000, 5000, 2.0) == "published 1,000 of 5,000 rows  500 rows/s  ETA 8s"
    assert progress_line(5000, 5000, 4.0) == "published 5,000 of 5,000 rows  1,250 rows/s  done"


def test_progress_off_a_terminal_prints_at_most_once_a_second_and_at_the_end():
    now = [0.0]
    out = io.StringIO()
    progress = Progress(3000, out, clock=lambda: now[0])
    for _ in range(3):
        now[0] += 0.6
        progress.advance(1000)
    assert out.getvalue().splitlines() == ["published 2,000 of 3,000 rows  1,667 rows/s  ETA 1s",
                                           "published 3,000 of 3,000 rows  1,667 rows/s  done"]


def test_the_example_files_are_dated_relative_to_today_and_import_as_documented():
    files = example_files(date(2027, 1, 10))
    assert "t-5001,p-1001,rocklin,2027-01-09" in files["treatments.csv"]
    for name, kind, valid in (("patients.csv", "patients", 4), ("treatments.csv", "treatments", 4),
                              ("treatments-with-errors.csv", "treatments", 1)):
        source = read_text_of(files[name])
        assert len(parse_file(kind, rows_of(source, kind), CLINICS).events) == valid, name


def read_text_of(text: str):  # noqa: ANN201
    from services.importer import CsvText

    return CsvText(text, "utf-8-sig", ",")


def test_import_finds_the_broker_of_a_local_run_through_its_port_file(tmp_path):
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        write_broker_file(tmp_path, address)
        assert running_broker(tmp_path) == address


def test_a_port_file_left_by_a_stopped_run_is_ignored(tmp_path):
    write_broker_file(tmp_path, f"127.0.0.1:{free_port()}")
    assert running_broker(tmp_path) is None
    assert running_broker(tmp_path / "nothing-here") is None
