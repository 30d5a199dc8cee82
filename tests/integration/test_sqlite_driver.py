"""SQLite's transactions through our driver: in turn within the process, waiting for another
process's write without holding up the event loop, and each transaction whole or not at all."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import select, text, update

from bot.db.engine import Database
from bot.db.models import InboxUpdate


def _sqlite_only(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL has a driver of its own")


async def _one_row(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text(
            "INSERT INTO inbox (update_id, payload, received_at, attempts) "
            "VALUES (1, NULL, '2026-03-02 09:00:00', 0)"))


async def test_many_read_then_write_transactions_at_once_lose_no_update(db: Database) -> None:
    """Fifty tasks each read a counter and write it back plus one, all at once: it ends at fifty,
    and none of them fails with "database is locked"."""
    _sqlite_only(db)
    await _one_row(db)

    async def add_one() -> None:
        async with db.transaction() as session:
            attempts = await session.scalar(select(InboxUpdate.attempts))
            await asyncio.sleep(0)  # let the others in, if they could get in
            await session.execute(update(InboxUpdate).values(attempts=attempts + 1))

    await asyncio.gather(*(add_one() for _ in range(50)))
    async with db.transaction() as session:
        assert await session.scalar(select(InboxUpdate.attempts)) == 50


async def test_a_write_waits_for_another_process_and_the_bot_carries_on(db: Database) -> None:
    """While another process holds the write lock, a transaction waits for it rather than failing,
    and the event loop goes on with other work meanwhile."""
    _sqlite_only(db)
    await _one_row(db)
    other = sqlite3.connect(str(db.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    asyncio.get_running_loop().call_later(0.3, other.commit)
    started = time.monotonic()
    try:
        async with db.transaction() as session:
            await session.execute(update(InboxUpdate).values(attempts=7))
    finally:
        ticker.cancel()
        other.close()
    assert time.monotonic() - started >= 0.25
    assert ticks >= 10, "the event loop stood still while SQLite waited"
    async with db.transaction() as session:
        assert await session.scalar(select(InboxUpdate.attempts)) == 7


async def test_a_failed_transaction_leaves_nothing_and_the_next_goes_ahead(db: Database) -> None:
    """A transaction that fails half way is rolled back whole, and the write lock is free for the
    next one at once."""
    _sqlite_only(db)
    await _one_row(db)

    async def fails_half_way() -> None:
        async with db.transaction() as session:
            await session.execute(update(InboxUpdate).values(attempts=3))
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        await fails_half_way()
    async with asyncio.timeout(5):
        async with db.transaction() as session:
            assert await session.scalar(select(InboxUpdate.attempts)) == 0


async def test_a_transaction_given_up_while_waiting_for_another_process_leaves_no_lock(
    db: Database,
) -> None:
    """A task cancelled while it waits for another process's write lock leaves nothing held:
    once the other process commits, the next transaction goes ahead at once."""
    _sqlite_only(db)
    await _one_row(db)
    other = sqlite3.connect(str(db.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(update(InboxUpdate).values(attempts=1))

    waiting = asyncio.create_task(write())
    await asyncio.sleep(0.1)
    waiting.cancel()
    other.commit()
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with asyncio.timeout(5):
        async with db.transaction() as session:
            await session.execute(update(InboxUpdate).values(attempts=2))
    async with db.transaction() as session:
        assert await session.scalar(select(InboxUpdate.attempts)) == 2
