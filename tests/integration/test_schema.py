"""The database schema: what the migrations build is what the models describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.exc import StatementError

from bot.db.engine import Database
from bot.db.migrate import compare_type
from bot.db.models import Base
from bot.db.types import UTCDateTime


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


_MOMENTS = [
    datetime(2026, 11, 22, 19, 0, tzinfo=UTC),
    datetime(2026, 11, 22, 19, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=14))),
]


async def test_times_are_stored_in_utc_and_read_back_unchanged(db: Database) -> None:
    """Every time column keeps the moment whatever zone it was given in, reads back in UTC,
    and on SQLite is stored as the same text SQLAlchemy itself writes, so that times written
    before and after compare and sort alike in SQL; a time without a zone is refused."""
    table = Table("moments", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime()))
    async with db.engine.begin() as connection:
        await connection.run_sync(table.create)
        await connection.execute(table.insert(), [{"at": moment} for moment in _MOMENTS])
        back = list((await connection.execute(select(table.c.at).order_by(table.c.id))).scalars())
        stored = list((await connection.execute(
            text("SELECT CAST(at AS TEXT) FROM moments ORDER BY id"))).scalars())
        with pytest.raises(StatementError, match="naive"):
            await connection.execute(table.insert(), [{"at": datetime(2026, 11, 22, 19, 0)}])  # noqa: DTZ001
    # As instants: Python never finds a fold=1 time equal to the same instant in another zone.
    assert [moment.timestamp() for moment in back] == [moment.timestamp() for moment in _MOMENTS]
    assert all(moment.tzinfo is UTC for moment in back)
    if db.is_sqlite:
        dialect = db.engine.dialect
        sqlalchemy_text = DateTime().dialect_impl(dialect).bind_processor(dialect)
        assert stored == [sqlalchemy_text(m.astimezone(UTC).replace(tzinfo=None)) for m in _MOMENTS]
