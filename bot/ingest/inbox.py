"""The inbox: every update is written here before Telegram is told we have it.

Rows are keyed by update_id, so a batch delivered twice is stored once. Handling an update marks
it processed and clears its payload: the raw update (which may hold client text, or text from
someone who never consented) lives only as long as it takes to handle it.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable
from typing import Any

from sqlalchemy import func, select, update

from bot.clock import Clock
from bot.db.engine import Database, insert_on_conflict
from bot.db.models import Client, CouplePartner, InboxUpdate

MAX_ATTEMPTS = 5


class Inbox:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def store(self, updates: Iterable[dict[str, Any]]) -> int:
        rows = [{"update_id": u["update_id"], "payload": u, "received_at": self.clock.now(),
                 "attempts": 0} for u in updates]
        if not rows:
            return 0
        insert = insert_on_conflict(self.db.engine.dialect)
        async with self.db.transaction() as session:
            result = await session.execute(
                insert(InboxUpdate).values(rows).on_conflict_do_nothing(index_elements=["update_id"]))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def last_update_id(self) -> int | None:
        async with self.db.transaction() as session:
            value = await session.scalar(select(func.max(InboxUpdate.update_id)))
        return int(value) if value is not None else None

    async def pending(self, limit: int = 100, *, skip: Collection[int] = (),
                      known: Container[int] = ()) -> list[tuple[int, dict[str, Any] | None]]:
        """Stored updates not handled yet, oldest first, up to `limit`, leaving out those in
        `skip`. The payload of those in `known` (the caller has it) is not read, nor unsealed:
        it comes back as None."""
        waiting = (InboxUpdate.processed_at.is_(None), InboxUpdate.attempts < MAX_ATTEMPTS)
        async with self.db.transaction() as session:
            ids = (await session.scalars(
                select(InboxUpdate.update_id).where(*waiting)
                .order_by(InboxUpdate.update_id).limit(limit + len(skip)))).all()
            fresh = [update_id for update_id in ids if update_id not in skip][:limit]
            unknown = [update_id for update_id in fresh if update_id not in known]
            payloads = {row.update_id: row.payload for row in (await session.execute(
                select(InboxUpdate.update_id, InboxUpdate.payload)
                .where(InboxUpdate.update_id.in_(unknown), *waiting))).all()} if unknown else {}
        return [(update_id, None if update_id in known else payloads.get(update_id))
                for update_id in fresh
                if update_id in known or payloads.get(update_id) is not None]

    async def couples_of(self, people: Iterable[int]) -> dict[int, int]:
        """The open couple of each of these Telegram users who is in one (user id -> couple id)."""
        async with self.db.transaction() as session:
            rows = (await session.execute(
                select(Client.telegram_user_id, CouplePartner.couple_id)
                .join(CouplePartner, CouplePartner.client_id == Client.id)
                .where(CouplePartner.open_client_id.is_not(None),
                       Client.telegram_user_id.in_(list(people))))).all()
        return {int(row.telegram_user_id): int(row.couple_id) for row in rows}

    async def unprocessed_count(self) -> int:
        async with self.db.transaction() as session:
            value = await session.scalar(select(func.count()).select_from(InboxUpdate).where(
                InboxUpdate.processed_at.is_(None), InboxUpdate.attempts < MAX_ATTEMPTS))
        return int(value or 0)

    async def done(self, update_id: int, error: str | None = None) -> None:
        await self.done_many([update_id], error)

    async def done_many(self, update_ids: Collection[int], error: str | None = None) -> None:
        """Mark these updates handled (or set aside, with `error`), in one statement."""
        async with self.db.transaction() as session:
            await session.execute(update(InboxUpdate)
                                  .where(InboxUpdate.update_id.in_(list(update_ids)))
                                  .values(processed_at=self.clock.now(), payload=None,
                                          last_error=error))

    async def failed(self, update_id: int, error: str) -> int:
        """Count a failed attempt; after MAX_ATTEMPTS the update is set aside (kept, not retried)."""
        async with self.db.transaction() as session:
            row = await session.get(InboxUpdate, update_id)
            if row is None:
                return 0
            row.attempts += 1
            row.last_error = error[:200]
            return row.attempts
