"""What a clinician reads in an alert: reasons in words, times in the clinic's zone,
digests that say whose they are."""

from __future__ import annotations

from datetime import date, datetime, timezone

from services.notifier.digest import digest_messages, line_for_alert
from services.notifier.domain import Contact, on_alert
from services.notifier.rendering import render
from shared.clinics import load_clinics
from shared.events import ClinicianAlert
from shared.reasons import labels, reason_label

CLINICS = load_clinics(None)
ROCKLIN = CLINICS.get("rocklin")
ANA = Contact(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123", sms_consent=True)
# every code cyclecare raises besides the vocabulary's red flags and effects
RAISED_IN_CODE = ("red_flag_reported", "unparsed_reply", "patient_message", "no_reply", "non_response",
                  "below_chronic_threshold", "cycle_overdue", "unreachable")


def vocabulary_codes() -> set[str]:
    from typing import get_args

    from services.survey.parsing import RED_FLAG_CODES, EffectReason

    return set(RED_FLAG_CODES) | set(get_args(EffectReason))


def alert(severity: str = "urgent", reasons: tuple[str, ...] = ("ptosis",)) -> ClinicianAlert:
    return ClinicianAlert(alert_id="a-1", patient_id="p-ana", clinic_id="rocklin", severity=severity,
                          reasons=list(reasons), summary="Patient reports side effects: drooping eyelid (severe).",
                          raised_at=datetime(2026, 3, 10, 16, 41, tzinfo=timezone.utc))


def test_every_reason_code_cyclecare_raises_has_a_label_in_english_and_spanish():
    codes = vocabulary_codes() | set(RAISED_IN_CODE)
    missing = [f"{code}/{language}" for code in sorted(codes) for language in ("en", "es")
               if not labels().get(code, {}).get(language)]
    assert missing == []


def test_a_label_falls_back_to_english_and_an_unknown_code_to_words():
    assert reason_label("ptosis", "es") == "párpado caído"
    assert reason_label("ptosis", "fr") == "drooping eyelid"
    assert reason_label("something_new") == "something new"


def test_an_alert_shows_its_reasons_in_words_and_its_time_in_the_clinics_zone():
    [sms, email] = on_alert(alert(), ANA, ROCKLIN)
    text = render("alert", "sms", "en", sms.context).text
    assert "Reasons: drooping eyelid." in text and "ptosis" not in text
    assert "Raised 2026-03-10 09:41 PDT." in text
    spanish = render("alert", "email", "es", email.context).text
    assert "Motivos:  párpado caído" in spanish


def test_two_clinicians_copies_of_a_digest_name_their_recipient():
    line = line_for_alert(alert("routine", ("no_reply",)), ANA, ROCKLIN)
    messages = digest_messages(ROCKLIN, date(2026, 3, 10), {line.item_key: line.item})
    texts = [render("digest", "email", "en", m.context).text for m in messages]
    assert [t.splitlines()[1] for t in texts] == ["For Dr. Lee", "For Dr. Patel"]
    assert "2026-03-10 09:41 PDT" in texts[0]
