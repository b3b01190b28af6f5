"""Escalation pages: who gets them, what they say, once per (alert, level, repeat, recipient)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.notifier.alert_book import AlertBook
from services.notifier.domain import Contact, Outgoing, Suppressed, on_alert
from services.notifier.paging import already_paged, known_from, pages, recipients, with_action
from services.notifier.rendering import find_forbidden_words, render
from shared.ack_codes import ack_code
from shared.clinics import load_clinics
from shared.events import AlertAcknowledged, AlertEscalated, ClinicianAlert

CLINICS = load_clinics(Path(__file__).parents[1] / "data" / "clinics_paging.yaml")
ROCKLIN = CLINICS.get("rocklin")
T0 = datetime(2026, 11, 26, 11, 0, tzinfo=timezone.utc)  # 03:00 in Rocklin: the middle of the night
ANA = Contact(patient_id="p-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550123", sms_consent=True)
ALERT = ClinicianAlert(alert_id="a-1", patient_id="p-ana", clinic_id="rocklin", severity="urgent", reasons=["dysphagia"],
                       summary="Patient reports a red-flag symptom after treatment: Trouble swallowing.", raised_at=T0)
PHONES = ("+19165550101", "+19165550102", "+19165550199", "+19165550123")


def step(level: int = 2, repeat: int = 0, notified=("lee", "patel", "okafor"), minutes: int = 15) -> AlertEscalated:
    return AlertEscalated(alert_id="a-1", patient_id="p-ana", clinic_id="rocklin", level=level, repeat=repeat,
                          notified=list(notified), escalated_at=T0 + timedelta(minutes=minutes))


KNOWN = known_from(ALERT, ANA, ROCKLIN)


def test_level_two_pages_every_named_clinician_by_sms_and_email_as_urgent():
    decided = pages(step(), KNOWN, ROCKLIN)
    assert {(d.channel, d.to) for d in decided} == {
        ("sms", "+19165550101"), ("email", "lee@example.org"), ("sms", "+19165550102"), ("email", "patel@example.org"),
        ("email", "okafor@example.org")}
    assert all(isinstance(d, Outgoing) and d.urgent and d.audience == "clinician" and d.kind == "page" for d in decided)


def test_from_level_three_the_clinics_escalation_phone_is_paged_too():
    assert ("sms", "+19165550199") not in recipients(step(level=2), ROCKLIN)
    assert ("sms", "+19165550199") in recipients(step(level=3, notified=["lee"]), ROCKLIN)


def test_each_page_has_its_own_key_per_level_repeat_and_recipient_and_the_same_key_when_redelivered():
    keys = lambda event: {d.message_key for d in pages(event, KNOWN, ROCKLIN)}  # noqa: E731
    assert keys(step()) == keys(step())
    assert keys(step()).isdisjoint(keys(step(level=3))) and keys(step(level=3)).isdisjoint(keys(step(level=3, repeat=1)))
    assert len(keys(step())) == 5


def test_no_page_goes_out_for_an_alert_already_taken_the_step_is_recorded_as_suppressed():
    taken = with_action(KNOWN, AlertAcknowledged(alert_id="a-1", patient_id="p-ana", clinic_id="rocklin", by="lee",
                                                 via="sms", acknowledged_at=T0 + timedelta(minutes=14)))
    decided = pages(step(), taken, ROCKLIN)
    assert decided and all(isinstance(d, Suppressed) and d.reason == "alert already acknowledged" for d in decided)


def test_the_page_says_who_was_paged_before_in_order():
    assert already_paged(KNOWN, ROCKLIN) == ["Dr. Lee"]  # the on-call clinician got the alert itself
    after_level_two = with_action(KNOWN, step())
    assert already_paged(after_level_two, ROCKLIN) == ["Dr. Lee", "Dr. Patel", "Dr. Okafor"]


def test_an_unknown_clinician_id_is_skipped_and_logged_without_any_phone_number(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.DEBUG):
        found = recipients(step(notified=["nobody", "patel"]), ROCKLIN)
    assert found == [("sms", "+19165550102"), ("email", "patel@example.org")]
    assert "nobody" in caplog.text and not any(phone in caplog.text for phone in PHONES)
    assert "@" not in caplog.text


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_page_sms_and_email_show_summary_age_level_who_was_paged_and_the_ack_code(language: str):
    [sms, email, *_] = pages(step(level=3, repeat=1, minutes=47), with_action(KNOWN, step()), ROCKLIN)
    text = render("page", "sms", language, sms.context).text
    mail = render("page", "email", language, email.context)
    for body in (text, mail.text, mail.html):
        assert "Ana" in body and "p-ana" in body and "47 min" in body and "Dr. Patel" in body
        assert f"ACK {ack_code('a-1')}" in body and not find_forbidden_words(body)
    assert "Trouble swallowing" in mail.text and ("Level 3, repeat 1" in text or "Nivel 3, repetición 1" in text)


def test_every_urgent_alert_sms_to_a_clinician_ends_with_its_ack_code_and_routine_ones_have_none():
    [sms] = [d for d in on_alert(ALERT, ANA, ROCKLIN) if d.channel == "sms"]
    for language in ("en", "es"):
        last = render("alert", "sms", language, sms.context).text.splitlines()[-1]
        assert last in (f"Reply ACK {ack_code('a-1')} to take this.", f"Responda ACK {ack_code('a-1')} para encargarse.")
    high = ALERT.model_copy(update={"severity": "high", "alert_id": "a-2"})
    [email] = on_alert(high, ANA, ROCKLIN)
    assert f"ACK {ack_code('a-2')}" in render("alert", "email", "en", email.context).text
    routine = {**sms.context, "ack_code": None, "severity": "routine"}
    assert "ACK" not in render("alert", "sms", "en", routine).text


async def test_an_escalation_that_overtakes_its_alert_waits_for_it_and_the_book_keeps_the_lifecycle():
    book = AlertBook({}, wait_seconds=60)
    waiting = asyncio.create_task(book.soon("p-ana", "a-1"))
    await asyncio.sleep(0)
    assert not waiting.done()
    book.save(KNOWN)
    assert await asyncio.wait_for(waiting, 5) == KNOWN
    before, after = book.apply(step())
    assert before == KNOWN and after.state.paged == ("lee", "patel", "okafor") and book.get("p-ana", "a-1") == after
    assert book.apply(step().model_copy(update={"alert_id": "a-unknown"})) == (None, None)


def test_an_acknowledgement_that_overtakes_its_alert_is_held_and_applied_when_the_alert_arrives():
    book = AlertBook({}, wait_seconds=0.01)
    taken = AlertAcknowledged(alert_id="a-1", patient_id="p-ana", clinic_id="rocklin", by="patel", via="sms",
                              acknowledged_at=T0 + timedelta(minutes=3))
    assert book.apply(taken) == (None, None) and book.get("p-ana", "a-1") is None
    book.save(KNOWN)
    stored = book.get("p-ana", "a-1")
    assert stored.state.acknowledged_by == "patel" and stored.state.status == "acknowledged"
    assert book.apply(taken) == (stored, stored)  # redelivered: nothing changes


def test_a_page_names_the_patient_as_the_notifier_knows_them_now_even_if_the_alert_came_first():
    unnamed = known_from(ALERT, None, ROCKLIN)
    [sms, *_] = pages(step(), unnamed, ROCKLIN, ANA)
    assert sms.context["first_name"] == "Ana" and pages(step(), unnamed, ROCKLIN)[0].context["first_name"] == "(unknown)"
