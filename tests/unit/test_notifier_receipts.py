"""Twilio status callbacks become delivery events; three undelivered in a row make a patient unreachable."""

from __future__ import annotations

from datetime import datetime, timezone

from services.notifier.receipts import UNDELIVERED_LIMIT, Streak, after_receipt, receipt_event, unreachable_alert
from shared.events import MessageDelivered, MessageFailed

TAGS = {"m": "due-1:booking_reminder", "p": "p-ana", "c": "rocklin", "k": "booking_reminder", "a": "p"}
NOW = datetime(2026, 3, 12, 18, 0, tzinfo=timezone.utc)


def form(status: str, sid: str = "SM1", code: str | None = None) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status} | ({"ErrorCode": code} if code else {})


def test_delivered_status_becomes_message_delivered_naming_the_cause():
    event = receipt_event(form("delivered"), TAGS)
    assert isinstance(event, MessageDelivered)
    assert (event.message_key, event.patient_id, event.kind, event.provider_id) == ("due-1:booking_reminder", "p-ana", "booking_reminder", "SM1")


def test_undelivered_status_becomes_message_failed_with_the_provider_code():
    event = receipt_event(form("undelivered", code="30003"), TAGS)
    assert isinstance(event, MessageFailed) and event.error_code == "30003"


def test_interim_statuses_publish_nothing():
    assert receipt_event(form("sent"), TAGS) is None and receipt_event(form("queued"), TAGS) is None


def test_the_same_callback_twice_gives_the_same_event_id():
    assert receipt_event(form("delivered"), TAGS).event_id == receipt_event(form("delivered"), TAGS).event_id


def test_three_undelivered_in_a_row_raise_one_routine_unreachable_alert():
    streak, alerts = Streak(), []
    for n in range(UNDELIVERED_LIMIT + 1):
        failed = receipt_event(form("undelivered", sid=f"SM{n}", code="30005"), TAGS | {"m": f"k{n}"})
        streak = after_receipt(streak, failed)
        alerts.append(unreachable_alert(streak, failed, NOW))
    raised = [a for a in alerts if a]
    assert len(raised) == 1 and raised[0].severity == "routine" and raised[0].reasons == ["unreachable"]


def test_a_repeated_callback_is_counted_once_and_a_delivery_resets_the_streak():
    failed = receipt_event(form("undelivered", code="30005"), TAGS)
    streak = after_receipt(after_receipt(Streak(), failed), failed)
    assert streak.count == 1
    assert after_receipt(streak, receipt_event(form("delivered", sid="SM9"), TAGS)).count == 0
