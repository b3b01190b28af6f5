"""Durable timers on the real broker: a killed worker, a worker stopped over due times, and
two workers sharing the partitions. Each fires every due moment, once by id.

The workers run on a simulated clock (one real second is two simulated days); the test
builds the same clock from the same three numbers, so it knows what should have fired.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import aiohttp

from shared.clinics import ClinicRules
from shared.clock import SimulatedClock
from shared.events import DueEvent, PatientEnrolled, TimerSkipped, TreatmentRecorded, deterministic_id
from services.scheduler import domain
from tests.support.kafka import eventually

LA = "America/Los_Angeles"
START = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)
SPEED = 172_800.0  # two simulated days per real second


def clock_env(anchor: float) -> dict[str, str]:
    return {"CYCLECARE_CLOCK_START": START.isoformat(), "CYCLECARE_CLOCK_SPEED": str(SPEED),
            "CYCLECARE_CLOCK_ANCHOR": str(anchor)}


def patient(n: int) -> PatientEnrolled:
    return PatientEnrolled(patient_id=f"p-{n}", clinic_id="rocklin", first_name="Ana",
                           phone=f"+1916555{n:04d}", timezone=LA, sms_consent=True)


def treatment(n: int, on: date) -> TreatmentRecorded:
    return TreatmentRecorded(treatment_id=f"t-{n}", patient_id=f"p-{n}", clinic_id="rocklin", administered_on=on)


async def enrol_and_treat(publisher, topics, clock: SimulatedClock, patients: range) -> list[TreatmentRecorded]:
    """Each patient treated 0..9 days before today, so moments come due all through the test."""
    today = clock.now().astimezone(ZoneInfo(LA)).date()
    treatments = [treatment(n, today - timedelta(days=n % 10)) for n in patients]
    for n, treated in zip(patients, treatments):
        await publisher.send(topics.patients, f"p-{n}", patient(n))
        await publisher.send(topics.treatments, f"p-{n}", treated)
    return treatments


def planned(treatments: list[TreatmentRecorded]) -> list[domain.Timer]:
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    return [t for tr in treatments for t in domain.plan_cycle(tr, 1, LA, ClinicRules(), long_ago)[0]]


def missing_by(events: list, timers: list[domain.Timer], horizon: datetime) -> list[str]:
    """The planned moments due by ``horizon`` neither fired nor reported skipped, and the
    expiries of check-ins asked long enough before it that have not fired: the worker's
    progress, which a test waits on (a condition, not simulated days going by)."""
    seen = {e.event_id for e in events if isinstance(e, DueEvent)}
    by_id = {e.event_id: e for e in events if isinstance(e, DueEvent)}
    missing = [f"{t.treatment_id} day {t.day}" for t in timers if t.fire_at <= horizon
               and t.timer_id not in seen and deterministic_id(t.timer_id, "skipped") not in seen]
    for checkin in (t for t in timers if t.event_type == "checkin.due"):
        asked = by_id.get(checkin.timer_id)
        if asked is not None and asked.occurred_at + timedelta(hours=48 + 24) <= horizon \
                and deterministic_id(checkin.timer_id, "expiry") not in seen:
            missing.append(f"the expiry of {checkin.treatment_id} day {checkin.day}")
    return missing


async def fired_through(watcher, topics, timers: list[domain.Timer], horizon: datetime, timeout: float = 40.0) -> None:
    await eventually(lambda: not missing_by(watcher.events(topics.due), timers, horizon), timeout=timeout,
                     what=f"every moment due by {horizon:%Y-%m-%d %H:%M} to fire")


def check_every_moment_once(events: list, timers: list[domain.Timer], horizon: datetime) -> None:
    """Each planned moment due by ``horizon`` was fired or reported skipped (not both); each
    fired check-in's expiry too; nothing else appeared; repeats on the wire share an id."""
    due = [e for e in events if isinstance(e, DueEvent)]
    seen = {e.event_id for e in due}
    by_id: dict[str, DueEvent] = {}
    for event in due:  # a redelivered due event must be the same event
        previous = by_id.setdefault(event.event_id, event)
        assert (previous.type, previous.patient_id, previous.day) == (event.type, event.patient_id, event.day)
    skipped = {deterministic_id(t.timer_id, "skipped"): t for t in timers}
    fired_ids = {t.timer_id for t in timers}
    expiries = {deterministic_id(t.timer_id, "expiry"): t for t in timers if t.event_type == "checkin.due"}
    unexpected = seen - fired_ids - set(skipped) - set(expiries)
    assert not unexpected, f"{len(unexpected)} due events that no timer explains"
    for timer in timers:
        both = timer.timer_id in seen and deterministic_id(timer.timer_id, "skipped") in seen
        assert not both, f"day {timer.day} of {timer.treatment_id} was both fired and skipped"
    missing = missing_by(events, timers, horizon)
    assert not missing, f"{len(missing)} moments never fired: {missing[:5]}"


