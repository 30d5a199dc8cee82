"""Group commit: work handed in at the same moment shares one transaction; each caller hears of
its own only once that has committed, and one failure fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.engine import Database
from bot.db.models import AppState

_state = AppState.__table__


def _write(key: str, log: list[str] | None = None) -> Callable[[AsyncConnection], Awaitable[str]]:
    async def work(connection: AsyncConnection) -> str:
        if log is not None:
            log.append(key)
        await connection.execute(insert(_state).values(key=key, value="1"))
        return key
    return work


async def _keys(db: Database) -> list[str]:
    """What is committed, read on a connection of its own."""
    async with db.engine.connect() as connection:
        keys = sorted((await connection.execute(select(_state.c.key))).scalars())
        await connection.rollback()
    return keys


async def test_work_handed_in_together_shares_one_commit_and_is_committed_when_answered(
    db: Database
) -> None:
    """Twenty writes handed in at once go in one transaction, in the order handed in, and each
    caller, when answered, finds every one of them committed."""
    order: list[str] = []
    seen_when_answered: list[list[str]] = []

    async def write(n: int) -> str:
        key = await db.together(_write(f"k{n:02}", order))
        seen_when_answered.append(await _keys(db))
        return key

    keys = await asyncio.gather(*(write(n) for n in range(20)))
    assert keys == [f"k{n:02}" for n in range(20)]
    assert order == keys
    assert db.group_commit.transactions == 1
    assert db.group_commit.pieces == 20
    assert all(seen == keys for seen in seen_when_answered)


async def test_work_handed_in_while_a_commit_runs_goes_in_the_next(db: Database) -> None:
    """What comes in while one group's transaction runs is committed in the next one, not lost."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(connection: AsyncConnection) -> None:
        started.set()
        await release.wait()
        await connection.execute(insert(_state).values(key="first", value="1"))

    first = asyncio.create_task(db.together(slow))
    await started.wait()
    later = [asyncio.create_task(db.together(_write(f"later{n}"))) for n in range(3)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in later)
    release.set()
    await asyncio.gather(first, *later)
    assert await _keys(db) == ["first", "later0", "later1", "later2"]
    assert db.group_commit.transactions == 2


async def test_one_failure_fails_only_its_own_caller(db: Database) -> None:
    """In a group where one piece fails, that caller gets the error and the others' writes are
    committed, each exactly once."""
    async def broken(connection: AsyncConnection) -> None:
        await connection.execute(insert(_state).values(key="broken", value="1"))
        await connection.execute(text("SELECT * FROM no_such_table"))

    results = await asyncio.gather(
        db.together(_write("a")), db.together(broken), db.together(_write("b")),
        return_exceptions=True)
    assert results[0] == "a"
    assert isinstance(results[1], Exception)
    assert results[2] == "b"
    assert await _keys(db) == ["a", "b"]


async def test_a_caller_that_gives_up_does_not_hold_up_the_others(db: Database) -> None:
    """A caller cancelled while waiting for its turn leaves the rest of its group to commit."""
    gone = asyncio.create_task(db.together(_write("gone")))
    kept = asyncio.create_task(db.together(_write("kept")))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == "kept"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert "kept" in await _keys(db)
