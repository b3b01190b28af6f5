"""The in-memory index of next moments: a tick pops what is due and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.scheduler.timerwheel import TimerWheel

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(days=365)  # when an unanswered fire command is sent again


def test_only_patients_whose_moment_has_come_are_popped_each_once():
    wheel = TimerWheel()
    wheel.set("a", T0, 3)
    wheel.set("b", T0 + timedelta(hours=1), 2)
    assert wheel.pop_due(T0, LATER) == ["a"]
    assert wheel.pop_due(T0, LATER) == []
    assert len(wheel) == 2 and wheel.timers == 5


def test_a_fire_command_nobody_answered_is_sent_again_at_the_retry_moment():
    wheel = TimerWheel()
    wheel.set("a", T0, 1)
    assert wheel.pop_due(T0, T0 + timedelta(minutes=1)) == ["a"]
    assert wheel.pop_due(T0 + timedelta(seconds=30), T0 + timedelta(minutes=2)) == []
    assert wheel.pop_due(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)) == ["a"]


def test_an_answered_fire_command_replaces_the_retry():
    wheel = TimerWheel()
    wheel.set("a", T0, 2)
    wheel.pop_due(T0, T0 + timedelta(minutes=1))
    wheel.set("a", T0 + timedelta(days=5), 1)  # the agent saved the patient's next moment
    assert wheel.pop_due(T0 + timedelta(days=1), LATER) == []
    assert wheel.timers == 1


def test_a_rescheduled_patient_fires_at_the_new_moment_only():
    wheel = TimerWheel()
    wheel.set("a", T0, 1)
    wheel.set("a", T0 + timedelta(days=1), 1)
    assert wheel.pop_due(T0 + timedelta(hours=1), LATER) == []
    assert wheel.pop_due(T0 + timedelta(days=1), LATER) == ["a"]


def test_nothing_pending_removes_the_patient_and_their_timers_from_the_count():
    wheel = TimerWheel()
    wheel.set("a", T0, 4)
    wheel.set("a", None)
    assert len(wheel) == 0 and wheel.timers == 0 and wheel.pop_due(T0 + timedelta(days=1), LATER) == []


def test_the_heap_is_compacted_when_patients_are_rescheduled_many_times():
    wheel = TimerWheel()
    for minute in range(10_000):
        wheel.set("a", T0 + timedelta(minutes=minute), 1)
    assert len(wheel._heap) < 2000
    assert wheel.pop_due(T0 + timedelta(days=30), LATER) == ["a"]


def test_overdue_counts_moments_already_past():
    wheel = TimerWheel()
    wheel.set("a", T0, 1)
    wheel.set("b", T0 + timedelta(days=1), 1)
    assert wheel.overdue(T0 + timedelta(hours=1)) == 1


def test_clear_forgets_everything():
    wheel = TimerWheel()
    wheel.set("a", T0, 2)
    wheel.clear()
    assert len(wheel) == 0 and wheel.timers == 0 and wheel.pop_due(T0, LATER) == []
