"""The portal's projection on SQLite: events in, rows out; redelivery changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.db import make_engine, migrate
from services.portal.projection import lifecycle, rows_for
from services.portal.store import Projection, ReadModel
from shared.events import PatientUpdated
from tests.support.portal_events import (
    T0, acked, alert, checkin_asked, enrolled, escalated, headache_checkin, opted_out, resolved, side_effects_checkin,
    sms_failed, sms_sent, treated,
)

CLINIC = ["rocklin"]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


def test_an_alert_becomes_an_open_inbox_row_and_a_timeline_line() -> None:
    rows = rows_for(alert())
    assert rows.alerts[0]["status"] == "open" and rows.alerts[0]["severity_rank"] == 0
    assert rows.timeline[0]["title"].startswith("URGENT alert") and "swallow" in rows.timeline[0]["detail"]


def test_lifecycle_counts_the_first_acknowledgement_whatever_order_actions_arrive_in() -> None:
    late_ack = acked(by="kim", at=T0 + timedelta(minutes=9))
    state = lifecycle([resolved(), late_ack, acked(by="lee"), escalated()])
    assert state["status"] == "resolved" and state["acknowledged_by"] == "lee" and state["outcome"] == "advised_emergency_care"
    assert '"kim", "ray"' in state["paged"]


async def test_projecting_events_fills_the_inbox_the_patient_and_the_timeline(engine: AsyncEngine) -> None:
    events = [enrolled(), treated(), checkin_asked(), sms_sent(), side_effects_checkin(), alert()]
    assert await Projection(engine).apply(events) == len(events)
    model = ReadModel(engine)
    [open_alert] = await model.inbox(CLINIC)
    assert (open_alert.patient_name, open_alert.status, open_alert.evidence["reply"]) == ("Ana", "open", "hard to swallow since yesterday")
    kinds = {line.kind for line in await model.timeline("p1")}
    assert kinds == {"patient.enrolled", "treatment.recorded", "checkin.due", "message.sent", "checkin.completed", "clinician.alert"}
    [checkin] = await model.checkins("p1")
    assert checkin.kind == "side_effects" and checkin.red_flags is False


async def test_a_redelivered_batch_changes_nothing(engine: AsyncEngine) -> None:
    events = [enrolled(), treated(), alert(), acked(), headache_checkin(9, 1)]
    projection = Projection(engine)
    await projection.apply(events)
    before = await ReadModel(engine).counts()
    assert await projection.apply(events) == 0
    assert await projection.apply([*events, *events]) == 0
    assert await ReadModel(engine).counts() == before


async def test_an_acknowledgement_that_comes_before_its_alert_still_counts(engine: AsyncEngine) -> None:
    projection = Projection(engine)
    await projection.apply([acked()])
    await projection.apply([enrolled(), alert()])
    shown = await ReadModel(engine).alert(CLINIC, "a1")
    assert shown is not None and (shown.status, shown.acknowledged_by) == ("acknowledged", "lee")


async def test_a_resolved_alert_leaves_the_inbox_and_a_later_acknowledgement_changes_nothing(engine: AsyncEngine) -> None:
    projection = Projection(engine)
    await projection.apply([enrolled(), alert(), acked(by="lee"), resolved(by="lee")])
    await projection.apply([acked(by="kim", at=T0 + timedelta(hours=2))])
    model = ReadModel(engine)
    assert await model.inbox(CLINIC) == []
    shown = await model.alert(CLINIC, "a1")
    assert shown is not None and (shown.status, shown.acknowledged_by, shown.note) == ("resolved", "lee", "called, sent to ER")


async def test_an_older_patient_snapshot_does_not_overwrite_a_newer_one(engine: AsyncEngine) -> None:
    newer = PatientUpdated(**enrolled(name="Anabel").model_dump(exclude={"type", "event_id", "occurred_at"}),
                           occurred_at=T0 + timedelta(days=1))
    await Projection(engine).apply([newer, enrolled(name="Ana")])
    patient = await ReadModel(engine).patient(CLINIC, "p1")
    assert patient is not None and patient.first_name == "Anabel"


async def test_an_opt_out_and_a_failed_message_show_on_the_patient(engine: AsyncEngine) -> None:
    await Projection(engine).apply([enrolled(), sms_failed(), opted_out()])
    patient = await ReadModel(engine).patient(CLINIC, "p1")
    assert patient is not None
    assert (patient.sms_consent, patient.last_delivery_status, patient.last_delivery_reason) == (False, "failed", "number unreachable")


async def test_another_clinics_patient_and_alert_are_not_found(engine: AsyncEngine) -> None:
    await Projection(engine).apply([enrolled(), alert()])
    model = ReadModel(engine)
    assert await model.patient(["sevilla"], "p1") is None
    assert await model.alert(["sevilla"], "a1") is None
    assert await model.inbox(["sevilla"]) == []


async def test_a_treatment_or_check_in_published_twice_is_listed_once(engine: AsyncEngine) -> None:
    await Projection(engine).apply([treated(), treated(), headache_checkin(9, 1), headache_checkin(9, 1)])
    lines = await ReadModel(engine).timeline("p1")
    assert [line.kind for line in lines].count("treatment.recorded") == 1
    assert [line.kind for line in lines].count("checkin.completed") == 1


async def test_a_database_error_does_not_carry_the_patients_words_into_the_logs(engine: AsyncEngine) -> None:
    from sqlalchemy import insert

    from services.portal import schema

    row = {"event_id": "e1", "patient_id": "p1", "clinic_id": "rocklin", "at": T0, "kind": "x", "title": "t",
           "detail": "my throat closes when I swallow"}
    async with engine.begin() as conn:
        await conn.execute(insert(schema.timeline), row)
    with pytest.raises(Exception) as failure:
        async with engine.begin() as conn:
            await conn.execute(insert(schema.timeline), row)
    assert "throat" not in str(failure.value)


async def test_the_migrations_create_exactly_the_schema_the_code_declares(engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.portal.schema import metadata

    async with engine.connect() as conn:
        differences = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    assert differences == [], "add an Alembic migration for these changes"


async def test_the_clinic_counts_only_answers_to_check_ins_it_asked(engine: AsyncEngine) -> None:
    asked = checkin_asked(day=28).model_copy(update={"checkin_id": "p1-hc1-12", "kind": "headache_frequency"})
    await Projection(engine).apply([enrolled(), treated(), asked, checkin_asked(), headache_checkin(12, 1), headache_checkin(9, 2)])
    [row] = await ReadModel(engine).clinic_patients("rocklin")
    assert (row.asked, row.answered, row.expired) == (2, 1, 0)


async def test_the_open_count_stops_counting_past_its_cap(engine: AsyncEngine) -> None:
    await Projection(engine).apply([alert(f"a{n}") for n in range(5)] + [resolved("a0")])
    model = ReadModel(engine)
    assert await model.open_count(CLINIC) == 4
    assert await model.open_count(CLINIC, cap=2) == 3  # "more than 2"
    [done] = await model.recently_resolved(CLINIC)
    assert done.alert_id == "a0"
