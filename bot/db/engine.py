"""Engine and transactions. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import Settings
from bot.db import sqlite_driver
from bot.db.encryption import EncryptionKeyError, KeyRing, use_key_ring
from bot.db.group_commit import GroupCommit

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)

    database = parsed.database or ":memory:"
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, async_creator=sqlite_driver.connector(
        database, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, start transactions, so that we can make them IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # With WAL: a crash of the process loses no commit; a power cut may lose the last few.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read-then-write transaction under plain BEGIN fails with "database is locked" when
        # another writer got there first; IMMEDIATE takes the write lock up front and waits
        # (see sqlite_driver). It is sent just before the transaction's first statement.
        connection.connection.driver_connection.begin_immediate()

    return engine


def insert_on_conflict(dialect: Dialect) -> Any:
    """The dialect's INSERT, the one that can say what to do about a key already there (ON
    CONFLICT): SQLite and PostgreSQL spell it alike, SQLAlchemy keeps one per dialect."""
    return pg_insert if dialect.name == "postgresql" else sqlite_insert


class Database:
    """The one way code reaches the database: `async with db.transaction() as session`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.group_commit = GroupCommit(engine)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_engine(url))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def together(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` (database statements only; it may be run twice) in a transaction shared
        with other work handed in at the same moment; returns once that has committed."""
        return await self.group_commit.run(work)

    async def dispose(self) -> None:
        await self.engine.dispose()


DEMO_KEY_FILE = "encryption.key"


def key_ring_for(settings: Settings) -> KeyRing:
    """The practice's keys from the environment; the demo makes its own key once."""
    if settings.encryption_keys is not None:
        return KeyRing.from_setting(settings.encryption_keys.get_secret_value())
    if not settings.demo:
        raise EncryptionKeyError(
            "INTERLUDE_ENCRYPTION_KEYS is not set. Client text is stored encrypted: make a key "
            "with `interlude keys generate`, put it in .env, and keep a copy somewhere safe "
            "(without it the stored replies cannot be read).")
    key_file = settings.data_dir / DEMO_KEY_FILE
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(KeyRing.generate_key() + "\n")
        key_file.chmod(0o600)
        log.warning("demo: generated an encryption key in %s; a real practice sets "
                    "INTERLUDE_ENCRYPTION_KEYS instead", key_file)
    return KeyRing.from_setting(key_file.read_text())


def open_database(settings: Settings) -> Database:
    """The practice's database, with its keys in place for the encrypted columns."""
    use_key_ring(key_ring_for(settings))
    return Database.from_url(settings.sqlalchemy_url)