async def timers_pending(url: str) -> float | None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith("cyclecare_timers_pending "):
                    return float(line.split()[1])
    return None


async def consumed(url: str, topic: str) -> float:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("cyclecare_events_consumed_total{") and f'topic="{topic}"' in line)


async def until(read, at_least: float, what: str, timeout: float = 30.0) -> None:
    """Poll an async figure until it reaches ``at_least`` (a deadline, not a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await read() or 0) < at_least:
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def away_six_days(worker, clock: SimulatedClock) -> datetime:
    """Stop ``worker`` and let six simulated days pass with no worker running; when it stopped."""
    worker.stop()
    stopped_at = clock.now()
    await eventually(lambda: clock.now() > stopped_at + timedelta(days=6), timeout=10, what="six days with no worker")
    return stopped_at


def scheduled(changelog: list[dict]) -> set[str]:
    return {value["patient_id"] for value in changelog if value.get("current_treatment_id")}


def fired(events: list) -> set[str]:
    return {e.event_id for e in events if isinstance(e, DueEvent) and not isinstance(e, TimerSkipped)}


async def test_a_killed_worker_is_replaced_and_every_due_moment_fires_once_by_id(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    first = await start_worker("scheduler", **clock_env(anchor))
    watcher = await watch(topics.due, topics.dlq)
    treatments = await enrol_and_treat(publisher, topics, clock, range(30))
    timers = planned(treatments)

    await eventually(lambda: len(fired(watcher.events(topics.due))) >= 20, timeout=30, what="moments firing")
    first.kill()  # no goodbye: its uncommitted offsets and table writes are redelivered
    await start_worker("scheduler", **clock_env(anchor))
    horizon = clock.now() + timedelta(days=12)
    # the replacement fires everything due by the horizon and a day past it (its progress
    # past the horizon: a copy of an earlier moment would have come before)
    await fired_through(watcher, topics, timers, horizon + timedelta(days=1))

    check_every_moment_once(watcher.events(topics.due), timers, horizon)
    assert watcher.raw(topics.dlq) == []


async def test_moments_that_came_due_while_no_worker_ran_fire_once_on_recovery(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    first = await start_worker("scheduler", **clock_env(anchor))
    changelog = f"{topics.namespace}-scheduler-schedules-changelog"
    watcher = await watch(topics.due, changelog)
    treatments = await enrol_and_treat(publisher, topics, clock, range(20))
    timers = planned(treatments)
    # durably registered = in the table's changelog, which is what a new worker recovers
    await eventually(lambda: len(scheduled(watcher.raw(changelog))) == 20, timeout=30, what="20 schedules saved")

    stopped_at = await away_six_days(first, clock)
    came_due = [t for t in timers if stopped_at < t.fire_at <= clock.now() - timedelta(hours=12)]
    assert len(came_due) >= 10
    restarted_at = clock.now()
    await start_worker("scheduler", **clock_env(anchor))
    await eventually(lambda: {t.timer_id for t in came_due} <= fired(watcher.events(topics.due)),
                     timeout=30, what="the missed moments")
    caught_up_at = clock.now()
    await fired_through(watcher, topics, timers, caught_up_at + timedelta(days=1))

    late = [e for e in watcher.events(topics.due) if e.event_id in {t.timer_id for t in came_due}]
    assert all(e.occurred_at >= restarted_at for e in late)  # fired on recovery, and only then
    check_every_moment_once(watcher.events(topics.due), timers, caught_up_at - timedelta(days=1))


async def test_two_workers_in_one_group_split_the_patients_and_fire_each_moment_once(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    one = await start_worker("scheduler", **clock_env(anchor))
    two = await start_worker("scheduler", **clock_env(anchor))
    watcher = await watch(topics.due, topics.dlq)
    await one.wait_ready()
    await two.wait_ready()
    treatments = await enrol_and_treat(publisher, topics, clock, range(40))
    timers = planned(treatments)

    horizon = clock.now() + timedelta(days=10)
    await fired_through(watcher, topics, timers, horizon + timedelta(days=1))
    check_every_moment_once(watcher.events(topics.due), timers, horizon)
    assert await consumed(one.url, topics.treatments) > 0 and await consumed(two.url, topics.treatments) > 0
    assert await consumed(one.url, topics.treatments) + await consumed(two.url, topics.treatments) >= 40
    assert watcher.raw(topics.dlq) == []
