"""SQLite for the async engine: statements run on the event loop, waits on a thread.

SQLAlchemy's aiosqlite dialect runs every call on a thread of the connection's own and wakes the
event loop when it is done: a statement took four such trips (make a cursor, execute, fetch,
close) and a transaction three more (`BEGIN IMMEDIATE`, commit, the pool's reset). SQLite
itself answers the statements the bot makes in microseconds, so on the inbound path the trips
cost far more than the work; worse, a transaction held the write lock across every trip, while
the event loop went round all its other tasks, and the transactions behind it waited.

Here a statement runs where it is called, rows fetched at once, and a transaction (which takes
SQLite's write lock before its first statement, as always) goes from `BEGIN IMMEDIATE` to its
commit without letting go of the event loop unless the code in it awaits something else. Only
waiting is done on the connection's thread: when another process (a command, a backup) holds
the write lock, `BEGIN IMMEDIATE` is tried again there with the busy timeout, so the event loop
never sleeps in SQLite's busy handler. Within this process transactions queue for the write
lock on an asyncio lock, in turn, instead of SQLite's busy handler (which sleeps 1, 2, 5 ... up
to 100 ms at a time, long after the lock is free).

What still runs on the loop: a statement's own work (microseconds for the bot's; a few
milliseconds for a large read), and at a commit now and then SQLite's checkpoint of the
write-ahead log, which writes to disk (measured at up to 6 ms on the development machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite

BEGIN = "BEGIN IMMEDIATE"


class Connection(aiosqlite.Connection):
    """An aiosqlite connection (its thread opens, closes and waits) that runs statements inline."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], writer: asyncio.Lock,
                 busy_timeout_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
        self.begin_pending = False
        self._writer = writer  # shared by every connection of one engine
        self._writing = False  # this connection holds it
        self._busy_timeout_ms = busy_timeout_ms

    def begin_immediate(self) -> None:
        """Start a write transaction before the next statement."""
        self.begin_pending = True

    def cursor(self) -> Cursor:  # type: ignore[override]
        return Cursor(self)

    async def execute_fetched(self, sql: str, parameters: Any,
                              many: bool) -> tuple[sqlite3.Cursor, list[Any]]:
        connection = self._conn
        if self.begin_pending:
            if not self._writing:
                await self._writer.acquire()
                self._writing = True
            try:
                await self._begin(connection)
            except BaseException:
                self._release()
                raise
            self.begin_pending = False
        elif not connection.in_transaction:
            # Outside a transaction (the settings made on connecting): may wait, so on the thread.
            return await self._execute(self._waiting, _run, connection, sql, parameters, many)
        return _run(connection, sql, parameters, many)

    async def _begin(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute(BEGIN)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            # Another process writes: wait for it on the thread, as long as the busy timeout.
            waiting = asyncio.ensure_future(self._execute(self._waiting, connection.execute, BEGIN))
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # The BEGIN goes on on the thread: see it through and undo it, so that the
                # connection is not left holding the write lock for nobody.
                with contextlib.suppress(Exception):
                    await waiting
                    connection.rollback()
                raise

    def _waiting(self, function: Callable[..., Any], *args: Any) -> Any:
        """On the thread: run with SQLite's busy timeout, which is 0 on the event loop."""
        connection = self._conn
        connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        try:
            return function(*args)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._writer.release()

    async def commit(self) -> None:
        self._end(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        self._end(sqlite3.Connection.rollback)

    def _end(self, how: Callable[[sqlite3.Connection], None]) -> None:
        self.begin_pending = False  # with no statement run, there is no transaction to end
        try:
            if self._connection is not None and self._connection.in_transaction:
                how(self._connection)
        finally:
            self._release()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._release()

    def stop(self) -> asyncio.Future[Any] | None:
        self._release()
        return super().stop()


def _run(connection: sqlite3.Connection, sql: str, parameters: Any,
         many: bool) -> tuple[sqlite3.Cursor, list[Any]]:
    cursor = connection.cursor()
    if many:
        cursor.executemany(sql, parameters)
    elif parameters is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, parameters)
    rows = cursor.fetchall() if cursor.description else []
    return cursor, rows


class Cursor:
    """The part of aiosqlite's cursor that SQLAlchemy uses; rows are fetched with the execute."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None
        self._rows: deque[Any] = deque()
        self.arraysize = 1

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        self._cursor, rows = await self._connection.execute_fetched(sql, parameters, False)
        self._rows = deque(rows)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        self._cursor, _ = await self._connection.execute_fetched(sql, list(parameters), True)
        self._rows = deque()
        return self

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = self.arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    async def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        # The statement was run to its end (every row fetched), so SQLite has already reset it.
        self._rows.clear()


def connector(database: str, busy_timeout_ms: int) -> Callable[[], Connection]:
    """An `async_creator` for SQLAlchemy's create_async_engine (one per engine)."""
    writer = asyncio.Lock()

    def connect() -> Connection:
        # check_same_thread off: opened on the connection's thread, used on the event loop's
        # too, never on both at once (each waits for the other).
        return Connection(lambda: sqlite3.connect(database, timeout=0, check_same_thread=False,
                                                  isolation_level=None),
                          writer, busy_timeout_ms)
    return connect
