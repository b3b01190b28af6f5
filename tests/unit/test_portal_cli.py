"""The portal's commands as an operator types them: `users add`, `audit export`."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.portal.auth import Accounts
from services.portal.db import make_engine


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CYCLECARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CYCLECARE_PORTAL_URL", "https://portal.clinic.test")
    monkeypatch.delenv("CYCLECARE_DATABASE_URL", raising=False)
    return tmp_path / "portal" / "portal.db"


def test_users_add_prints_a_one_time_link_that_sets_the_password(env: Path) -> None:
    result = CliRunner().invoke(main, ["users", "add", "--clinic", "rocklin", "--email", "lee@example.org"])
    assert result.exit_code == 0, result.output
    link = re.search(r"https://portal\.clinic\.test/set-password\?token=(\S+)", result.output)
    assert link, result.output

    async def use_it_twice() -> list[str]:
        engine = make_engine(f"sqlite+aiosqlite:///{env}")
        accounts = Accounts(engine)
        outcomes = [await accounts.set_password(link.group(1), "correct horse battery")]
        try:
            await accounts.set_password(link.group(1), "another long password")
        except ValueError as refused:
            outcomes.append(str(refused))
        await engine.dispose()
        return outcomes

    assert asyncio.run(use_it_twice()) == ["lee@example.org", "this link is not valid any more: ask for a new one"]


def test_users_add_refuses_a_clinic_the_clinics_file_does_not_know(env: Path) -> None:
    result = CliRunner().invoke(main, ["users", "add", "--clinic", "nowhere", "--email", "lee@example.org"])
    assert result.exit_code != 0 and "unknown clinic nowhere" in result.output


def test_audit_export_writes_every_entry_as_csv(env: Path, tmp_path: Path) -> None:
    async def record() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{env}")
        await Accounts(engine).audit("view_patient", user_email="lee@example.org", clinic_id="rocklin", target="p1", remote="10.0.0.7")
        await engine.dispose()

    assert CliRunner().invoke(main, ["users", "add", "--clinic", "rocklin", "--email", "lee@example.org"]).exit_code == 0
    asyncio.run(record())
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(main, ["audit", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "at,user,clinic,action,target,from"
    assert lines[1].endswith(",lee@example.org,rocklin,view_patient,p1,10.0.0.7")
