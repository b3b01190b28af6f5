"""The scheduler's stored form: what the table holds loads back to the same schedule, values
written by older schedulers (version 2, and before the form was versioned) still load, and a
form from the future is refused with a clear error rather than misread."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from shared.events import ClinicianAlert
from shared.failures import is_poison
from services.scheduler import domain
from services.scheduler.domain import PatientSchedule, Timer
from tests.unit.test_scheduler_domain import RULES, at, enrolled, fire_all, treated, treatment


def through_the_table(schedule: PatientSchedule) -> PatientSchedule:
    """What a later batch loads: the stored form, bytes as the table and its changelog hold them."""
    return domain.from_stored(domain.to_stored(schedule))


def a_cycle() -> PatientSchedule:
    return treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule


def as_json(stored: bytes) -> dict:
    return json.loads(stored)


def version_2(schedule: PatientSchedule, partition: int | None = None) -> dict:
    """What a scheduler of stored version 2 kept (a JSON object, timers as arrays)."""
    stored = json.loads(schedule.model_dump_json())
    stored["pending"] = [[timer[name] for name in domain.STORED_TIMER_FIELDS] for timer in stored["pending"]]
    following = schedule.next_fire_at()
    return stored | {"v": 2, "next": following.isoformat() if following else None, "timers": schedule.timer_count,
                     "p": partition}


def test_a_planned_cycle_loads_back_equal_with_aware_datetimes_and_dates():
    schedule = a_cycle()
    loaded = through_the_table(schedule)
    assert loaded == schedule
    assert all(t.fire_at.tzinfo is not None for t in loaded.pending)
    assert loaded.treatments == {"t-1": date(2026, 1, 5)}


def test_a_schedule_with_fired_checkins_and_expiries_pending_loads_back_equal():
    fired, _ = fire_all(a_cycle(), at("2026-01-13T00:00:00+00:00"))
    assert any(t.event_type == "checkin.expired" for t in fired.pending)
    assert through_the_table(fired) == fired


def test_a_held_treatment_of_a_patient_not_enrolled_yet_loads_back_with_its_bound():
    now = at("2026-01-05T18:00:00+00:00")
    held = domain.on_treatment(PatientSchedule(patient_id="p-1"), treatment(date(2026, 1, 5)), RULES, now).schedule
    loaded = through_the_table(held)
    assert loaded == held and loaded.held_until == now + timedelta(days=RULES.hold_unknown_patient_days)


def test_a_loaded_schedule_fires_the_same_events_as_the_one_in_memory():
    schedule = a_cycle()
    until = at("2026-04-20T00:00:00+00:00")
    def fired(events: list) -> list:  # an alert's own event_id and occurred_at are fresh each time
        return [e.alert_id if isinstance(e, ClinicianAlert) else e for e in events]

    assert fired(fire_all(through_the_table(schedule), until)[1]) == fired(fire_all(schedule, until)[1])


def test_the_stored_form_read_back_from_a_changelog_as_parsed_json_loads_too():
    """How a reader of the changelog (or a test watching it) sees a value: a JSON object."""
    schedule = a_cycle()
    assert domain.from_stored(as_json(domain.to_stored(schedule, 3))) == schedule


def test_a_form_this_scheduler_does_not_know_is_refused_rather_than_misread():
    future = as_json(domain.to_stored(enrolled())) | {"v": domain.STORED_VERSION + 1}
    for stored in (future, json.dumps(future).encode()):
        with pytest.raises(domain.UnknownStoredForm, match=f"patient 'p-1' is stored in form {domain.STORED_VERSION + 1}"):
            domain.from_stored(stored)


def test_a_timer_stored_with_a_field_missing_is_an_error_not_a_shifted_read():
    stored = as_json(domain.to_stored(a_cycle()))
    stored["pending"][0] = stored["pending"][0][:-1]
    for damaged in (stored, json.dumps(stored).encode()):
        with pytest.raises(domain.UnknownStoredForm, match="cannot be read"):
            domain.from_stored(damaged)


def test_a_stored_value_that_is_not_a_json_object_is_an_unknown_form():
    for damaged in (b"\x00garbage", b"[1, 2]"):
        with pytest.raises(domain.UnknownStoredForm):
            domain.from_stored(damaged)


def test_a_stored_schedule_that_cannot_be_read_is_retried_not_dead_lettered():
    """The fault is in the scheduler's own state, not in the record being handled."""
    try:
        domain.from_stored(b'{"v": 99, "patient_id": "p-1"}')
    except domain.UnknownStoredForm as exc:
        assert not is_poison(exc)
    else:
        raise AssertionError("an unknown form loaded")


def test_the_frozen_timer_fields_are_every_field_of_a_timer_in_order():
    """A new Timer field, or a new order, needs a new stored version (and this list for it)."""
    assert Timer.__struct_fields__ == domain.STORED_TIMER_FIELDS


