"""Text work on untrusted input is linear: 1 MB of the worst characters for each pattern
finishes well inside the test's deadline (a quadratic pattern would need hours), and the
redaction still finds what it must hide.

Timing is not asserted here; ``python -m bench.fuzz`` measures the time per KB.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.events import PatientEnrolled
from shared.logs import _EMAIL, _PHONE, MAX_LOG_CHARS, RedactingTextFormatter, redact
from services.importer import parse_file
from shared.clinics import load_clinics

ROOT = Path(__file__).parents[2]
MB = 1_000_000
# Runs that every pattern scans: word characters, digits, phone punctuation, the "+" and
# "@" that start a match, and the near-misses that make a backtracking engine try again.
WORST = ["x", "1", "+1", "+1 ", ".", "-", "(123) ", "a@", "a@b.", "@", " ", "a.+-_1", "1-", "9" * 8 + "x"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", [_PHONE, _EMAIL], ids=["phone", "email"])
@pytest.mark.parametrize("unit", WORST)
def test_each_redaction_pattern_scans_a_megabyte_of_its_worst_input_in_linear_time(pattern, unit):
    text = unit * (MB // len(unit))
    pattern.sub("", text)  # a quadratic pattern does not return before the deadline


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", WORST)
def test_redacting_a_megabyte_log_line_returns_it_cut_to_the_limit(unit):
    redacted = redact(unit * (MB // len(unit)))
    assert len(redacted) < MAX_LOG_CHARS + 100 and redacted.endswith("more characters]")


def test_redaction_still_hides_phone_numbers_and_emails_in_every_form():
    text = "call +1 (916) 555-0123, 916.555.0199, 9165550123, +34 612 34 56 78 or ana.lee+x@clinic.example.org"
    assert redact(text) == "call [phone], [phone], [phone], [phone] or [email]"
    assert redact("at 2026-11-25 16:48:08 took 12 ms") == "at 2026-11-25 16:48:08 took 12 ms"


def test_a_traceback_in_the_readable_log_format_is_redacted_too():
    try:
        raise ValueError("could not reach +19165550123 for ana@example.org")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = RedactingTextFormatter("%(message)s").format(record)
    assert "+19165550123" not in line and "ana@example.org" not in line and "[phone]" in line


@pytest.mark.parametrize("name", ["A" * 300, "Europe/" * 44, "../" * 100 + "etc/passwd", "x" * 65])
def test_a_long_or_path_like_timezone_is_a_validation_error_not_an_os_error(name):
    with pytest.raises(ValidationError, match="timezone"):
        PatientEnrolled(patient_id="p", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
                        timezone=name, sms_consent=True)


def test_the_importer_reports_a_300_character_timezone_as_an_invalid_row():
    row = {"patient_id": "p-1", "clinic_id": "rocklin", "first_name": "Ana", "phone": "+19165550123",
           "timezone": "A" * 300, "sms_consent": "yes"}
    parsed = parse_file("patients", [row], load_clinics(None))
    assert parsed.events == [] and [e.field for e in parsed.errors] == ["timezone"]


def test_cyclecare_import_with_a_300_character_timezone_ends_with_a_row_error_not_a_traceback(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,clinic_id,first_name,phone,timezone,sms_consent\n"
                    f"p-1,rocklin,Ana,+19165550123,{'A' * 300},yes\n")
    result = subprocess.run([sys.executable, "-m", "services.cli", "import", "patients", str(path), "--dry-run"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1 and "row 1: timezone:" in result.stderr
