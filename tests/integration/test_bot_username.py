"""The bot's username, which every process learns from getMe at start-up and keeps in the database."""

from __future__ import annotations

import asyncio

import pytest

from bot.db.engine import Database
from bot.services import review


async def test_processes_starting_together_each_remember_the_username(
        db: Database, database_url: str) -> None:
    """Two processes find it missing at the same moment and each write it (from its own getMe):
    neither fails, and a new name later replaces the old one."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one bot process, and its transactions queue for the write lock")
    other_process = Database.from_url(database_url)
    both_looked = asyncio.Barrier(2)

    async def remember(database: Database) -> None:
        async with database.transaction() as session:
            assert await review.bot_username(session) is None
            await asyncio.wait_for(both_looked.wait(), timeout=10)
            await review.remember_bot_username(session, "InterludeBot")

    try:
        await asyncio.gather(remember(db), remember(other_process))
        async with db.transaction() as session:
            await review.remember_bot_username(session, "InterludePracticeBot")
        async with other_process.transaction() as session:
            assert await review.bot_username(session) == "InterludePracticeBot"
    finally:
        await other_process.dispose()
