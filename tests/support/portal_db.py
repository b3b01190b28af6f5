"""The portal's read model on a fresh SQLite file, migrated: for tests that need a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.db import make_engine, migrate


async def migrated_sqlite(path: Path) -> AsyncEngine:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty, migrated read model (import this fixture into a test module)."""
    engine = await migrated_sqlite(tmp_path / "portal.db")
    yield engine
    await engine.dispose()
