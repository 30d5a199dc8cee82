"""Which process reads the inbox: one at a time, so a person's messages are handled once and in
order however many bot processes run.

Telegram serves getUpdates to one caller only, and handling must not run twice for one update,
so on PostgreSQL the process holding a session advisory lock is the one that polls (or, in
webhook mode, handles what every process stored). The lock lives on a connection of its own: a
process that dies drops the connection and the lock with it, and another process takes over
within a few seconds. On SQLite there is one bot process, so it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.engine import Database

log = logging.getLogger(__name__)
LOCK_KEY = 0x1E7E_1DE  # any fixed number; the same in every process of one database
RETRY_SECONDS = 2.0


class InboxLeadership:
    def __init__(self, db: Database, retry_seconds: float = RETRY_SECONDS) -> None:
        self.db = db
        self.retry_seconds = retry_seconds
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self.db.is_sqlite or self._connection is not None

    async def try_acquire(self) -> bool:
        """Take the lead if nobody holds it; True if this process leads now."""
        if self.held:
            return True
        connection = await self.db.engine.connect()
        try:
            got = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                          {"key": LOCK_KEY})
            await connection.commit()  # the lock belongs to the session, not the transaction
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        log.info("this process reads the inbox")
        return True

    async def acquire(self, stopping: asyncio.Event) -> bool:
        """Wait until this process leads (True) or `stopping` is set (False)."""
        while not stopping.is_set():
            try:
                if await self.try_acquire():
                    return True
            except Exception as error:  # the database is away; try again later
                log.warning("could not ask for the inbox lead (%s)", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.retry_seconds)
        return False

    async def still_held(self) -> bool:
        """False if the lock's connection broke (e.g. the database restarted): lead again first."""
        if self.db.is_sqlite or self._connection is None:
            return self.held
        try:
            await self._connection.scalar(text("SELECT 1"))
            await self._connection.commit()
            return True
        except Exception as error:
            log.warning("lost the inbox lead (%s)", type(error).__name__)
            await self._drop()
            return False

    async def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(Exception):
            await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                           {"key": LOCK_KEY})
            await self._connection.commit()
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closed for good, not returned to the pool: a pooled connection would keep the lock.
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
