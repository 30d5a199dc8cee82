"""Group commit: small pieces of database work that arrive at about the same moment share one
transaction, and each caller hears of its own piece only after that transaction commits.

The inbound path uses it for the common answer (bot/services/replies.store_words) and for the
inbox's "handled" marks: while many people write at once, one commit covers several lanes'
replies instead of one each, and a commit (SQLite's write to its log, a PostgreSQL round trip)
is a large part of what a small transaction costs.

A piece of work is a coroutine function of a Core connection that only reads and writes the
database: it may be run twice (see below), so it must not do anything else, such as sending a
message. Pieces run one after another, in the order they were handed in. Nothing waits to
gather a group: the transaction starts as soon as the event loop gets to it, and whatever was
handed in meanwhile goes with it; what comes in while it runs goes with the next.

When a piece fails, the whole transaction is rolled back and every piece of the group is run
again in a transaction of its own, so that one failure (a bad row, the database going away)
fails its own caller only, and nobody's work is lost or committed twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[Any]]


class GroupCommit:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._running: asyncio.Task[None] | None = None
        self.transactions = 0  # committed, for tests and measurements
        self.pieces = 0

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in a transaction shared with whatever else is handed in meanwhile; returns
        its result once that transaction has committed (or raises what `work` raised)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._commit_groups(), name="group-commit")
        return await done

    async def _commit_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._commit(group)
            except BaseException:
                # Cancelled (the loop is stopping): nothing of this group or after it is done.
                for _, done in group + self._waiting:
                    done.cancel()
                self._waiting = []
                raise

    async def _commit(self, group: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        live = [(work, done) for work, done in group if not done.done()]  # a caller gone
        if not live:
            return
        try:
            async with self.engine.begin() as connection:
                results = [await work(connection) for work, _ in live]
        except Exception as error:
            if len(live) == 1:
                _settle(live[0][1], error=error)
                return
            log.warning("a group of %d transactions failed (%s); each tried alone",
                        len(live), type(error).__name__)
            for piece in live:
                await self._commit([piece])
            return
        self.transactions += 1
        self.pieces += len(live)
        for (_, done), result in zip(live, results, strict=True):
            _settle(done, result=result)


def _settle(done: asyncio.Future[Any], *, result: Any = None,
            error: BaseException | None = None) -> None:
    if done.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
