"""The scheduler's alert handlers (services/scheduler/alerts.py) over a plain dict for the table,
a manual clock and a fake broker port: what is published, what is written, in which order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.events import AlertAcknowledged, AlertEscalated, ClinicianAlert, Event
from shared.scheduler_events import AlertDeadline
from services.scheduler.alerts import AlertBook, AlertLifecycle

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
CLINICS = load_clinics(None)  # the example clinics: rocklin (lee, patel), sevilla (ruiz)


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, Event]] = []

    async def publish(self, topic: str, key: str, event: Event) -> None:
        self.published.append((topic, key, event))

    def pages(self) -> list[AlertEscalated]:
        return [e for _, _, e in self.published if isinstance(e, AlertEscalated)]


class CrashingTable(dict):
    """A table whose next write never happens: the worker died right after publishing."""

    crash_next = False

    def __setitem__(self, key: str, value: dict) -> None:
        if self.crash_next:
            self.crash_next = False
            raise SystemExit("killed")
        super().__setitem__(key, value)


def lifecycle(table: dict, clock: ManualClock, broker: FakeBroker) -> AlertLifecycle:
    return AlertLifecycle(AlertBook(table, CLINICS), CLINICS, clock, broker.publish, "cyclecare.alert-actions")


def urgent() -> ClinicianAlert:
    return ClinicianAlert(alert_id="a1", patient_id="p1", clinic_id="rocklin", severity="urgent",
                          reasons=["dysphagia"], summary="trouble swallowing", raised_at=T0)


def ack(by: str, clinic_id: str = "rocklin") -> AlertAcknowledged:
    return AlertAcknowledged(alert_id="a1", patient_id="p1", clinic_id=clinic_id, by=by, via="sms",
                             acknowledged_at=T0 + timedelta(minutes=5))


async def test_a_deadline_pages_on_the_alert_actions_topic_keyed_by_patient_then_arms_the_next_step() -> None:
    clock, broker, table = ManualClock(T0), FakeBroker(), {}
    alerts = lifecycle(table, clock, broker)
    await alerts.handle("a1", urgent())
    assert alerts.book.wheel.pop_due(T0 + timedelta(minutes=15), retry_at=T0 + timedelta(hours=9)) == ["a1"]
    clock.advance(timedelta(minutes=15))
    await alerts.handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))
    [(topic, key, page)] = broker.published
    assert (topic, key, page.level, page.notified) == ("cyclecare.alert-actions", "p1", 2, ["lee", "patel"])
    await alerts.handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))  # a late copy of the command
    assert len(broker.published) == 1
    assert alerts.book.get("a1").state.escalations == ((2, 0),)


async def test_a_crash_between_the_page_and_the_table_write_pages_again_with_the_same_event_id() -> None:
    clock, broker, table = ManualClock(T0), FakeBroker(), CrashingTable()
    await lifecycle(table, clock, broker).handle("a1", urgent())
    clock.advance(timedelta(minutes=16))
    table.crash_next = True
    try:
        await lifecycle(table, clock, broker).handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))
    except SystemExit:
        pass
    assert table["a1"]["state"]["escalations"] == []  # the page is on the broker, not in the table
    clock.advance(timedelta(minutes=1))
    restarted = lifecycle(table, clock, broker)  # the command was not acknowledged: it comes again
    await restarted.handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))
    first, again = broker.pages()
    assert first.event_id == again.event_id and (again.level, again.repeat) == (2, 0)
    await restarted.handle("a1", first)  # the page itself, back from the topic, changes nothing more
    assert restarted.book.get("a1").state.escalations == ((2, 0),)


async def test_an_acknowledgement_before_the_deadline_means_no_page_and_nothing_left_in_the_wheel() -> None:
    clock, broker, table = ManualClock(T0), FakeBroker(), {}
    alerts = lifecycle(table, clock, broker)
    await alerts.handle("a1", urgent())
    await alerts.handle("a1", ack("patel"))
    assert alerts.book.wheel.pop_due(T0 + timedelta(days=1), retry_at=T0 + timedelta(days=2)) == []
    clock.advance(timedelta(minutes=15))
    await alerts.handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))
    assert broker.pages() == [] and alerts.book.open_urgent == {}


async def test_an_acknowledgement_by_another_clinics_clinician_does_not_stop_the_page() -> None:
    clock, broker, table = ManualClock(T0), FakeBroker(), {}
    alerts = lifecycle(table, clock, broker)
    await alerts.handle("a1", urgent())
    await alerts.handle("a1", ack("ruiz"))  # Sevilla's clinician
    await alerts.handle("a1", ack("ruiz", clinic_id="sevilla"))
    clock.advance(timedelta(minutes=15))
    await alerts.handle("a1", AlertDeadline(alert_id="a1", at=clock.now()))
    assert [p.level for p in broker.pages()] == [2]
    assert alerts.book.get("a1").state.status == "open"


async def test_the_indexes_are_rebuilt_from_the_table_after_a_rebalance() -> None:
    clock, broker, table = ManualClock(T0), FakeBroker(), {}
    await lifecycle(table, clock, broker).handle("a1", urgent())
    moved = AlertBook(table, CLINICS)  # a worker that recovered the table from its changelog
    moved.rebuild_if_needed()
    assert moved.open_urgent == {"a1": T0}
    assert moved.wheel.pop_due(T0 + timedelta(minutes=15), retry_at=T0 + timedelta(hours=1)) == ["a1"]
