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


def test_no_more_fire_commands_wait_for_an_answer_than_the_bound_earliest_first():
    wheel = TimerWheel(max_asked=2)
    for n, patient in enumerate("abcde"):
        wheel.set(patient, T0 + timedelta(minutes=n), 1)
    now = T0 + timedelta(hours=1)
    assert wheel.pop_due(now, LATER) == ["a", "b"]
    assert wheel.pop_due(now, LATER) == [] and wheel.asked == 2


def test_each_answer_lets_the_next_due_patient_be_asked():
    wheel = TimerWheel(max_asked=2)
    for n, patient in enumerate("abcde"):
        wheel.set(patient, T0 + timedelta(minutes=n), 1)
    now = T0 + timedelta(hours=1)
    wheel.pop_due(now, LATER)
    wheel.set("a", None)  # answered: nothing pending any more
    assert wheel.pop_due(now, LATER) == ["c"]
    wheel.set("b", T0 + timedelta(days=30), 1)  # answered: a later moment
    wheel.set("c", None)
    assert wheel.pop_due(now, LATER) == ["d", "e"]


def test_a_command_sent_again_after_no_answer_does_not_count_twice_against_the_bound():
    wheel = TimerWheel(max_asked=2)
    wheel.set("a", T0, 1)
    wheel.set("b", T0, 1)
    wheel.set("c", T0 + timedelta(minutes=5), 1)
    retry = T0 + timedelta(minutes=1)
    assert sorted(wheel.pop_due(T0, retry)) == ["a", "b"]
    assert sorted(wheel.pop_due(T0 + timedelta(minutes=10), LATER)) == ["a", "b"]  # still unanswered: asked again
    assert wheel.asked == 2


def test_rebuilding_the_wheel_forgets_the_commands_in_flight():
    wheel = TimerWheel(max_asked=1)
    wheel.set("a", T0, 1)
    wheel.pop_due(T0, LATER)
    wheel.clear()
    wheel.set("b", T0, 1)
    assert wheel.pop_due(T0, LATER) == ["b"]


def test_due_patients_are_grouped_by_the_partition_of_their_schedules_once_known():
    wheel = TimerWheel()
    wheel.set("a", T0, partition=2)
    wheel.set("b", T0, partition=5)
    wheel.set("c", T0, partition=2)
    wheel.set("d", T0)  # stored before the form named its partition
    assert wheel.by_partition(["a", "b", "c", "d"]) == {2: ["a", "c"], 5: ["b"], None: ["d"]}
    wheel.set("a", None)
    wheel.set("a", T0)  # back with nothing known: not the partition of before
    assert wheel.by_partition(["a"]) == {None: ["a"]}


def test_the_wheel_has_room_for_more_commands_until_the_bound_is_reached_and_again_once_one_is_answered():
    wheel = TimerWheel(max_asked=2)
    for patient in "abc":
        wheel.set(patient, T0, 1)
    assert wheel.has_room()
    wheel.pop_due(T0, LATER)
    assert not wheel.has_room()
    wheel.set("a", None)
    assert wheel.has_room() and TimerWheel().has_room()
