"""The portal's repository against both databases it supports: SQLite (the embedded
default) and PostgreSQL (a throwaway cluster; skipped with the reason when the binaries
are missing). The same tests run on each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.auth import Accounts, LoginRefused
from services.portal.db import make_engine, migrate
from services.portal.store import Projection, ReadModel, empty_projection
from tests.support.portal_events import (
    T0, acked, alert, checkin_asked, enrolled, escalated, headache_checkin, resolved, treated,
)
from tests.support.postgres import ThrowawayPostgres, throwaway_postgres

CLINIC = ["rocklin"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    yield from throwaway_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    else:
        cluster: ThrowawayPostgres = request.getfixturevalue("postgres")
        name = f"portal_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(cluster.url().replace("postgresql+asyncpg", "postgresql"))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = cluster.url(name)
    engine = make_engine(url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_migrations_run_twice_without_harm(engine: AsyncEngine) -> None:
    await migrate(engine)
    assert (await ReadModel(engine).counts())["alerts"] == 0


async def test_redelivered_events_change_nothing(engine: AsyncEngine) -> None:
    events = [enrolled(), treated(), alert(), acked(), escalated(), headache_checkin(12, 1)]
    projection = Projection(engine)
    assert await projection.apply(events) == len(events)
    before = await ReadModel(engine).counts()
    assert await projection.apply([*events, *events]) == 0
    assert await ReadModel(engine).counts() == before


async def test_an_event_twice_in_its_first_batch_is_projected_once(engine: AsyncEngine) -> None:
    events = [enrolled(), alert(), acked()]
    assert await Projection(engine).apply([*events, *events]) == len(events)
    counts = await ReadModel(engine).counts()
    assert (counts["projected_events"], counts["alerts"], counts["alert_actions"], counts["timeline"]) == (3, 1, 1, 3)
    [shown] = await ReadModel(engine).patient_alerts(CLINIC, "p1")
    assert shown.status == "acknowledged"


async def test_the_inbox_orders_by_severity_then_age_and_shows_who_was_paged(engine: AsyncEngine) -> None:
    await Projection(engine).apply([
        enrolled(), alert("old-high", severity="high", at=T0), alert("new-urgent", at=T0 + timedelta(hours=1)),
        alert("old-urgent", at=T0 - timedelta(hours=1)), escalated("new-urgent"),
    ])
    inbox = await ReadModel(engine).inbox(CLINIC)
    assert [a.alert_id for a in inbox] == ["old-urgent", "new-urgent", "old-high"]
    assert inbox[1].paged[0]["notified"] == ["kim", "ray"]


async def test_actions_in_any_order_give_the_same_state(engine: AsyncEngine) -> None:
    await Projection(engine).apply([resolved(), enrolled(), acked()])
    await Projection(engine).apply([alert(), acked(by="kim", at=T0 + timedelta(hours=3))])
    shown = await ReadModel(engine).alert(CLINIC, "a1")
    assert shown is not None and (shown.status, shown.acknowledged_by, shown.resolved_by) == ("resolved", "lee", "lee")


async def test_a_rebuild_empties_the_projection_and_a_replay_restores_it(engine: AsyncEngine) -> None:
    events = [enrolled(), treated(), alert(), acked()]
    await Projection(engine).apply(events)
    before = await ReadModel(engine).counts()
    await empty_projection(engine)
    assert sum((await ReadModel(engine).counts()).values()) == 0
    await Projection(engine).apply(events)
    assert await ReadModel(engine).counts() == before


async def test_clinic_figures_count_the_check_ins_asked_and_answered_per_patient(engine: AsyncEngine) -> None:
    asked = checkin_asked(day=28).model_copy(update={"checkin_id": "p1-hc1-12", "kind": "headache_frequency"})
    unasked_answer = headache_checkin(9, 2)  # answered without a recorded question: not in the rate
    await Projection(engine).apply([enrolled(), treated(), asked, checkin_asked(), headache_checkin(12, 1), unasked_answer])
    [row] = await ReadModel(engine).clinic_patients("rocklin")
    assert (row.first_name, str(row.last_treatment), row.asked, row.answered) == ("Ana", "2026-03-01", 2, 1)


async def test_accounts_sign_in_and_lock_out(engine: AsyncEngine) -> None:
    accounts = Accounts(engine)
    await accounts.set_password(await accounts.add_user("Lee@Example.org", ["rocklin"]), "correct horse battery")
    session = await accounts.login("lee@example.org", "correct horse battery")
    assert (session.clinician_id, session.clinics) == ("lee", ("rocklin",))
    for _ in range(5):
        with pytest.raises(LoginRefused):
            await accounts.login("lee@example.org", "wrong")
    with pytest.raises(LoginRefused, match="too many"):
        await accounts.login("lee@example.org", "correct horse battery")
