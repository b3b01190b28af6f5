"""The scheduler's rules, without a broker: the cycle plan, local time, changes in the record."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from shared.clinics import ClinicRules
from shared.codec import DecodeError, decode, encode
from shared.topics import Topics
from shared.events import (
    CheckinDue,
    CheckinExpired,
    ClinicianAlert,
    ConsentChanged,
    CycleOverdue,
    PatientDischarged,
    PatientEnrolled,
    PatientUpdated,
    ReminderDue,
    TimerSkipped,
    TreatmentRecorded,
)
from services.scheduler import domain
from services.scheduler.domain import InvalidTreatment, PatientSchedule

LA = "America/Los_Angeles"
RULES = ClinicRules()
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def patient(tz: str = LA, event=PatientEnrolled, **extra) -> PatientEnrolled:
    fields = dict(patient_id="p-1", clinic_id="rocklin", first_name="Ana", phone="+19165550123",
                  timezone=tz, sms_consent=True) | extra
    return event(**fields)


def treatment(on: date, treatment_id: str = "t-1", **extra) -> TreatmentRecorded:
    return TreatmentRecorded(treatment_id=treatment_id, patient_id="p-1", clinic_id="rocklin",
                             administered_on=on, **extra)


def enrolled(tz: str = LA, now: datetime = at("2026-01-05T18:00:00+00:00")) -> PatientSchedule:
    return domain.on_patient(PatientSchedule(patient_id="p-1"), patient(tz), RULES, now).schedule


def treated(on: date, now: datetime, tz: str = LA, rules: ClinicRules = RULES) -> domain.Outcome:
    return domain.on_treatment(enrolled(tz), treatment(on), rules, now)


def moments(schedule: PatientSchedule) -> list[tuple[int, str, str | None]]:
    return sorted((t.day, t.event_type, t.kind) for t in schedule.pending)


def fire_all(schedule: PatientSchedule, until: datetime, rules: ClinicRules = RULES, step=timedelta(hours=1)):
    """Tick hourly until ``until`` as the worker would, collecting what fires."""
    emitted, now = [], min(t.fire_at for t in schedule.pending)
    while now <= until and schedule.pending:
        outcome = domain.fire_due(schedule, rules, now)
        schedule, emitted = outcome.schedule, emitted + outcome.emit
        now += step
    return schedule, emitted


# --- the cycle plan ----------------------------------------------------------------


def test_a_treatment_plans_checkins_on_days_2_7_14_28_56_77_bookings_70_81_and_overdue_98():
    outcome = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00"))
    assert moments(outcome.schedule) == sorted([
        (2, "checkin.due", "side_effects"), (7, "checkin.due", "side_effects"), (14, "checkin.due", "side_effects"),
        (28, "checkin.due", "headache_frequency"), (56, "checkin.due", "headache_frequency"),
        (77, "checkin.due", "headache_frequency"), (70, "reminder.due", "booking"), (81, "reminder.due", "booking"),
        (98, "cycle.overdue", None),
    ])
    assert outcome.emit == [] and outcome.schedule.cycle == 1


def test_each_moment_is_ten_in_the_morning_in_the_patients_timezone():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    day2 = next(t for t in schedule.pending if t.day == 2)
    assert day2.fire_at == at("2026-01-07T18:00:00+00:00")  # 10:00 PST


def test_clinic_overrides_change_the_days_and_the_send_time():
    rules = ClinicRules(side_effect_checkin_days=(3,), headache_checkin_days=(), booking_reminder_days=(60,),
                        overdue_day=90, send_time=time(9, 15))
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00"), rules=rules).schedule
    assert moments(schedule) == [(3, "checkin.due", "side_effects"), (60, "reminder.due", "booking"),
                                 (90, "cycle.overdue", None)]
    assert schedule.pending[0].fire_at == at("2026-01-08T17:15:00+00:00")


def test_patients_treated_the_same_day_in_another_timezone_or_under_other_rules_get_their_own_moments():
    """The cycle's calendar is shared by patients treated on the same day, in the same zone,
    under the same rules, and only by them."""
    now = at("2026-01-05T23:00:00+00:00")
    def day2(tz: str = LA, on: date = date(2026, 1, 5), rules: ClinicRules = RULES):
        return next(t.fire_at for t in treated(on, now, tz=tz, rules=rules).schedule.pending if t.day == 2)

    assert day2() == at("2026-01-07T18:00:00+00:00")
    assert day2("America/New_York") == at("2026-01-07T15:00:00+00:00")
    assert day2(on=date(2026, 1, 4)) == at("2026-01-06T18:00:00+00:00")
    assert day2(rules=ClinicRules(send_time=time(9, 0))) == at("2026-01-07T17:00:00+00:00")
    assert day2() is day2()  # the same calendar, not placed again


def test_a_ten_week_interval_moves_booking_and_overdue_two_weeks_earlier():
    outcome = domain.on_treatment(enrolled(), treatment(date(2026, 1, 5), interval_weeks=10), RULES,
                                  at("2026-01-05T20:00:00+00:00"))
    days = {t.day for t in outcome.schedule.pending if t.event_type in ("reminder.due", "cycle.overdue")}
    assert days == {56, 67, 84}


def test_timer_ids_are_deterministic_so_a_replayed_treatment_fires_the_same_event_ids():
    first = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    again = treated(date(2026, 1, 5), at("2026-01-06T20:00:00+00:00")).schedule
    assert [t.timer_id for t in first.pending] == [t.timer_id for t in again.pending]
    assert len({t.timer_id for t in first.pending}) == len(first.pending)


def test_a_whole_cycle_fires_each_moment_once_with_patient_treatment_cycle_kind_and_due_time():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    schedule, emitted = fire_all(schedule, at("2026-04-20T00:00:00+00:00"))
    due = [e for e in emitted if isinstance(e, (CheckinDue, ReminderDue, CycleOverdue))]
    assert sorted(e.day for e in due) == [2, 7, 14, 28, 56, 70, 77, 81, 98]
    assert len({e.event_id for e in emitted}) == len(emitted)
    assert all(e.patient_id == "p-1" and e.treatment_id == "t-1" and e.cycle == 1 and e.clinic_id == "rocklin"
               for e in due)
    assert all(e.due_at <= e.occurred_at for e in due)
    assert {e.kind for e in due if isinstance(e, CheckinDue)} == {"side_effects", "headache_frequency"}
    assert schedule.pending == []


def test_cycle_overdue_also_raises_a_routine_clinician_alert_with_reason_cycle_overdue():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    _, emitted = fire_all(schedule, at("2026-04-20T00:00:00+00:00"))
    [alert] = [e for e in emitted if isinstance(e, ClinicianAlert)]
    assert alert.severity == "routine" and alert.reasons == ["cycle_overdue"] and alert.clinic_id == "rocklin"
    assert alert.alert_id == domain.fire_due(schedule, RULES, at("2026-04-20T00:00:00+00:00")).emit[-1].alert_id


def test_a_fired_checkin_leaves_an_expiry_timer_48_hours_later():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    outcome = domain.fire_due(schedule, RULES, at("2026-01-07T18:00:00+00:00"))
    [due] = outcome.emit
    expiry = next(t for t in outcome.schedule.pending if t.event_type == "checkin.expired")
    assert isinstance(due, CheckinDue)
    assert expiry.checkin_id == due.checkin_id and expiry.fire_at == at("2026-01-09T18:00:00+00:00")
    later = domain.fire_due(outcome.schedule, RULES, at("2026-01-09T18:00:00+00:00"))
    assert [type(e) for e in later.emit] == [CheckinExpired]


def test_a_checkin_fired_late_on_catch_up_still_gets_48_hours_to_be_answered():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    late = at("2026-01-10T18:00:00+00:00")  # the worker was down from day 2 to day 5
    outcome = domain.fire_due(schedule, RULES, late)
    expiry = next(t for t in outcome.schedule.pending if t.event_type == "checkin.expired")
    assert expiry.fire_at == late + timedelta(hours=48)


def test_firing_again_at_the_same_moment_emits_nothing_more():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    once = domain.fire_due(schedule, RULES, at("2026-01-07T18:00:00+00:00"))
    assert domain.fire_due(once.schedule, RULES, at("2026-01-07T18:00:00+00:00")).emit == []


# --- local time, quiet hours, daylight saving --------------------------------------


def test_a_time_inside_the_spring_forward_gap_moves_forward_by_the_gap():
    # 2026-03-08 02:30 does not exist in Los Angeles; 03:30 PDT does (10:30 UTC)
    assert domain.local_moment(date(2026, 3, 8), time(2, 30), LA) == at("2026-03-08T10:30:00+00:00")


def test_an_ambiguous_fall_back_time_takes_its_first_occurrence():
    # 2026-11-01 01:30 happens twice in Los Angeles; the first is PDT (08:30 UTC)
    assert domain.local_moment(date(2026, 11, 1), time(1, 30), LA) == at("2026-11-01T08:30:00+00:00")


def test_moments_after_spring_forward_stay_at_ten_local_time():
    # treated 2026-03-06 (PST); day 2 is the spring-forward day itself, day 7 is PDT
    schedule = treated(date(2026, 3, 6), at("2026-03-06T20:00:00+00:00")).schedule
    fire = {t.day: t.fire_at for t in schedule.pending}
    assert fire[2] == at("2026-03-08T17:00:00+00:00")  # 10:00 PDT
    assert fire[7] == at("2026-03-13T17:00:00+00:00")


def test_moments_after_fall_back_stay_at_ten_local_time():
    # treated 2026-10-30 (PDT); day 2 is the fall-back day, 10:00 PST = 18:00 UTC
    schedule = treated(date(2026, 10, 30), at("2026-10-30T20:00:00+00:00")).schedule
    fire = {t.day: t.fire_at for t in schedule.pending}
    assert fire[2] == at("2026-11-01T18:00:00+00:00")
    assert fire[14] == at("2026-11-13T18:00:00+00:00")


def test_europe_changes_on_its_own_date():
    # Madrid springs forward on 2026-03-29: 10:00 CET before, 10:00 CEST after
    schedule = treated(date(2026, 3, 27), at("2026-03-27T12:00:00+00:00"), tz="Europe/Madrid").schedule
    fire = {t.day: t.fire_at for t in schedule.pending}
    assert fire[2] == at("2026-03-29T08:00:00+00:00")
    assert fire[7] == at("2026-04-03T08:00:00+00:00")


@pytest.mark.parametrize(
    "moment, expected",
    [
        ("2026-03-10T17:00:00+00:00", "2026-03-10T17:00:00+00:00"),  # 10:00 PDT: inside
        ("2026-03-10T15:00:00+00:00", "2026-03-10T15:00:00+00:00"),  # 08:00 PDT: the first allowed minute
        ("2026-03-10T14:59:00+00:00", "2026-03-10T15:00:00+00:00"),  # 07:59: wait a minute
        ("2026-03-11T03:30:00+00:00", "2026-03-11T03:30:00+00:00"),  # 20:30 PDT: the last allowed minute
        ("2026-03-11T03:31:00+00:00", "2026-03-11T15:00:00+00:00"),  # 20:31: tomorrow 08:00
        ("2026-03-08T09:00:00+00:00", "2026-03-08T15:00:00+00:00"),  # 01:00 PST, before the jump: 08:00 PDT
        ("2026-11-01T09:30:00+00:00", "2026-11-01T16:00:00+00:00"),  # 01:30 PST, after fall-back: 08:00 PST
    ],
)
def test_a_moment_outside_quiet_hours_moves_to_the_next_allowed_moment(moment, expected):
    assert domain.next_allowed(at(moment), LA, RULES) == at(expected)


def test_a_send_time_outside_a_clinics_window_is_refused():
    with pytest.raises(ValueError):
        ClinicRules(send_time=time(7, 0))


def test_an_early_send_time_in_a_clinic_with_an_early_window_is_kept():
    rules = ClinicRules(send_window_start=time(6, 0), send_time=time(6, 0))
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00"), rules=rules).schedule
    assert next(t for t in schedule.pending if t.day == 2).fire_at == at("2026-01-07T14:00:00+00:00")


def test_a_due_checkin_found_at_night_waits_for_the_morning():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    night = at("2026-01-08T07:00:00+00:00")  # 23:00 PST the day after day 2 (a worker was down)
    outcome = domain.fire_due(schedule, RULES, night)
    assert outcome.emit == []
    day2 = next(t for t in outcome.schedule.pending if t.day == 2)
    assert day2.fire_at == at("2026-01-08T16:00:00+00:00")  # 08:00 PST
    assert [e.day for e in domain.fire_due(outcome.schedule, RULES, day2.fire_at).emit] == [2]


def test_a_cycle_overdue_fires_at_any_hour_because_it_goes_to_the_clinic():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    only_overdue = schedule.model_copy(update={"pending": [t for t in schedule.pending if t.day == 98]})
    night = at("2026-04-14T07:00:00+00:00")  # 00:00 PDT on day 99
    assert [type(e) for e in domain.fire_due(only_overdue, RULES, night).emit] == [CycleOverdue, ClinicianAlert]


# --- changes in the record ----------------------------------------------------------


def test_a_newer_treatment_cancels_pending_moments_and_keeps_checkins_under_way():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    schedule = domain.fire_due(schedule, RULES, at("2026-01-07T18:00:00+00:00")).schedule  # day 2 asked
    newer = domain.on_treatment(schedule, treatment(date(2026, 1, 8), "t-2"), RULES, at("2026-01-08T18:00:00+00:00"))
    old = [t for t in newer.schedule.pending if t.treatment_id == "t-1"]
    assert [t.event_type for t in old] == ["checkin.expired"]
    assert newer.schedule.cycle == 2 and newer.schedule.current_treatment_id == "t-2"
    assert len([t for t in newer.schedule.pending if t.treatment_id == "t-2"]) == 9


def test_recording_the_same_treatment_id_again_changes_nothing():
    outcome = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00"))
    again = domain.on_treatment(outcome.schedule, treatment(date(2026, 1, 5)), RULES, at("2026-01-20T20:00:00+00:00"))
    assert again.schedule == outcome.schedule and again.emit == []
    moved = domain.on_treatment(outcome.schedule, treatment(date(2026, 1, 6)), RULES, at("2026-01-20T20:00:00+00:00"))
    assert moved.schedule == outcome.schedule  # the id is the identity, not the date


def test_an_older_treatment_recorded_late_is_history_not_a_new_cycle():
    outcome = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00"))
    older = domain.on_treatment(outcome.schedule, treatment(date(2025, 10, 6), "t-0"), RULES,
                                at("2026-01-06T20:00:00+00:00"))
    assert older.schedule.pending == outcome.schedule.pending and older.schedule.cycle == 1
    assert "t-0" in older.schedule.treatments


def test_a_treatment_recorded_a_month_late_skips_stale_moments_and_reports_them():
    now = at("2026-02-05T20:00:00+00:00")  # day 31
    outcome = treated(date(2026, 1, 5), now)
    assert [t.day for t in outcome.skipped] == [2, 7, 14, 28]
    assert sorted(t.day for t in outcome.schedule.pending) == [56, 70, 77, 81, 98]
    reports = [e for e in outcome.emit]
    assert all(isinstance(e, TimerSkipped) and e.reason == "stale" for e in reports)
    assert sorted(e.day for e in reports) == [2, 7, 14, 28] and {Topics().of(e) for e in outcome.emit} == {"cyclecare.due"}
    assert domain.fire_due(outcome.schedule, RULES, now).emit == []  # no burst


def test_a_treatment_recorded_the_next_day_still_asks_the_day_2_checkin():
    outcome = treated(date(2026, 1, 5), at("2026-01-06T20:00:00+00:00"))
    assert outcome.skipped == [] and 2 in {t.day for t in outcome.schedule.pending}


def test_a_moment_less_than_a_day_late_still_fires():
    outcome = treated(date(2026, 1, 5), at("2026-01-08T10:00:00+00:00"))  # day 2 was 16 h ago
    assert outcome.skipped == []
    assert [e.day for e in domain.fire_due(outcome.schedule, RULES, at("2026-01-08T17:00:00+00:00")).emit] == [2]


def test_a_treatment_dated_in_the_future_is_invalid():
    with pytest.raises(InvalidTreatment, match="future"):
        treated(date(2026, 1, 7), at("2026-01-05T20:00:00+00:00"))


def test_today_in_the_patients_timezone_is_not_the_future_even_when_utc_is_a_day_behind():
    outcome = treated(date(2026, 1, 6), at("2026-01-05T20:00:00+00:00"), tz="Pacific/Auckland")
    assert outcome.schedule.cycle == 1


def test_an_impossible_date_is_refused_by_the_codec_with_the_field_named():
    raw = encode(treatment(date(2026, 2, 1))).replace(b"2026-02-01", b"2026-02-30")
    with pytest.raises(DecodeError, match="administered_on"):
        decode(raw)


def test_a_new_timezone_reschedules_pending_moments_at_the_same_local_time():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    moved = domain.on_patient(schedule, patient("America/New_York", PatientUpdated), RULES,
                              at("2026-01-05T21:00:00+00:00")).schedule
    fire = {t.day: t.fire_at for t in moved.pending}
    assert fire[2] == at("2026-01-07T15:00:00+00:00")  # 10:00 EST
    assert fire[98] == at("2026-04-13T14:00:00+00:00")  # 10:00 EDT
    assert {t.timer_id for t in moved.pending} == {t.timer_id for t in schedule.pending}


def test_an_update_in_the_same_timezone_leaves_pending_moments_alone():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    same = domain.on_patient(schedule, patient(LA, PatientUpdated, first_name="Anna"), RULES,
                             at("2026-01-05T21:00:00+00:00")).schedule
    assert same.pending == schedule.pending


def test_a_patient_who_opts_out_gets_nothing_more_and_the_skips_are_reported():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    stop = ConsentChanged(patient_id="p-1", clinic_id="rocklin", channel="sms", granted=False, source="sms_keyword")
    schedule = domain.on_consent(schedule, stop).schedule
    schedule, emitted = fire_all(schedule, at("2026-04-20T00:00:00+00:00"))
    assert not [e for e in emitted if isinstance(e, (CheckinDue, ReminderDue))]
    assert sorted(e.day for e in emitted if isinstance(e, TimerSkipped)) == [2, 7, 14, 28, 56, 70, 77, 81]
    assert {e.reason for e in emitted if isinstance(e, TimerSkipped)} == {"no consent"}
    assert [type(e) for e in emitted if not isinstance(e, TimerSkipped)] == [CycleOverdue, ClinicianAlert]


def test_opting_back_in_restores_the_moments_still_ahead():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    stop = ConsentChanged(patient_id="p-1", clinic_id="rocklin", granted=False, source="sms_keyword")
    start = ConsentChanged(patient_id="p-1", clinic_id="rocklin", granted=True, source="sms_keyword")
    schedule = domain.on_consent(domain.on_consent(schedule, stop).schedule, start).schedule
    assert [e.day for e in domain.fire_due(schedule, RULES, at("2026-01-07T18:00:00+00:00")).emit] == [2]


def test_a_discharged_patient_has_every_timer_cancelled_and_later_treatments_ignored():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    gone = domain.on_discharged(schedule, PatientDischarged(patient_id="p-1", clinic_id="rocklin")).schedule
    assert gone.pending == [] and gone.next_fire_at() is None
    later = domain.on_treatment(gone, treatment(date(2026, 1, 10), "t-2"), RULES, at("2026-01-10T20:00:00+00:00"))
    assert later.schedule.pending == []


# --- treatments before their patient ------------------------------------------------


def test_a_treatment_for_an_unknown_patient_is_held_until_the_patient_is_enrolled():
    now = at("2026-01-05T20:00:00+00:00")
    held = domain.on_treatment(PatientSchedule(patient_id="p-1"), treatment(date(2026, 1, 5)), RULES, now).schedule
    assert held.pending == [] and [t.treatment_id for t in held.held] == ["t-1"]
    assert held.next_fire_at() == now + timedelta(days=RULES.hold_unknown_patient_days)
    arrived = domain.on_patient(held, patient(), RULES, now + timedelta(hours=1)).schedule
    assert arrived.held == [] and arrived.cycle == 1 and len(arrived.pending) == 9


def test_a_held_treatment_whose_patient_never_arrives_is_reported_once_after_the_bound_and_kept():
    now = at("2026-01-05T20:00:00+00:00")
    held = domain.on_treatment(PatientSchedule(patient_id="p-1"), treatment(date(2026, 1, 5)), RULES, now).schedule
    assert domain.fire_due(held, RULES, now + timedelta(days=13)).rejected == []
    outcome = domain.fire_due(held, RULES, now + timedelta(days=14))
    [reported] = outcome.rejected
    assert reported.treatment.treatment_id == "t-1" and "not enrolled within 14 days" in reported.reason
    assert outcome.schedule.next_fire_at() is None  # reported once
    assert domain.fire_due(outcome.schedule, RULES, now + timedelta(days=30)).rejected == []
    late = domain.on_patient(outcome.schedule, patient(), RULES, now + timedelta(days=15)).schedule
    assert late.cycle == 1 and late.held == []


def test_a_held_treatment_dated_in_the_future_is_rejected_without_losing_the_enrolment():
    now = at("2026-01-05T20:00:00+00:00")
    held = PatientSchedule(patient_id="p-1", held=[treatment(date(2026, 1, 20))])  # slipped past the check
    outcome = domain.on_patient(held, patient(), RULES, now)
    assert outcome.schedule.enrolled and outcome.schedule.held == []
    assert "future" in outcome.rejected[0].reason


def test_a_treatment_in_the_future_everywhere_is_refused_even_before_enrolment():
    with pytest.raises(InvalidTreatment):
        domain.on_treatment(PatientSchedule(patient_id="p-1"), treatment(date(2026, 1, 7)), RULES,
                            at("2026-01-05T20:00:00+00:00"))


def test_the_stored_form_gives_the_same_next_moment_as_the_model():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T20:00:00+00:00")).schedule
    assert domain.stored_summary(schedule.model_dump(mode="json")).next == schedule.next_fire_at()
    held = PatientSchedule(patient_id="p-2", held=[treatment(date(2026, 1, 5))], held_until=at("2026-01-19T20:00:00+00:00"))
    assert domain.stored_summary(held.model_dump(mode="json")).next == held.next_fire_at()
    assert domain.stored_summary(PatientSchedule(patient_id="p-3").model_dump(mode="json")).next is None
