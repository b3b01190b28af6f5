"""The scheduler's stored form: what the table holds loads back to the same schedule, a value
written before the form was versioned still loads, and a form from the future is refused
with a clear error rather than misread."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.events import ClinicianAlert
from shared.failures import is_poison
from services.scheduler import domain
from services.scheduler.domain import PatientSchedule
from tests.unit.test_scheduler_domain import RULES, at, enrolled, fire_all, treated, treatment


def through_the_table(schedule: PatientSchedule) -> PatientSchedule:
    """What a later batch loads: the stored form, as JSON bytes on the changelog and back."""
    return domain.from_stored(json.loads(json.dumps(domain.to_stored(schedule))))


def test_a_planned_cycle_loads_back_equal_with_aware_datetimes_and_dates():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    loaded = through_the_table(schedule)
    assert loaded == schedule
    assert all(t.fire_at.tzinfo is not None for t in loaded.pending)
    assert loaded.treatments == {"t-1": date(2026, 1, 5)}


def test_a_schedule_with_fired_checkins_and_expiries_pending_loads_back_equal():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    fired, _ = fire_all(schedule, at("2026-01-13T00:00:00+00:00"))
    assert any(t.event_type == "checkin.expired" for t in fired.pending)
    assert through_the_table(fired) == fired


def test_a_held_treatment_of_a_patient_not_enrolled_yet_loads_back_with_its_bound():
    now = at("2026-01-05T18:00:00+00:00")
    held = domain.on_treatment(PatientSchedule(patient_id="p-1"), treatment(date(2026, 1, 5)), RULES, now).schedule
    loaded = through_the_table(held)
    assert loaded == held and loaded.held_until == now + timedelta(days=RULES.hold_unknown_patient_days)


def test_a_loaded_schedule_fires_the_same_events_as_the_one_in_memory():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    until = at("2026-04-20T00:00:00+00:00")
    def fired(events: list) -> list:  # an alert's own event_id and occurred_at are fresh each time
        return [e.alert_id if isinstance(e, ClinicianAlert) else e for e in events]

    assert fired(fire_all(through_the_table(schedule), until)[1]) == fired(fire_all(schedule, until)[1])


def test_a_form_this_scheduler_does_not_know_is_refused_rather_than_misread():
    stored = domain.to_stored(enrolled()) | {"v": domain.STORED_VERSION + 1}
    with pytest.raises(domain.UnknownStoredForm, match=f"patient 'p-1' is stored in form {domain.STORED_VERSION + 1}"):
        domain.from_stored(stored)


def test_a_timer_stored_with_a_field_missing_is_an_error_not_a_shifted_read():
    stored = json.loads(json.dumps(domain.to_stored(treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule)))
    stored["pending"][0] = stored["pending"][0][:-1]
    with pytest.raises(domain.UnknownStoredForm, match="cannot be read"):
        domain.from_stored(stored)


def test_a_stored_schedule_that_cannot_be_read_is_retried_not_dead_lettered():
    """The fault is in the scheduler's own state, not in the record being handled."""
    try:
        domain.from_stored({"v": 99, "patient_id": "p-1"})
    except domain.UnknownStoredForm as exc:
        assert not is_poison(exc)
    else:
        raise AssertionError("an unknown form loaded")


def test_the_frozen_timer_fields_are_every_field_of_a_timer():
    """A new Timer field needs a new stored version (and this list for it)."""
    assert set(domain.STORED_TIMER_FIELDS) == set(domain.Timer.model_fields)


def test_a_value_stored_before_the_form_was_versioned_loads_with_its_next_moment_and_timers():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    unversioned = json.loads(schedule.model_dump_json())  # what the table held before issue 16
    assert "v" not in unversioned
    assert domain.from_stored(unversioned) == schedule
    assert domain.stored_next_fire_at(unversioned) == schedule.next_fire_at()
    assert domain.stored_timers(unversioned) == 9


def test_the_stored_form_is_smaller_than_the_named_fields_it_replaces():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    assert len(json.dumps(domain.to_stored(schedule))) < 0.75 * len(schedule.model_dump_json())


def test_the_stored_form_names_its_version_and_keeps_the_fields_operators_read():
    stored = domain.to_stored(treated(date(2026, 1, 5), datetime(2026, 1, 5, 18, tzinfo=timezone.utc)).schedule)
    assert stored["v"] == domain.STORED_VERSION
    assert stored["patient_id"] == "p-1" and stored["current_treatment_id"] == "t-1"
    fire_at = domain.STORED_TIMER_FIELDS.index("fire_at")
    assert domain.stored_next_fire_at(stored) == min(datetime.fromisoformat(t[fire_at]) for t in stored["pending"])
    assert domain.stored_timers(stored) == 9


def test_a_discharged_patient_is_stored_with_no_next_moment():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    discharged = domain.on_discharged(schedule, None).schedule  # type: ignore[arg-type]
    stored = domain.to_stored(discharged)
    assert domain.stored_next_fire_at(stored) is None and domain.stored_timers(stored) == 0


def test_the_stored_form_keeps_the_partition_it_was_written_in_and_an_old_value_has_none():
    schedule = treated(date(2026, 1, 5), at("2026-01-05T18:00:00+00:00")).schedule
    assert domain.stored_partition(json.loads(json.dumps(domain.to_stored(schedule, 5)))) == 5
    assert domain.stored_partition(json.loads(schedule.model_dump_json())) is None
