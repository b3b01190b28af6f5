"""Contract events for the portal's tests and benchmark, with readable defaults."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from shared.events import (
    AlertAcknowledged, AlertEscalated, AlertResolved, CheckinCompleted, CheckinDue, ClinicianAlert, ConsentChanged,
    MessageFailed, MessageSent, PatientEnrolled, TreatmentRecorded,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


def enrolled(patient_id: str = "p1", clinic_id: str = "rocklin", name: str = "Ana", **extra: object) -> PatientEnrolled:
    return PatientEnrolled(patient_id=patient_id, clinic_id=clinic_id, first_name=name, phone="+19165550111",
                           timezone="America/Los_Angeles", sms_consent=True, baseline_headache_days=20,
                           occurred_at=extra.pop("occurred_at", T0), **extra)


def treated(patient_id: str = "p1", clinic_id: str = "rocklin", on: date = date(2026, 3, 1), n: int = 1) -> TreatmentRecorded:
    return TreatmentRecorded(treatment_id=f"{patient_id}-t{n}", patient_id=patient_id, clinic_id=clinic_id,
                             administered_on=on, units=155, occurred_at=T0)


def alert(alert_id: str = "a1", patient_id: str = "p1", clinic_id: str = "rocklin", severity: str = "urgent",
          at: datetime = T0, reply: str = "hard to swallow since yesterday") -> ClinicianAlert:
    return ClinicianAlert(alert_id=alert_id, patient_id=patient_id, clinic_id=clinic_id, severity=severity,
                          reasons=["dysphagia"] if severity == "urgent" else ["neck_pain"],
                          summary="Red flag reported: trouble swallowing", raised_at=at, occurred_at=at,
                          evidence={"reply": reply})


def acked(alert_id: str = "a1", patient_id: str = "p1", clinic_id: str = "rocklin", by: str = "lee",
          at: datetime = T0 + timedelta(minutes=4)) -> AlertAcknowledged:
    return AlertAcknowledged(alert_id=alert_id, patient_id=patient_id, clinic_id=clinic_id, by=by, via="web",
                             acknowledged_at=at, occurred_at=at)


def resolved(alert_id: str = "a1", patient_id: str = "p1", clinic_id: str = "rocklin", by: str = "lee",
             at: datetime = T0 + timedelta(minutes=30), note: str | None = "called, sent to ER") -> AlertResolved:
    return AlertResolved(alert_id=alert_id, patient_id=patient_id, clinic_id=clinic_id, by=by, via="web",
                         outcome="advised_emergency_care", note=note, resolved_at=at, occurred_at=at)


def escalated(alert_id: str = "a1", patient_id: str = "p1", clinic_id: str = "rocklin", level: int = 2,
              at: datetime = T0 + timedelta(minutes=15)) -> AlertEscalated:
    return AlertEscalated(alert_id=alert_id, patient_id=patient_id, clinic_id=clinic_id, level=level,
                          notified=["kim", "ray"], escalated_at=at, occurred_at=at)


def headache_checkin(days: int, cycle: int, patient_id: str = "p1", clinic_id: str = "rocklin",
                     at: datetime = T0) -> CheckinCompleted:
    return CheckinCompleted(checkin_id=f"{patient_id}-hc{cycle}-{days}", patient_id=patient_id, clinic_id=clinic_id,
                            kind="headache_frequency", treatment_id=f"{patient_id}-t{cycle}", cycle=cycle,
                            answers={"headache_days": days, "medication_days": 3}, raw_replies=[str(days), "3"],
                            occurred_at=at)


def side_effects_checkin(patient_id: str = "p1", clinic_id: str = "rocklin", cycle: int = 1, at: datetime = T0) -> CheckinCompleted:
    return CheckinCompleted(checkin_id=f"{patient_id}-se{cycle}", patient_id=patient_id, clinic_id=clinic_id,
                            kind="side_effects", treatment_id=f"{patient_id}-t{cycle}", cycle=cycle,
                            answers={"red_flags": False, "effects": [{"code": 1, "reason": "neck_pain", "severity": "mild"}]},
                            raw_replies=["no", "1m"], occurred_at=at)


def checkin_asked(patient_id: str = "p1", clinic_id: str = "rocklin", day: int = 2, at: datetime = T0) -> CheckinDue:
    return CheckinDue(patient_id=patient_id, clinic_id=clinic_id, treatment_id=f"{patient_id}-t1", cycle=1, due_at=at,
                      day=day, kind="side_effects", checkin_id=f"{patient_id}-se1", occurred_at=at)


def sms_sent(patient_id: str = "p1", clinic_id: str = "rocklin", kind: str = "checkin_q1", at: datetime = T0) -> MessageSent:
    return MessageSent(message_key=f"{patient_id}-{kind}", patient_id=patient_id, clinic_id=clinic_id, channel="sms",
                       kind=kind, occurred_at=at)


def sms_failed(patient_id: str = "p1", clinic_id: str = "rocklin", at: datetime = T0) -> MessageFailed:
    return MessageFailed(message_key=f"{patient_id}-failed", patient_id=patient_id, clinic_id=clinic_id, channel="sms",
                         kind="checkin_q1", error="number unreachable", error_code="30003", occurred_at=at)


def opted_out(patient_id: str = "p1", clinic_id: str = "rocklin", at: datetime = T0) -> ConsentChanged:
    return ConsentChanged(patient_id=patient_id, clinic_id=clinic_id, channel="sms", granted=False,
                          source="sms_keyword", occurred_at=at)
