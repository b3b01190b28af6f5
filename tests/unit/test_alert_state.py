from datetime import datetime, timedelta, timezone

from shared.alert_state import AlertState
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)


def alert() -> AlertState:
    return AlertState.raised(ClinicianAlert(alert_id="a1", patient_id="p1", clinic_id="rocklin", severity="urgent",
                                            reasons=["dysphagia"], summary="trouble swallowing", raised_at=T0))


def ack(by: str, minutes: int) -> AlertAcknowledged:
    return AlertAcknowledged(alert_id="a1", patient_id="p1", clinic_id="rocklin", by=by, via="sms",
                             acknowledged_at=T0 + timedelta(minutes=minutes))


def resolved(minutes: int) -> AlertResolved:
    return AlertResolved(alert_id="a1", patient_id="p1", clinic_id="rocklin", by="lee", via="web",
                         outcome="contacted_patient", resolved_at=T0 + timedelta(minutes=minutes))


def test_an_alert_is_open_until_acknowledged_and_acknowledged_until_resolved() -> None:
    state = alert()
    assert state.status == "open" and state.allows("ack") and state.allows("resolve")
    state = state.apply(ack("lee", 4))
    assert state.status == "acknowledged" and not state.allows("ack") and state.allows("resolve")
    assert state.time_to_acknowledge() == 240
    state = state.apply(resolved(9))
    assert state.status == "resolved" and not state.allows("ack") and not state.allows("resolve")


def test_the_earliest_acknowledgement_counts_whatever_order_they_arrive_in() -> None:
    late_first = alert().apply(ack("patel", 7)).apply(ack("lee", 3))
    early_first = alert().apply(ack("lee", 3)).apply(ack("patel", 7))
    assert late_first == early_first and early_first.acknowledged_by == "lee"


def test_a_resolution_without_an_acknowledgement_ends_the_alert() -> None:
    assert alert().apply(resolved(5)).status == "resolved"


def test_a_repeated_escalation_step_changes_nothing_and_paged_clinicians_are_listed_once() -> None:
    page = AlertEscalated(alert_id="a1", patient_id="p1", clinic_id="rocklin", level=2, notified=["lee", "patel"],
                          escalated_at=T0 + timedelta(minutes=15))
    again = AlertEscalated(alert_id="a1", patient_id="p1", clinic_id="rocklin", level=3, notified=["lee", "patel"],
                           escalated_at=T0 + timedelta(minutes=45))
    state = alert().apply(page).apply(page).apply(again)
    assert state.escalations == ((2, 0), (3, 0)) and state.paged == ("lee", "patel")
