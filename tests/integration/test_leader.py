"""One process at a time reads the inbox; when it dies, another takes over."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.db.engine import Database
from bot.ingest.leader import InboxLeadership


async def test_one_process_leads_and_another_takes_over_when_it_dies(
    db: Database, database_url: str
) -> None:
    """A second process cannot take the inbox while the first holds it, and can once it is gone."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one bot process, which always leads")
    other_process = Database.from_url(database_url)
    first, second = InboxLeadership(db), InboxLeadership(other_process)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.still_held()
        # The leader's connection is cut (waiting up to 5 s for its backend to have gone).
        async with other_process.transaction() as session:
            await session.execute(text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory'"))
        assert await second.try_acquire()
        assert not await first.still_held()
        assert not await first.try_acquire()
    finally:
        await second.release()
        await other_process.dispose()
