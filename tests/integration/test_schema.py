"""The database schema: what the migrations build is what the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.db.engine import Database
from bot.db.migrate import compare_type
from bot.db.models import Base


async def test_migrations_and_models_agree(db: Database) -> None:
    """Running every migration yields exactly the tables and columns the models declare."""

    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": compare_type})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as connection:
        diff = await connection.run_sync(differences)
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert diff == []
    assert set(Base.metadata.tables) <= tables


async def test_sqlite_runs_in_wal_mode(db: Database) -> None:
    """SQLite is in WAL mode (how it waits for a lock is in test_sqlite_driver)."""
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    async with db.transaction() as session:
        mode = (await session.execute(text("PRAGMA journal_mode"))).scalar()
    assert mode == "wal"
