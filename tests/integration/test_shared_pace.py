"""Telegram's overall limit and its 429 pauses hold across bot processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.db.engine import Database
from bot.scheduling.ratelimit import PRIORITY, SharedPace, TelegramRateLimiter


def two_processes(database_url: str, rate: float) -> tuple[list[Database], list[TelegramRateLimiter]]:
    databases = [Database.from_url(database_url) for _ in range(2)]
    limiters = [TelegramRateLimiter(per_second=rate, per_chat=100, chat_burst=100,
                                    shared=SharedPace(database, rate)) for database in databases]
    return databases, limiters


def sends(limiter: TelegramRateLimiter, stamps: list[float], count: int, first_chat: int) -> list[Any]:
    async def call() -> dict[str, Any]:
        stamps.append(time.monotonic())
        return {}

    return [limiter.process_request(call, (), {}, "sendMessage", {"chat_id": first_chat + n}, None)
            for n in range(count)]


@pytest.fixture
def postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite runs one bot process; its pace is kept in memory")


@pytest.mark.usefixtures("postgres_only")
async def test_two_processes_together_keep_to_the_overall_rate(database_url: str) -> None:
    """Two processes sending 30 messages each at a shared 20/s take 3 s, not the 1.5 s each
    would take alone, and no second holds more than 22 sends (20, and 2 a late sender may catch up)."""
    databases, limiters = two_processes(database_url, rate=20)
    stamps: list[float] = []
    try:
        started = time.monotonic()
        await asyncio.gather(*sends(limiters[0], stamps, 30, 0), *sends(limiters[1], stamps, 30, 100))
        elapsed = time.monotonic() - started
    finally:
        for database in databases:
            await database.dispose()
    stamps.sort()
    busiest = max(sum(1 for t in stamps if start <= t < start + 1) for start in stamps)
    assert elapsed >= 2.8
    assert busiest <= 22


@pytest.mark.usefixtures("postgres_only")
async def test_a_429_in_one_process_pauses_the_other(database_url: str) -> None:
    """After one process hears 'retry after 1', the other sends nothing for that second."""
    databases, limiters = two_processes(database_url, rate=100)
    stamps: list[float] = []

    async def refused() -> dict[str, Any]:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            raise RetryAfter(1)
        return {}

    try:
        await limiters[1].process_request(refused, (), {}, "sendMessage", {"chat_id": 1}, None)
        paused_at = stamps[0]
        other: list[float] = []
        await asyncio.gather(*sends(limiters[0], other, 3, 200))
    finally:
        for database in databases:
            await database.dispose()
    assert min(other) - paused_at >= 0.9


@pytest.mark.usefixtures("postgres_only")
async def test_a_crisis_reply_overtakes_a_shared_queue(database_url: str) -> None:
    """With 20 prompts queued at a shared 10/s, a priority send goes at once, not in 2 s."""
    databases, limiters = two_processes(database_url, rate=10)
    stamps: list[float] = []
    try:
        queued = [asyncio.ensure_future(s) for s in sends(limiters[0], stamps, 20, 0)]
        await asyncio.sleep(0.05)
        before = time.monotonic()
        crisis: list[float] = []

        async def answer() -> dict[str, Any]:
            crisis.append(time.monotonic())
            return {}

        await limiters[0].process_request(answer, (), {}, "sendMessage", {"chat_id": 999}, PRIORITY)
        assert crisis[0] - before < 0.2
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
    finally:
        for database in databases:
            await database.dispose()
