"""A claimed prompt keeps its lease while its process is alive, however long it waits its turn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.app import build_runtime
from bot.db.engine import Database
from bot.db.models import Delivery, DeliveryStatus
from tests.e2e.conftest import BotHarness

LEASE_SECONDS = 1.5


class RunningClock:
    """Real time, starting from the harness's moment (the prompts fall due by that clock)."""

    def __init__(self, start: datetime) -> None:
        self._start, self._started = start, time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._started)


async def _undone(db: Database, due: datetime) -> int:
    """Prompts due by `due` not yet recorded as sent (tomorrow's are planned too)."""
    async with db.transaction() as session:
        return len(list(await session.scalars(select(Delivery.id).where(
            Delivery.scheduled_for <= due,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING))))))


async def test_prompts_waiting_longer_than_the_lease_are_not_sent_twice(
    harness: BotHarness, database_url: str, backend: str
) -> None:
    """Three dispatchers with a 1.5 s lease hold up to four seconds' worth of a slow rate each
    (on PostgreSQL one rate shared by all three): prompts wait their turn for longer than the
    lease, yet each of 36 clients gets theirs exactly once, and every prompt is recorded sent."""
    count = 36
    users = await harness.evening_checkins_due(count)
    # SQLite: each dispatcher keeps its own pace (one process); PostgreSQL: they share one.
    rate = 4 if backend == "sqlite" else 8
    settings = harness.settings.model_copy(update={
        "send_lease_seconds": LEASE_SECONDS, "rate_limit_per_second": rate})
    clock = RunningClock(harness.clock.now())
    databases = [Database.from_url(database_url) for _ in range(3)]
    runtimes = [build_runtime(settings, database, harness.library, clock,
                              api_url=harness.emulator.url) for database in databases]
    stopping = asyncio.Event()
    try:
        for runtime in runtimes:
            await runtime.start(poll=False, jobs=False)
        loops = [asyncio.create_task(r.dispatcher.run(stopping)) for r in runtimes]
        for _ in range(600):  # until every due prompt is recorded sent, at most a minute
            if not await _undone(harness.db, harness.clock.now()):
                break
            await asyncio.sleep(0.1)
        stopping.set()
        await asyncio.gather(*loops)
    finally:
        stopping.set()
        for runtime, database in zip(runtimes, databases, strict=True):
            await runtime.stop()
            await database.dispose()

    received = Counter({user: len(await harness.control.bot_messages(user)) for user in users})
    assert dict(Counter(received.values())) == {1: count}, "a prompt was lost or sent twice"
    assert sum(r.dispatcher.sent_total for r in runtimes) == count
    async with harness.db.transaction() as session:
        statuses = Counter(await session.scalars(select(Delivery.status).where(
            Delivery.scheduled_for <= harness.clock.now())))
    assert statuses == {DeliveryStatus.SENT: count}
