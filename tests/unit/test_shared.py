"""The shared package: codec, settings, clinics file, clocks and log redaction."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from shared import metrics
from shared.clinics import ClinicsFileError, parse_clinics
from shared.clock import ManualClock, SimulatedClock
from shared.codec import DecodeError, dead_letter, decode, encode
from shared.config import SettingsError, env_var_names, load_settings
from shared.events import ClinicianAlert, PatientEnrolled, TreatmentRecorded, deterministic_id
from shared.logs import RedactingFilter, redact

CLINIC = """
clinics:
  - id: rocklin
    name: Rocklin Headache Clinic
    phone: "+19165550100"
    timezone: America/Los_Angeles
    clinicians: [{name: Dr. Lee, email: lee@example.org, on_call: true}]
"""


def patient(**changes: object) -> PatientEnrolled:
    fields = dict(patient_id="p1", clinic_id="rocklin", first_name="Ana", phone="+19165550199",
                  timezone="America/Los_Angeles", sms_consent=True)
    return PatientEnrolled(**(fields | changes))


def test_events_travel_as_plain_json_without_faust_metadata() -> None:
    wire = json.loads(encode(patient()))
    assert wire["type"] == "patient.enrolled" and wire["version"] == 1
    assert not any(key.startswith("__") for key in wire)


def test_decoding_gives_back_the_same_event() -> None:
    enrolled = patient()
    assert decode(encode(enrolled)) == enrolled
    event = TreatmentRecorded(treatment_id="t1", patient_id="p1", clinic_id="rocklin", administered_on=date(2026, 3, 1))
    assert decode(encode(event)) == event


def test_unknown_extra_fields_are_ignored() -> None:
    wire = json.loads(encode(patient()))
    wire["favourite_colour"] = "teal"
    assert decode(json.dumps(wire).encode()).patient_id == "p1"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "tombstone"),
        (b'{"type": "treatment.recorded", "patient_id": "p"}', "administered_on"),
        (b'{"type": "no.such.event"}', "type"),
    ],
)
def test_records_that_are_not_contract_events_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(raw)


def test_timestamps_without_an_offset_are_refused() -> None:
    wire = json.loads(encode(patient()))
    wire["occurred_at"] = "2026-03-01T10:00:00"
    with pytest.raises(DecodeError, match="UTC offset"):
        decode(json.dumps(wire).encode())


def test_phone_numbers_are_normalised_to_e164_and_nonsense_is_refused() -> None:
    assert patient(phone="+1 (916) 555-0199").phone == "+19165550199"
    with pytest.raises(ValueError, match="phone"):
        patient(phone="12")


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        patient(timezone="Mars/Olympus_Mons")


def test_dead_letter_keeps_the_original_bytes_and_the_error() -> None:
    record = json.loads(dead_letter(b"\x00bad", topic="t", partition=3, offset=42, error="boom", service="survey"))
    assert record["topic"] == "t" and record["partition"] == 3 and record["offset"] == 42
    assert record["error"] == "boom" and record["original_base64"] == "AGJhZA=="


def test_deterministic_ids_repeat_for_the_same_cause_only() -> None:
    assert deterministic_id("a", 1) == deterministic_id("a", 1) != deterministic_id("a", 2)


def test_alerts_need_at_least_one_reason() -> None:
    with pytest.raises(ValueError):
        ClinicianAlert(alert_id="a", patient_id="p", clinic_id="c", severity="urgent", reasons=[],
                       summary="s", raised_at=datetime.now(timezone.utc))


def test_settings_come_from_the_contract_variables() -> None:
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "CYCLECARE_HTTP_PORT": "7000", "SMTP_STARTTLS": "true"})
    assert settings.broker_url == "kafka://k1:9092;kafka://k2:9092"
    assert settings.http_port == 7000 and settings.smtp_starttls
    assert not settings.twilio_configured and not settings.smtp_configured


def test_a_bad_setting_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="CYCLECARE_HTTP_PORT"):
        load_settings({"CYCLECARE_HTTP_PORT": "not-a-port"})
    with pytest.raises(SettingsError, match="CYCLECARE_CLOCK_START"):
        load_settings({"CYCLECARE_CLOCK_START": "2026-03-01T10:00:00"})


def test_every_contract_variable_is_known() -> None:
    contract = {
        "KAFKA_BOOTSTRAP_SERVERS", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM", "TWILIO_API_BASE",
        "SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS",
        "CYCLECARE_PUBLIC_URL", "CYCLECARE_CLINICS", "CYCLECARE_HTTP_PORT", "CYCLECARE_LOG_FORMAT", "CYCLECARE_API_TOKEN",
    }
    assert contract <= env_var_names()


def test_clinics_file_defaults_the_clinical_rules() -> None:
    clinic = parse_clinics(CLINIC).get("rocklin")
    assert clinic is not None and clinic.rules.side_effect_checkin_days == (2, 7, 14)
    assert clinic.on_call[0].name == "Dr. Lee"


def test_an_unknown_key_in_the_clinics_file_is_an_error_naming_it() -> None:
    with pytest.raises(ClinicsFileError, match="colour"):
        parse_clinics(CLINIC.replace("    timezone:", "    colour: teal\n    timezone:"))


def test_an_event_for_an_unknown_clinic_is_refused_naming_it() -> None:
    from shared.clinics import UnknownClinic

    directory = parse_clinics(CLINIC)
    assert directory.require("rocklin").name == "Rocklin Headache Clinic"
    with pytest.raises(UnknownClinic, match="'elsewhere'"):
        directory.require("elsewhere")


def test_a_clinician_is_known_by_the_email_name_and_the_escalation_policy_has_defaults() -> None:
    clinic = parse_clinics(CLINIC).require("rocklin")
    assert [c.id for c in clinic.clinicians] == ["lee"]
    assert clinic.clinician("lee") is clinic.clinicians[0]
    assert (clinic.escalation.urgent_ack_minutes, clinic.escalation.repeat_minutes,
            clinic.escalation.max_repeats, clinic.escalation.high_ack_working_hours) == (15, 30, 4, 4)
    assert clinic.escalation_phone is None


def test_escalation_overrides_and_the_escalation_phone_are_read_from_the_clinics_file() -> None:
    text = CLINIC + '    escalation_phone: "+19165550199"\n    escalation: {urgent_ack_minutes: 5}\n'
    clinic = parse_clinics(text).require("rocklin")
    assert clinic.escalation.urgent_ack_minutes == 5 and clinic.escalation.repeat_minutes == 30
    assert clinic.escalation_phone == "+19165550199"
    with pytest.raises(ClinicsFileError, match="escalation.often"):
        parse_clinics(CLINIC + "    escalation: {often: 3}\n")


def test_two_clinicians_with_one_id_or_one_without_id_and_email_are_refused() -> None:
    two = CLINIC.replace("clinicians: [{name: Dr. Lee, email: lee@example.org, on_call: true}]",
                         "clinicians: [{name: Dr. Lee, email: lee@example.org}, {name: Dr. L, email: lee@other.org}]")
    with pytest.raises(ClinicsFileError, match="unique"):
        parse_clinics(two)
    with pytest.raises(ClinicsFileError, match="id or an email"):
        parse_clinics(CLINIC.replace("email: lee@example.org, ", ""))


def test_a_phone_number_names_the_clinicians_it_belongs_to() -> None:
    directory = parse_clinics(CLINIC.replace("on_call: true}", 'on_call: true, phone: "+19165550101"}'))
    [(clinic, person)] = directory.clinicians_with_phone("+19165550101")
    assert (clinic.id, person.id) == ("rocklin", "lee")
    assert directory.clinicians_with_phone("+19165550102") == []


def test_a_missing_required_clinic_field_is_named() -> None:
    with pytest.raises(ClinicsFileError, match="phone"):
        parse_clinics(CLINIC.replace('    phone: "+19165550100"\n', ""))


def test_simulated_clocks_with_the_same_settings_agree() -> None:
    import time

    start, anchor = datetime(2026, 3, 1, tzinfo=timezone.utc), time.time()
    first, second = SimulatedClock(start, 1000.0, anchor), SimulatedClock(start, 1000.0, anchor)
    assert abs((first.now() - second.now()).total_seconds()) < 60


def test_a_simulated_clock_runs_faster_than_real_time() -> None:
    import time

    clock = SimulatedClock(datetime(2026, 3, 1, tzinfo=timezone.utc), speed=3600.0, anchor=time.time() - 1.0)
    assert clock.now() - datetime(2026, 3, 1, tzinfo=timezone.utc) >= timedelta(minutes=59)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    clock.advance(timedelta(hours=2))
    assert clock.now().hour == 2


@pytest.mark.parametrize(
    "secret",
    ["+19165550199", "+1 (916) 555-0199", "916-555-0199", "(916) 555-0199", "9165550199", "ana@example.org", "+34 600 000 113"],
)
def test_logs_never_show_phone_numbers_or_emails(secret: str) -> None:
    assert secret not in redact(f"sent to {secret} ok")


def test_dates_times_and_counts_stay_readable_in_logs() -> None:
    line = "tick at 2026-11-25 16:48:08.123+00:00 fired 1200 timers in 35 ms"
    assert redact(line) == line


def test_the_log_filter_redacts_arguments_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "message to %s", ("+19165550199",), None)
    RedactingFilter().filter(record)
    assert "+1916" not in record.getMessage()


def test_every_event_type_is_routed_to_a_topic_cyclecare_knows():
    from shared.codec import ALL_EVENTS
    from shared.topics import INTERNAL, PUBLIC, TOPIC_OF

    types = {cls.model_fields["type"].default for cls in ALL_EVENTS}
    assert types == set(TOPIC_OF) and set(TOPIC_OF.values()) <= set(PUBLIC + INTERNAL)


def test_an_event_is_published_to_the_topic_of_its_type_in_the_namespace():
    from shared.events import ClinicianAlert
    from shared.notifier_events import OutboundRequested
    from shared.topics import Topics

    alert = ClinicianAlert(alert_id="a", patient_id="p", clinic_id="c", severity="urgent", reasons=["dysphagia"],
                           summary="s", raised_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    ask = OutboundRequested(message_key="k", patient_id="p", clinic_id="c", kind="checkin_q1")
    assert [Topics("t1").of(e) for e in (alert, ask)] == ["t1.alerts", "t1.outbound"]


def test_a_consent_change_covers_its_channel_and_all_covers_every_channel():
    from shared.events import ConsentChanged

    def change(channel: str) -> ConsentChanged:
        return ConsentChanged(patient_id="p", clinic_id="c", channel=channel, granted=False, source="ehr")

    assert [change("sms").covers(c) for c in ("sms", "email")] == [True, False]
    assert [change("email").covers(c) for c in ("sms", "email")] == [False, True]
    assert [change("all").covers(c) for c in ("sms", "email")] == [True, True]


def test_every_validation_error_reads_as_field_colon_message_and_long_texts_are_cut():
    from pydantic import BaseModel, ValidationError

    from shared.validation import field_errors, one_line

    class Thing(BaseModel):
        count: int
        name: str

    with pytest.raises(ValidationError) as caught:
        Thing.model_validate({"count": "x" * 500})
    assert one_line(caught.value).startswith("count: Input should be a valid integer")
    assert one_line(caught.value).endswith("; name: Field required")
    with pytest.raises(ValidationError) as whole:
        Thing.model_validate(3)
    assert one_line(whole.value, whole="event").startswith("event: ")
    assert all(len(e["error"]) < 260 for e in field_errors(caught.value))


def test_counting_through_a_metrics_child_reuses_the_child_of_its_labels():
    assert metrics.child(metrics.MESSAGES, "sms", "sent") is metrics.child(metrics.MESSAGES, "sms", "sent")
    before = metrics.MESSAGES.labels("sms", "sent")._value.get()
    metrics.child(metrics.MESSAGES, "sms", "sent").inc()
    assert metrics.MESSAGES.labels("sms", "sent")._value.get() == before + 1
