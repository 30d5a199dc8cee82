"""Several dispatchers on one database share the due prompts: each prompt is sent exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from bot.app import build_runtime
from bot.db.engine import Database
from bot.db.models import Delivery, DeliveryStatus
from bot.scheduling.dispatcher import Dispatcher
from tests.e2e.conftest import BotHarness
from tests.postgres import PostgresServer


async def test_three_dispatchers_share_the_work_and_send_each_prompt_once(
    harness: BotHarness, database_url: str
) -> None:
    """Three dispatchers, each with its own connections, send 60 due check-ins once between them."""
    users = await harness.evening_checkins_due(60)
    assert harness.runtime is not None
    settings = harness.settings.model_copy(update={"dispatch_batch": 4})
    databases = [Database.from_url(database_url) for _ in range(3)]
    runtimes = [build_runtime(settings, database, harness.library, harness.clock,
                              api_url=harness.emulator.url) for database in databases]
    try:
        for runtime in runtimes:
            await runtime.start(poll=False, jobs=False)
        reports = await asyncio.gather(*(r.dispatcher.run_until_idle() for r in runtimes))
    finally:
        for runtime, database in zip(runtimes, databases, strict=True):
            await runtime.stop()
            await database.dispose()

    received = Counter({user: len(await harness.control.bot_messages(user)) for user in users})
    assert set(received.values()) == {1}, "a prompt was lost or sent twice"
    assert sum(r.sent for r in reports) == 60
    assert all(r.sent > 0 for r in reports), f"the work was not shared: {[r.sent for r in reports]}"
    async with harness.db.transaction() as session:
        statuses = Counter(await session.scalars(select(Delivery.status).where(
            Delivery.scheduled_for <= harness.clock.now())))
    assert statuses == {DeliveryStatus.SENT: 60}


async def test_a_postgresql_restart_mid_dispatch_loses_nothing(
    harness: BotHarness, backend: str, postgres: PostgresServer | None
) -> None:
    """PostgreSQL restarts while 40 prompts go out at 10/s: the bot reconnects, every client
    gets theirs exactly once, and a message written during the restart is answered."""
    if backend != "postgresql" or postgres is None or not postgres.can_restart:
        pytest.skip("a PostgreSQL server of the tests' own")
    users = await harness.evening_checkins_due(40)
    assert harness.runtime is not None
    dispatcher = Dispatcher(harness.db, harness.runtime.dispatcher.sender, harness.clock,
                            harness.settings.model_copy(update={"rate_limit_per_second": 10,
                                                                "dispatch_interval_seconds": 0.1}))
    stopping = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stopping))
    try:
        await asyncio.sleep(1.0)
        restarting = asyncio.create_task(asyncio.to_thread(postgres.restart))
        await asyncio.sleep(0.05)
        await harness.control.send_text(users[0], "/help")
        await restarting
        for _ in range(150):
            if sum([len(await harness.control.bot_messages(user)) > 0 for user in users]) == 40:
                break
            harness.clock.advance(seconds=1)  # retry backoffs pass
            await asyncio.sleep(0.2)
    finally:
        stopping.set()
        await loop
    # The inbox was read again after the restart: the message got its answer (the prompt, then it).
    await harness.control.wait_for_bot_messages(users[0], 2, within=30)
    received = Counter({user: len(await harness.control.bot_messages(user)) for user in users[1:]})
    assert set(received.values()) == {1}, f"lost or doubled: {sorted(Counter(received.values()).items())}"
