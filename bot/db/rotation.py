"""`interlude keys rotate`: move every sealed value onto the current key, a batch at a time.

Each batch is its own short transaction, so the bot keeps running meanwhile. A row is only
rewritten if it still holds what was read (compare and swap): a reply edited by its client in
the middle of a batch keeps the client's new words.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Table, and_, select, type_coerce, update

from bot.db.encryption import Sealed, active_key_ring, stored_bytes
from bot.db.engine import Database
from bot.db.models import Base


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    key: Column
    column: Column

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    def raw(self, column: Column) -> object:
        # The stored bytes as they are, without the column type opening them.
        return type_coerce(column, self.column.type.impl)


def sealed_columns() -> list[SealedColumn]:
    found = []
    for table in Base.metadata.sorted_tables:
        (key,) = table.primary_key.columns
        found += [SealedColumn(table, key, column) for column in table.columns
                  if isinstance(column.type, Sealed)]
    return found


async def rotate_keys(db: Database, *, batch: int = 500) -> dict[str, int]:
    """Reseal everything not sealed with the current key; returns rows rewritten per column."""
    ring = active_key_ring()
    rewritten: dict[str, int] = {}
    for target in sealed_columns():
        rewritten[target.name] = 0
        after = None
        while True:
            query = (select(target.key, target.raw(target.column))
                     .where(target.column.is_not(None)).order_by(target.key).limit(batch))
            if after is not None:
                query = query.where(target.key > after)
            async with db.transaction() as session:
                rows = (await session.execute(query)).all()
                for key, stored in rows:
                    raw = stored_bytes(stored)
                    if ring.is_current(raw):
                        continue
                    fresh = ring.reseal(raw)
                    value = fresh if isinstance(stored, bytes) else fresh.decode("ascii")
                    result = await session.execute(
                        update(target.table)
                        .where(and_(target.key == key, target.raw(target.column) == stored))
                        .values({target.column.name: type_coerce(value, target.column.type.impl)}))
                    rewritten[target.name] += result.rowcount
            if len(rows) < batch:
                break
            after = rows[-1][0]
    return rewritten


async def count_by_key(db: Database) -> dict[str, int]:
    """How many stored values each key sealed (for `interlude keys status`)."""
    counts: dict[str, int] = {}
    async with db.transaction() as session:
        for target in sealed_columns():
            for (stored,) in await session.execute(
                    select(target.raw(target.column)).where(target.column.is_not(None))):
                raw = stored_bytes(stored)
                kid = raw.partition(b":")[0].decode("ascii", "replace")
                counts[kid] = counts.get(kid, 0) + 1
    return counts
