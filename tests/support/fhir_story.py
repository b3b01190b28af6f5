"""A patient's cycle as contract events, with what FHIR out should make of it: shared by
the FHIR unit tests, the export test and the push sink tests."""

from __future__ import annotations

from datetime import timedelta

from shared.events import CheckinCompleted, ClinicianAlert, Event
from tests.support.portal_events import (
    T0, acked, alert, enrolled, headache_checkin, resolved, side_effects_checkin, sms_failed, sms_sent, treated,
)


def red_flag_checkin(patient_id: str = "p1", cycle: int = 1) -> CheckinCompleted:
    return CheckinCompleted(checkin_id=f"{patient_id}-rf{cycle}", patient_id=patient_id, clinic_id="rocklin",
                            kind="side_effects", treatment_id=f"{patient_id}-t{cycle}", cycle=cycle,
                            answers={"red_flags": True, "red_flag_reasons": ["dysphagia"],
                                     "effects": [{"code": 2, "reason": "ptosis", "severity": "severe"}]},
                            raw_replies=["yes, hard to swallow", "2s"], occurred_at=T0 + timedelta(days=1))


def non_response_alert(patient_id: str = "p1") -> ClinicianAlert:
    at = T0 + timedelta(days=170)
    return ClinicianAlert(alert_id=f"{patient_id}-nr", patient_id=patient_id, clinic_id="rocklin", severity="review",
                          reasons=["non_response"], summary="Headache days down by less than 30% after 2 cycles",
                          raised_at=at, occurred_at=at, evidence={"baseline": 20, "latest": 18})


def full_cycle(patient_id: str = "p1") -> list[Event]:
    """Enrolled, treated, a red-flag report (urgent alert, acknowledged then resolved), a
    mild side effect, two headache reports (one without the medication figure), a
    non-response review, messages sent and one that failed."""
    no_medication = headache_checkin(14, 1, patient_id=patient_id, at=T0 + timedelta(days=28))
    no_medication = no_medication.model_copy(update={"checkin_id": f"{patient_id}-hc-partial",
                                                     "answers": {"headache_days": 16}, "raw_replies": ["16", "can't recall"]})
    return [
        enrolled(patient_id), treated(patient_id),
        sms_sent(patient_id, at=T0 + timedelta(days=1, minutes=-5)),
        red_flag_checkin(patient_id),
        alert(f"{patient_id}-a1", patient_id=patient_id, at=T0 + timedelta(days=1)),
        acked(f"{patient_id}-a1", patient_id=patient_id, at=T0 + timedelta(days=1, minutes=4)),
        resolved(f"{patient_id}-a1", patient_id=patient_id, at=T0 + timedelta(days=1, minutes=30)),
        side_effects_checkin(patient_id, cycle=1, at=T0 + timedelta(days=6)),
        headache_checkin(12, 1, patient_id=patient_id, at=T0 + timedelta(days=27)),
        no_medication,
        sms_failed(patient_id, at=T0 + timedelta(days=55)),
        non_response_alert(patient_id),
    ]
