"""A batch of the scheduler's records in memory (``services.scheduler.batch`` driven by the
app's handlers): each patient's schedule is loaded once, every record applies to the result
of the one before, each changed schedule is written once into its patient's changelog
partition, and what the batch decided is collected for one flush."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from types import SimpleNamespace

import faust
import pytest

from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.events import ConsentChanged, TreatmentRecorded
from shared.scheduler_events import FIRE_GROUP_MAX, TimerFire
from shared.streaming import PartitionedTable
from shared.topics import Topics
from services.scheduler import app, domain
from services.scheduler.batch import Batch
from services.scheduler.domain import PatientSchedule
from services.scheduler.timerwheel import TimerWheel
from tests.unit.test_scheduler_domain import at, patient, treatment

NOW = at("2026-01-05T18:00:00+00:00")


def deps(stored: dict | None = None) -> app.Deps:
    runtime = SimpleNamespace(service="scheduler", topics=Topics("unit"))  # what the handlers read of it
    return app.Deps(rt=runtime, clinics=load_clinics(None), clock=ManualClock(NOW), schedules=stored or {},  # type: ignore[arg-type]
                    wheel=TimerWheel(), unanswered_after=NOW - NOW)


def counting_batch(d: app.Deps) -> tuple[Batch, list[str]]:
    loads: list[str] = []

    def load(patient_id: str) -> PatientSchedule:
        loads.append(patient_id)
        return d.load(patient_id)

    return Batch(load), loads


def plan(d: app.Deps, batch: Batch, partition: int, topic: str, event) -> None:
    batch.partition = partition
    app.HANDLERS[topic](d, batch, event)


def test_a_patient_enrolled_and_treated_in_one_batch_is_loaded_once_and_written_once():
    d = deps()
    batch, loads = counting_batch(d)
    plan(d, batch, 3, "patients", patient())
    plan(d, batch, 3, "treatments", treatment(date(2026, 1, 5)))
    plan(d, batch, 3, "treatments", treatment(date(2026, 1, 5)))  # the same treatment again: one cycle

    assert loads == ["p-1"]
    [write] = batch.writes()
    assert (write.patient_id, write.partition) == ("p-1", 3)
    assert write.schedule.enrolled and write.schedule.cycle == 1 and len(write.schedule.pending) == 9


def test_a_treatment_before_the_enrolment_in_the_same_batch_is_held_then_scheduled():
    d = deps()
    batch, _ = counting_batch(d)
    plan(d, batch, 0, "treatments", treatment(date(2026, 1, 5)))
    plan(d, batch, 0, "patients", patient())
    [write] = batch.writes()
    assert write.schedule.held == [] and write.schedule.cycle == 1


def test_each_patient_is_written_into_the_partition_of_its_own_records_not_the_last_record_of_the_batch():
    d = deps()
    batch, _ = counting_batch(d)
    for n, partition in ((1, 5), (2, 0), (3, 7)):
        plan(d, batch, partition, "patients", patient(patient_id=f"p-{n}"))
    assert {(w.patient_id, w.partition) for w in batch.writes()} == {("p-1", 5), ("p-2", 0), ("p-3", 7)}


def test_events_of_every_patient_in_the_batch_are_collected_in_order_for_one_flush():
    d = deps()
    batch, _ = counting_batch(d)
    for n in (1, 2):
        plan(d, batch, n, "patients", patient(patient_id=f"p-{n}"))
        late = TreatmentRecorded(treatment_id=f"t-{n}", patient_id=f"p-{n}", clinic_id="rocklin",
                                 administered_on=date(2025, 10, 1))  # days 2, 7, ... are stale
        plan(d, batch, n, "treatments", late)

    patients = [p for p, _ in batch.emit]
    assert patients == sorted(patients) and set(patients) == {"p-1", "p-2"}
    assert all(event.type == "timer.skipped" for _, event in batch.emit)
    assert batch.skipped() == [event for _, event in batch.emit]
    batch.published()
    assert batch.emit == [] and len(batch.writes()) == 2  # a retried flush sends nothing twice, writes again


def test_a_schedule_only_read_in_a_batch_is_not_written_back():
    d = deps()
    batch, _ = counting_batch(d)
    plan(d, batch, 0, "scheduler_commands", TimerFire(patient_id="p-1", at=NOW))
    assert batch.writes() == [] and batch.emit == []
    assert [(s.patient_id, partition) for s, partition in batch.armed()] == [("p-1", 0)]  # the wheel learns the answer


def test_a_fire_command_in_a_batch_fires_from_the_stored_schedule_and_writes_it_once():
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    d = deps({"p-1": domain.to_stored(treated)})
    d.clock = ManualClock(at("2026-01-07T18:00:00+00:00"))  # day 2: the first check-in is due
    batch, loads = counting_batch(d)
    plan(d, batch, 2, "scheduler_commands", TimerFire(patient_id="p-1", at=d.clock.now()))
    plan(d, batch, 2, "scheduler_commands", TimerFire(patient_id="p-1", at=d.clock.now()))  # a repeat

    assert loads == ["p-1"]
    assert [event.type for _, event in batch.emit] == ["checkin.due"]
    [write] = batch.writes()
    assert write.partition == 2 and any(t.event_type == "checkin.expired" for t in write.schedule.pending)


def test_an_opt_out_and_a_fire_in_one_batch_skip_the_moment_rather_than_send_it():
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    d = deps({"p-1": domain.to_stored(treated)})
    d.clock = ManualClock(at("2026-01-07T18:00:00+00:00"))
    batch, _ = counting_batch(d)
    plan(d, batch, 1, "consent", ConsentChanged(patient_id="p-1", clinic_id="rocklin", granted=False, channel="all",
                                                 source="sms", changed_at=d.clock.now()))
    plan(d, batch, 1, "scheduler_commands", TimerFire(patient_id="p-1", at=d.clock.now()))
    assert [(event.type, event.reason) for _, event in batch.emit] == [("timer.skipped", "no consent")]


def d_rules():
    return load_clinics(None).require("rocklin").rules


def test_a_write_goes_to_the_changelog_partition_it_names_as_faust_would_encode_it():
    faust_app = faust.App("unit-partitioned", broker="kafka://127.0.0.1:1")
    table = PartitionedTable(faust_app, name="schedules", default=None, partitions=8,
                             schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
                             value_type=bytes)
    sent = []

    async def send_all(records):  # noqa: ANN001, ANN202 - Runtime.send_all's shape
        sent.extend(records)
        return [asyncio.get_running_loop().create_future()]

    table.send_all = send_all
    asyncio.run(table.put_all([(6, "p-1", b'{"v":3}'), (1, "p-2", b'{"v":3}')]))
    changelog = table.changelog_topic.get_topic_name()
    assert sent == [(changelog, b'"p-1"', b'{"v":3}', 6), (changelog, b'"p-2"', b'{"v":3}', 1)]
    assert table["p-1"] == b'{"v":3}' and table["p-2"] == b'{"v":3}'
    with pytest.raises(TypeError, match="outside of stream"):  # Faust's own path needs a current event: none here
        table["p-3"] = b"{}"


def test_one_fire_command_naming_several_patients_fires_each_of_them_in_its_partition():
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    stored = {f"p-{n}": domain.to_stored(treated.model_copy(update={"patient_id": f"p-{n}"}), 4) for n in (1, 2, 3)}
    d = deps(stored)
    d.clock = ManualClock(at("2026-01-07T18:00:00+00:00"))
    batch, loads = counting_batch(d)
    plan(d, batch, 4, "scheduler_commands", TimerFire(patient_id="p-1", also=["p-2", "p-3"], at=d.clock.now()))
    assert loads == ["p-1", "p-2", "p-3"]
    assert [(p, event.type) for p, event in batch.emit] == [("p-1", "checkin.due"), ("p-2", "checkin.due"), ("p-3", "checkin.due")]
    assert {(w.patient_id, w.partition) for w in batch.writes()} == {("p-1", 4), ("p-2", 4), ("p-3", 4)}


def test_due_patients_are_commanded_in_groups_sent_to_their_partition_and_singly_where_it_is_unknown():
    patients = [f"p-{n}" for n in range(2 * app.FIRE_GROUP + 1)]
    commands = app.fire_commands({3: patients, None: ["old-1", "old-2"]}, NOW)
    grouped = [(partition, [c.patient_id, *c.also]) for partition, c in commands if partition is not None]
    assert [partition for partition, _ in grouped] == [3, 3, 3]
    assert [len(named) for _, named in grouped] == [app.FIRE_GROUP, app.FIRE_GROUP, 1]
    assert [p for _, named in grouped for p in named] == patients  # each once, in order
    assert [(partition, c.patient_id, c.also) for partition, c in commands if partition is None] == \
        [(None, "old-1", []), (None, "old-2", [])]


def test_a_fire_command_names_no_more_patients_than_one_command_may_carry():
    assert 1 <= app.FIRE_GROUP <= FIRE_GROUP_MAX


def test_a_patient_whose_clinic_left_the_clinics_file_does_not_hold_up_the_others_in_a_fire_command():
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    gone = treated.model_copy(update={"patient_id": "p-2", "clinic_id": "closed"})
    d = deps({"p-1": domain.to_stored(treated, 4), "p-2": domain.to_stored(gone, 4),
              "p-3": domain.to_stored(treated.model_copy(update={"patient_id": "p-3"}), 4)})
    d.clock = ManualClock(at("2026-01-07T18:00:00+00:00"))
    batch, _ = counting_batch(d)
    plan(d, batch, 4, "scheduler_commands", TimerFire(patient_id="p-1", also=["p-2", "p-3"], at=d.clock.now()))
    assert [p for p, _ in batch.emit] == ["p-1", "p-3"]
    assert "p-2" not in {w.patient_id for w in batch.writes()} and "p-2" not in {s.patient_id for s, _ in batch.armed()}


def test_the_timer_index_is_rebuilt_from_schedules_stored_in_every_form_the_table_may_hold():
    """After a rebalance the table holds this scheduler's bytes next to values recovered from
    a changelog that older schedulers wrote (version 2, unversioned)."""
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    older = json.loads(domain.to_stored(treated.model_copy(update={"patient_id": "p-2"}), 6)) | {"v": 2}
    unversioned = treated.model_copy(update={"patient_id": "p-3"}).model_dump_json().encode()
    d = deps({"p-1": domain.to_stored(treated, 4), "p-2": json.dumps(older).encode(), "p-3": unversioned})
    app.reindex(d)
    assert d.wheel.timers == 27
    due = d.wheel.pop_due(treated.next_fire_at(), retry_at=at("2026-01-08T00:00:00+00:00"))
    assert d.wheel.by_partition(due) == {4: ["p-1"], 6: ["p-2"], None: ["p-3"]}


def test_a_stored_schedule_that_cannot_be_read_is_left_out_of_the_timer_index_and_the_others_still_fire(caplog):
    treated = domain.on_treatment(domain.on_patient(PatientSchedule(patient_id="p-1"), patient(), d_rules(), NOW).schedule,
                                  treatment(date(2026, 1, 5)), d_rules(), NOW).schedule
    d = deps({"p-1": domain.to_stored(treated, 4), "p-2": b"\x00not json"})
    app.reindex(d)
    assert d.wheel.timers == 9
    assert d.wheel.pop_due(treated.next_fire_at(), retry_at=at("2026-01-08T00:00:00+00:00")) == ["p-1"]
    assert "cannot index the schedule of patient p-2" in caplog.text
    with pytest.raises(domain.UnknownStoredForm):  # a record of that patient is retried, not planned on nothing
        d.load("p-2")


class AckedLater(dict):
    """The schedules table, its changelog acknowledgements held back until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.ack = asyncio.get_running_loop().create_future()

    async def put_all(self, writes: list[tuple[int, str, bytes]]) -> list[asyncio.Future]:
        self.update((key, value) for _, key, value in writes)
        return [self.ack]


async def test_the_tick_does_not_rebuild_the_index_for_a_batch_s_own_new_schedules_while_it_waits_for_the_broker():
    d = deps()
    d.schedules, d.needs_rebuild, d.indexed = AckedLater(), False, 0
    d.rt.send_all = lambda records: asyncio.sleep(0, result=[])  # the batch has no events to publish
    batch, _ = counting_batch(d)
    plan(d, batch, 3, "patients", patient())
    plan(d, batch, 3, "treatments", treatment(date(2026, 1, 5)))
    flushing = asyncio.create_task(app.flush(d, batch))
    while "p-1" not in d.schedules:
        await asyncio.sleep(0)
    assert not app.index_stale(d)  # the tick, running now, would otherwise rebuild every patient
    d.schedules.ack.set_result(None)
    await flushing
    assert not app.index_stale(d) and len(d.wheel) == 1
