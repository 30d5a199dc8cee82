"""The inbox: every update is written here before Telegram is told we have it.

Rows are keyed by update_id, so a batch delivered twice is stored once. Handling an update marks
it processed and clears its payload: the raw update (which may hold client text, or text from
someone who never consented) lives only as long as it takes to handle it.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import Clock
from bot.db.engine import Database, insert_on_conflict
from bot.db.models import Client, CouplePartner, InboxUpdate

MAX_ATTEMPTS = 5
_inbox = InboxUpdate.__table__
_waiting = (_inbox.c.processed_at.is_(None), _inbox.c.attempts < MAX_ATTEMPTS)
# Statements built once, here or (the insert, whose spelling depends on the database) in
# Inbox.__init__ (a statement built anew for each call is looked up in SQLAlchemy's cache
# by walking it; one with its rows in it, as a multi-row VALUES, is compiled again every time).
_WAITING_IDS = select(_inbox.c.update_id).where(*_waiting).order_by(_inbox.c.update_id).limit(
    bindparam("limit"))
_DONE = update(_inbox).where(_inbox.c.update_id.in_(bindparam("ids", expanding=True))).values(
    processed_at=bindparam("at"), payload=None, last_error=bindparam("error"))
_clients, _partners = Client.__table__, CouplePartner.__table__
_COUPLES = select(_clients.c.telegram_user_id, _partners.c.couple_id).join(
    _partners, _partners.c.client_id == _clients.c.id).where(
    _partners.c.open_client_id.is_not(None),
    _clients.c.telegram_user_id.in_(bindparam("people", expanding=True)))


class Inbox:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._store = insert_on_conflict(db.engine.dialect)(_inbox).on_conflict_do_nothing(
            index_elements=["update_id"])

    async def store(self, updates: Iterable[dict[str, Any]]) -> None:
        """Store updates (those already stored are left as they are); returns once committed,
        in a commit shared with whatever else is being written at the moment."""
        rows = [{"update_id": u["update_id"], "payload": u, "received_at": self.clock.now(),
                 "attempts": 0} for u in updates]
        if not rows:
            return

        async def write(connection: AsyncConnection) -> None:
            await connection.execute(self._store, rows)

        await self.db.together(write)

    async def last_update_id(self) -> int | None:
        async with self.db.transaction() as session:
            value = await session.scalar(select(func.max(InboxUpdate.update_id)))
        return int(value) if value is not None else None

    async def read_pending(self, connection: AsyncConnection, limit: int = 100, *,
                           skip: Collection[int] = (), known: Container[int] = ()
                           ) -> list[tuple[int, dict[str, Any] | None]]:
        """Stored updates not handled yet, oldest first, up to `limit`, leaving out those in
        `skip`, within a transaction of the caller's. The payload of those in `known` (the
        caller has it) is not read, nor unsealed: it comes back as None."""
        ids = (await connection.execute(_WAITING_IDS, {"limit": limit + len(skip)})).scalars()
        fresh = [update_id for update_id in ids if update_id not in skip][:limit]
        unknown = [update_id for update_id in fresh if update_id not in known]
        payloads = {row.update_id: row.payload for row in await connection.execute(
            select(_inbox.c.update_id, _inbox.c.payload)
            .where(_inbox.c.update_id.in_(unknown), *_waiting))} if unknown else {}
        return [(update_id, None if update_id in known else payloads.get(update_id))
                for update_id in fresh
                if update_id in known or payloads.get(update_id) is not None]

    async def read_couples(self, connection: AsyncConnection, people: Iterable[int]
                           ) -> dict[int, int]:
        """The open couple of each of these Telegram users who is in one (user id -> couple id),
        within a transaction of the caller's."""
        rows = await connection.execute(_COUPLES, {"people": list(people)})
        return {int(row.telegram_user_id): int(row.couple_id) for row in rows}

    async def unprocessed_count(self) -> int:
        async with self.db.transaction() as session:
            value = await session.scalar(select(func.count()).select_from(InboxUpdate).where(
                InboxUpdate.processed_at.is_(None), InboxUpdate.attempts < MAX_ATTEMPTS))
        return int(value or 0)

    async def done(self, update_id: int, error: str | None = None) -> None:
        await self.done_many([update_id], error)

    async def done_many(self, update_ids: Collection[int], error: str | None = None) -> None:
        """Mark these updates handled (or set aside, with `error`), in one statement, in a
        transaction shared with whatever else is being written at the moment."""
        values = {"ids": list(update_ids), "at": self.clock.now(), "error": error}

        async def mark(connection: AsyncConnection) -> None:
            await connection.execute(_DONE, values)

        await self.db.together(mark)

    async def failed(self, update_id: int, error: str) -> int:
        """Count a failed attempt; after MAX_ATTEMPTS the update is set aside (kept, not retried)."""
        async with self.db.transaction() as session:
            row = await session.get(InboxUpdate, update_id)
            if row is None:
                return 0
            row.attempts += 1
            row.last_error = error[:200]
            return row.attempts
