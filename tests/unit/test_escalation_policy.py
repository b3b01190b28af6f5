"""The escalation policy (services/scheduler/escalation.py): levels, deadlines, repeats and races."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from shared.alert_state import AlertState
from shared.clinics import Clinic, Clinician, EscalationPolicy
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert
from services.scheduler import escalation
from services.scheduler.escalation import Step, Tracked, after_working_hours, due_step, escalated, next_step

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
LA = "America/Los_Angeles"


def clinic(**overrides: object) -> Clinic:
    fields = dict(id="rocklin", name="Rocklin Headache Clinic", phone="+19165550100", timezone=LA,
                  clinicians=[Clinician(name="Dr. Lee", email="lee@example.org", on_call=True),
                              Clinician(name="Dr. Patel", email="patel@example.org")],
                  escalation_phone="+19165550199")
    return Clinic.model_validate(fields | overrides)


def raised(severity: str = "urgent", at: datetime = T0, alert_id: str = "a1") -> ClinicianAlert:
    return ClinicianAlert(alert_id=alert_id, patient_id="p1", clinic_id="rocklin", severity=severity,
                          reasons=["dysphagia"], summary="trouble swallowing", raised_at=at)


def state(severity: str = "urgent", at: datetime = T0) -> AlertState:
    return AlertState.raised(raised(severity, at))


def ack(at: datetime, by: str = "lee", clinic_id: str = "rocklin") -> AlertAcknowledged:
    return AlertAcknowledged(alert_id="a1", patient_id="p1", clinic_id=clinic_id, by=by, via="sms", acknowledged_at=at)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def paged(current: AlertState, step: Step) -> AlertState:
    return current.apply(escalated(current, clinic(), step, step.due_at))


def test_an_unacknowledged_urgent_alert_pages_every_clinician_at_level_2_after_15_minutes() -> None:
    assert due_step(state(), clinic(), minutes(14.99)) is None
    step = due_step(state(), clinic(), minutes(15))
    assert step == Step(2, 0, minutes(15))
    page = escalated(state(), clinic(), step, minutes(15))
    assert (page.level, page.repeat, page.notified, page.reason) == (2, 0, ["lee", "patel"], "ack_timeout")
    assert page.escalated_at == minutes(15) and page.alert_id == "a1" and page.clinic_id == "rocklin"


def test_the_default_urgent_policy_is_level_2_then_level_3_every_30_minutes_four_more_times_then_silence() -> None:
    current, sent = state(), []
    while (step := next_step(current, clinic())) is not None:
        assert due_step(current, clinic(), step.due_at) == step
        sent.append((step.level, step.repeat, (step.due_at - T0) / timedelta(minutes=1)))
        current = paged(current, step)
    assert sent == [(2, 0, 15), (3, 0, 45), (3, 1, 75), (3, 2, 105), (3, 3, 135), (3, 4, 165)]
    assert due_step(current, clinic(), minutes(10_000)) is None


def test_a_clinic_sets_its_own_deadlines_and_number_of_repeats() -> None:
    custom = clinic(escalation=EscalationPolicy(urgent_ack_minutes=5, repeat_minutes=10, max_repeats=1))
    steps = escalation.policy_steps(state(), custom)
    assert [(s.level, s.repeat, s.due_at) for s in steps] == [(2, 0, minutes(5)), (3, 0, minutes(15)), (3, 1, minutes(25))]


def test_an_acknowledgement_at_the_same_instant_as_the_deadline_wins_and_nobody_is_paged() -> None:
    acknowledged = state().apply(ack(minutes(15)))
    assert due_step(acknowledged, clinic(), minutes(15)) is None
    assert next_step(acknowledged, clinic()) is None


def test_an_acknowledgement_after_a_page_cancels_the_pages_still_to_come() -> None:
    after_level_2 = paged(state(), Step(2, 0, minutes(15)))
    assert next_step(after_level_2, clinic()) == Step(3, 0, minutes(45))
    acknowledged = after_level_2.apply(ack(minutes(20)))
    assert due_step(acknowledged, clinic(), minutes(200)) is None


def test_a_resolution_without_acknowledgement_cancels_the_pages_too() -> None:
    done = state().apply(AlertResolved(alert_id="a1", patient_id="p1", clinic_id="rocklin", by="lee", via="api",
                                       outcome="no_action_needed", resolved_at=minutes(3)))
    assert due_step(done, clinic(), minutes(60)) is None


def test_deadlines_missed_while_no_worker_ran_page_once_at_the_loudest_level_then_keep_the_schedule() -> None:
    step = due_step(state(), clinic(), minutes(80))
    assert step == Step(3, 1, minutes(75))
    caught_up = paged(state(), step)
    assert due_step(caught_up, clinic(), minutes(80)) is None
    assert next_step(caught_up, clinic()) == Step(3, 2, minutes(105))


def test_the_same_step_of_the_same_alert_always_has_the_same_event_id() -> None:
    first = escalated(state(), clinic(), Step(2, 0, minutes(15)), minutes(15))
    refired = escalated(state(), clinic(), Step(2, 0, minutes(15)), minutes(16))
    louder = escalated(state(), clinic(), Step(3, 0, minutes(45)), minutes(45))
    assert first.event_id == refired.event_id != louder.event_id
    assert escalated(AlertState.raised(raised(alert_id="a2")), clinic(), Step(2, 0, minutes(15)), minutes(15)).event_id != first.event_id


def test_routine_and_review_alerts_never_escalate() -> None:
    for severity in ("routine", "review"):
        assert next_step(state(severity), clinic()) is None
        assert due_step(state(severity), clinic(), minutes(100_000)) is None


def test_a_high_alert_raised_in_working_hours_pages_level_2_once_after_four_working_hours() -> None:
    morning = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc).replace(hour=17)  # 09:00 in Rocklin (PST)
    high = state("high", morning)
    step = next_step(high, clinic())
    assert step == Step(2, 0, morning + timedelta(hours=4))
    assert next_step(paged(high, step), clinic()) is None


def test_working_hours_skip_the_night_so_an_evening_high_alert_pages_the_next_morning() -> None:
    evening = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)  # 19:00 on the 25th in Rocklin
    # 1.5 h until the window closes at 20:30, 2.5 h from 08:00 the next day: 10:30 PST
    assert next_step(state("high", evening), clinic()).due_at == datetime(2026, 11, 26, 18, 30, tzinfo=timezone.utc)
    night = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)  # 02:00 in Rocklin
    assert next_step(state("high", night), clinic()).due_at == datetime(2026, 11, 26, 20, 0, tzinfo=timezone.utc)


def test_working_hours_across_the_spring_dst_change_count_local_clock_hours() -> None:
    saturday_evening = datetime(2026, 3, 8, 3, 0, tzinfo=timezone.utc)  # 19:00 PST, Saturday 7 March
    # clocks go forward on Sunday 8 March: 10:30 PDT is 17:30 UTC (18:30 without the change)
    due = after_working_hours(saturday_evening, 4, LA, time(8, 0), time(20, 30))
    assert due == datetime(2026, 3, 8, 17, 30, tzinfo=timezone.utc)


def test_working_hours_across_the_autumn_dst_change_count_local_clock_hours() -> None:
    friday_evening = datetime(2026, 10, 31, 2, 0, tzinfo=timezone.utc)  # 19:00 PDT, Friday 30 October
    # 1.5 h, 12.5 h on the 31st, 1 h after 08:00 on Sunday 1 November, when clocks went back: 09:00 PST
    assert after_working_hours(friday_evening, 15, LA, time(8, 0), time(20, 30)) == \
        datetime(2026, 11, 1, 17, 0, tzinfo=timezone.utc)


def test_the_clinics_send_window_is_the_working_day() -> None:
    short_days = clinic(rules={"send_window_start": "09:00", "send_window_end": "11:00", "send_time": "10:00"})
    monday_9am = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    # two hours a day: four working hours end at 11:00 the next day
    assert next_step(state("high", monday_9am), short_days).due_at == datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)


def test_an_acknowledgement_by_someone_who_is_no_clinician_of_the_clinic_changes_nothing() -> None:
    tracked = Tracked().raised(raised())
    assert tracked.acted(ack(minutes(2), by="mallory"), clinic()) == tracked
    assert tracked.acted(ack(minutes(2), clinic_id="sevilla"), clinic()) == tracked
    assert tracked.acted(ack(minutes(2)), clinic()).state.status == "acknowledged"


def test_an_action_that_arrives_before_its_alert_is_applied_when_the_alert_arrives() -> None:
    early = Tracked().acted(ack(minutes(2)), clinic())
    assert early.state is None
    arrived = early.raised(raised())
    assert arrived.state.status == "acknowledged" and arrived.state.acknowledged_by == "lee"
    assert arrived.raised(raised(severity="routine")) == arrived  # a redelivered alert changes nothing


def test_a_tracked_alert_survives_the_table_round_trip() -> None:
    tracked = Tracked().raised(raised())
    tracked = tracked.acted(AlertEscalated(alert_id="a1", patient_id="p1", clinic_id="rocklin", level=2,
                                           notified=["lee", "patel"], escalated_at=minutes(15)), clinic())
    tracked = tracked.acted(ack(minutes(20)), clinic())
    assert escalation.load(escalation.dump(tracked)) == tracked
    early = ack(minutes(1))
    assert escalation.load(escalation.dump(Tracked().acted(early, clinic()))).early == (early,)
    assert escalation.load(None) == Tracked()