def test_the_stored_schedule_has_every_field_of_a_schedule_and_what_the_timer_index_reads():
    """A new PatientSchedule field needs its place in the stored form."""
    assert set(domain.StoredSchedule.__struct_fields__) == set(PatientSchedule.model_fields) | {"next", "timers", "p"}


def test_a_value_stored_before_the_form_was_versioned_loads_with_its_next_moment_and_timers():
    schedule = a_cycle()
    unversioned = json.loads(schedule.model_dump_json())  # what the table held before issue 16
    assert "v" not in unversioned and isinstance(unversioned["pending"][0], dict)
    for stored in (unversioned, schedule.model_dump_json().encode()):  # parsed by Faust, or raw from the changelog
        assert domain.from_stored(stored) == schedule
        assert domain.stored_summary(stored).next == schedule.next_fire_at()
        assert domain.stored_summary(stored).timers == 9
        assert domain.stored_summary(stored).p is None


def test_a_value_of_stored_version_2_loads_with_its_next_moment_timers_and_partition():
    fired, _ = fire_all(a_cycle(), at("2026-01-13T00:00:00+00:00"))
    old = version_2(fired, 5)
    for stored in (old, json.dumps(old).encode()):  # as Faust kept it, or raw from the changelog
        assert domain.from_stored(stored) == fired
        assert domain.stored_summary(stored).next == fired.next_fire_at()
        assert domain.stored_summary(stored).timers == fired.timer_count
        assert domain.stored_summary(stored).p == 5


def test_the_stored_form_is_smaller_than_the_named_fields_it_replaces():
    schedule = a_cycle()
    assert len(domain.to_stored(schedule)) < 0.75 * len(schedule.model_dump_json())


def test_the_stored_form_names_its_version_and_keeps_the_fields_operators_read():
    stored = domain.to_stored(treated(date(2026, 1, 5), datetime(2026, 1, 5, 18, tzinfo=timezone.utc)).schedule)
    readable = as_json(stored)
    assert readable["v"] == domain.STORED_VERSION
    assert readable["patient_id"] == "p-1" and readable["current_treatment_id"] == "t-1"
    fire_at = domain.STORED_TIMER_FIELDS.index("fire_at")
    assert domain.stored_summary(stored).next == min(datetime.fromisoformat(t[fire_at]) for t in readable["pending"])
    assert domain.stored_summary(stored).timers == 9


def test_a_discharged_patient_is_stored_with_no_next_moment():
    discharged = domain.on_discharged(a_cycle(), None).schedule  # type: ignore[arg-type]
    stored = domain.to_stored(discharged)
    assert domain.stored_summary(stored).next is None and domain.stored_summary(stored).timers == 0


def test_the_stored_form_keeps_the_partition_it_was_written_in_and_an_old_value_has_none():
    schedule = a_cycle()
    assert domain.stored_summary(domain.to_stored(schedule, 5)).p == 5
    assert domain.stored_summary(json.loads(schedule.model_dump_json())).p is None


# --- any schedule ------------------------------------------------------------------

ids = st.text(min_size=1, max_size=40)
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]))
timers = st.builds(Timer, timer_id=ids, event_type=st.sampled_from(["checkin.due", "reminder.due", "cycle.overdue", "checkin.expired"]),
                   kind=st.none() | st.sampled_from(["side_effects", "headache_frequency", "booking"]), day=st.integers(0, 400),
                   fire_at=moments, treatment_id=ids, cycle=st.integers(0, 10_000), checkin_id=st.none() | ids)
held = st.builds(lambda on, tid: treatment(on, tid), st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.text(min_size=1, max_size=20))
schedules = st.builds(
    PatientSchedule, patient_id=ids, clinic_id=st.none() | ids, timezone=st.none() | st.sampled_from(["UTC", "America/Los_Angeles"]),
    enrolled=st.booleans(), discharged=st.booleans(), sms_consent=st.booleans(), email_consent=st.booleans(),
    treatments=st.dictionaries(ids, st.dates(), max_size=4), current_treatment_id=st.none() | ids, cycle=st.integers(0, 10_000),
    pending=st.lists(timers, max_size=12), held=st.lists(held, max_size=3), held_until=st.none() | moments,
)


@settings(max_examples=200, deadline=None)
@given(schedules, st.none() | st.integers(0, 63))
def test_any_schedule_loads_back_equal_and_its_summary_agrees_with_it(schedule, partition):
    stored = domain.to_stored(schedule, partition)
    assert domain.from_stored(stored) == schedule
    assert domain.from_stored(json.loads(stored)) == schedule
    summary = domain.stored_summary(stored)
    assert (summary.next, summary.timers, summary.p) == (schedule.next_fire_at(), schedule.timer_count, partition)
