"""Catch-up: the fire commands a scheduler sends for moments that came due while no worker
ran go out a slice at a time, the next slice as soon as the agent answered one, and a command
is sent again only when it waited longer than any slice takes to answer."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.codec import decode_record
from shared.topics import Topics
from services.scheduler import app
from services.scheduler.timerwheel import TimerWheel
from tests.unit.test_scheduler_domain import at

NOW = at("2026-03-05T00:00:00+00:00")


class Commands:
    """The scheduler-commands topic as the tick sends to it: what went out, decoded."""

    def __init__(self) -> None:
        self.patients: list[str] = []

    async def send_all(self, records: list[tuple[str, bytes, bytes, int | None]]) -> list:
        for topic, key, value, _ in records:
            assert topic == Topics("unit").scheduler_commands
            _, command = decode_record(key, value)
            self.patients += [command.patient_id, *command.also]
        return []


def deps(wheel: TimerWheel, ready: bool = True) -> tuple[app.Deps, Commands]:
    commands = Commands()
    runtime = SimpleNamespace(service="scheduler", topics=Topics("unit"), ready=lambda: ready,
                              send_all=commands.send_all)
    d = app.Deps(rt=runtime, clinics=load_clinics(None), clock=ManualClock(NOW), schedules={},  # type: ignore[arg-type]
                 wheel=wheel, unanswered_after=timedelta(minutes=1), needs_rebuild=False, indexed=0)
    return d, commands


def due_wheel(patients: int, max_asked: int) -> TimerWheel:
    wheel = TimerWheel(max_asked=max_asked)
    for n in range(patients):
        wheel.set(f"p-{n}", NOW - timedelta(days=1, minutes=-n), 1, partition=n % 2)
    return wheel


async def test_the_next_slice_is_asked_as_soon_as_a_batch_answered_the_last_without_waiting_for_the_tick():
    d, commands = deps(due_wheel(5, max_asked=2))
    await app.ask(d, NOW)
    assert sorted(commands.patients) == ["p-0", "p-1"]
    for patient_id in commands.patients:
        d.wheel.set(patient_id, None)  # the batch agent fired them: nothing pending any more
    await app.ask_again(d)
    assert sorted(commands.patients) == ["p-0", "p-1", "p-2", "p-3"]


async def test_no_command_is_asked_again_while_the_bound_in_flight_is_reached():
    d, commands = deps(due_wheel(5, max_asked=2))
    await app.ask(d, NOW)
    d.wheel.set("p-0", None)  # one answered, one still in flight: room for one more
    await app.ask_again(d)
    await app.ask_again(d)
    assert sorted(commands.patients) == ["p-0", "p-1", "p-2"]


@pytest.mark.parametrize("ready, needs_rebuild", [(False, False), (True, True)])
async def test_a_worker_not_ready_or_with_its_index_out_of_date_leaves_asking_to_the_tick(ready, needs_rebuild):
    d, commands = deps(due_wheel(3, max_asked=10), ready=ready)
    d.needs_rebuild = needs_rebuild
    await app.ask_again(d)
    assert commands.patients == []


def test_a_fire_command_is_sent_again_after_20_ticks_and_never_sooner_than_the_floor():
    assert app.unanswered_after(tick_seconds=1, clock_speed=1) == timedelta(seconds=30)
    assert app.unanswered_after(tick_seconds=0.2, clock_speed=1) == timedelta(seconds=30)
    assert app.unanswered_after(tick_seconds=5, clock_speed=1) == timedelta(seconds=100)
    assert app.unanswered_after(tick_seconds=1, clock_speed=60) == timedelta(minutes=30)  # on the scheduler's clock


def test_the_retry_delay_outlasts_the_answer_of_every_command_in_flight_at_the_measured_pace():
    slowest_answers_per_second = 800  # the benchmark's catch-up on a loaded machine
    assert app.FIRE_COMMANDS_IN_FLIGHT / slowest_answers_per_second < app.UNANSWERED_AFTER_MIN_SECONDS
